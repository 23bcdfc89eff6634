"""spandrel auto-detection of MRNet checkpoints after ``mrnet_arch.spandrel_support.register()``."""
import re
import sys

import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.archs.mrnet_config import BASELINE_MARKER_KEY, RECURSIVE_MODULES
from mrnet_arch.spandrel_support import ARCH_IDS, register
from mrnet_arch.storage.weights import infer_config, save_safetensors

spandrel = pytest.importorskip('spandrel')
spandrel_arch = pytest.importorskip('mrnet_arch.spandrel_arch')


@pytest.fixture(scope='module', autouse=True)
def registered():
    register()


def test_register_is_idempotent():
    assert register() == []
    assert all(arch_id in spandrel.MAIN_REGISTRY for arch_id in ARCH_IDS)
    ids = [a.architecture.id for a in spandrel.MAIN_REGISTRY]
    assert all(ids.count(arch_id) == 1 for arch_id in ARCH_IDS)


def _write(tmp_path, net, form):
    sd = net.state_dict()
    path = tmp_path / f'{form}.{"safetensors" if form == "safetensors" else "pth"}'
    if form == 'safetensors':
        save_safetensors(net, infer_config(sd), str(path))
    else:
        torch.save({'params_ema': sd, 'params': sd} if form == 'basicsr' else sd, path)
    return str(path)


@pytest.mark.parametrize('form', ['basicsr', 'plain', 'safetensors'])
def test_mrnet_detected_with_equal_output(tmp_path, form):
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, upscale=3, num_recursion=2).eval()
    model = spandrel.ModelLoader().load_from_file(_write(tmp_path, net, form))
    assert isinstance(model, spandrel.ImageModelDescriptor)
    assert model.architecture.id == 'MRNet' and model.purpose == 'SR'
    assert (model.scale, model.input_channels, model.output_channels) == (3, 3, 3)
    assert model.size_requirements.minimum == 1 and model.size_requirements.multiple_of == 1
    assert '8nf' in model.tags
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        assert torch.equal(model(x), net(x).clamp(0, 1))


def test_multiscale_detected_at_smallest_scale(tmp_path):
    torch.manual_seed(0)
    net = MultiScaleMRNet(num_feat=8, num_block=1, upscales=(4, 2), num_recursions=(3, 2)).eval()
    model = spandrel.ModelLoader().load_from_file(_write(tmp_path, net, 'basicsr'))
    assert model.architecture.id == 'MultiScaleMRNet' and model.scale == 2
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(model(x), net(x, scale=2).clamp(0, 1))


def test_other_arch_not_taken_for_mrnet(tmp_path):
    from basicsr.archs.edsr_arch import EDSR
    path = tmp_path / 'edsr.pth'
    torch.save(EDSR(3, 3, num_feat=8, num_block=1, upscale=2).state_dict(), path)
    try:
        model = spandrel.ModelLoader().load_from_file(str(path))
    except spandrel.UnsupportedModelError:
        return
    assert model.architecture.id not in ARCH_IDS


def _assert_loads_correctly(net, arch_id):
    """spandrel's ``assert_loads_correctly`` for the registered architecture: the model it loads from ``net``'s
    state dict has ``net``'s config and state dict and gives ``net``'s outputs."""
    net = net.eval()
    model = spandrel.ModelLoader().load_from_state_dict(net.state_dict())
    assert model.architecture.id == arch_id and type(model.model) is type(net)
    assert infer_config(model.model.state_dict()) == infer_config(net.state_dict())
    assert model.model.mrm.recursive_module == net.mrm.recursive_module
    assert list(model.model.state_dict()) == list(net.state_dict())
    x = torch.rand(1, 3, 7, 6)
    with torch.no_grad():
        assert torch.equal(model(x), net(x).clamp(0, 1))
    return model


@pytest.mark.parametrize('module', RECURSIVE_MODULES)
def test_every_recursive_module_round_trips(module):
    torch.manual_seed(0)
    model = _assert_loads_correctly(MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=3,
                                          recursive_module=module), 'MRNet')
    assert module in model.tags
    torch.manual_seed(0)
    _assert_loads_correctly(MultiScaleMRNet(num_feat=8, num_block=1, upscales=(2, 3), num_recursions=(2, 3),
                                            recursive_module=module), 'MultiScaleMRNet')


def test_baseline_and_residual_are_told_apart_by_the_marker_alone():
    torch.manual_seed(0)
    baseline = MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=3, recursive_module='baseline').eval()
    sd = baseline.state_dict()
    old = {k: v for k, v in sd.items() if k != BASELINE_MARKER_KEY}  # saved before the marker existed
    assert set(sd) - set(old) == {BASELINE_MARKER_KEY}
    x = torch.rand(1, 3, 7, 6)
    as_residual = spandrel.ModelLoader().load_from_state_dict(old)  # as before the marker: 'residual'
    assert as_residual.model.mrm.recursive_module == 'residual'
    with torch.no_grad():
        assert not torch.equal(as_residual(x), baseline(x).clamp(0, 1))  # the two differ on the same weights
    fresh = MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=3, recursive_module='baseline').eval()
    fresh.load_state_dict(old)  # old weights still load into a 'baseline' network (BasicSR's strict loading)
    with torch.no_grad():
        assert torch.equal(fresh(x), baseline(x))


def test_paper_network_state_dict_has_no_marker():
    assert not any(k.endswith('.baseline') for k in MRNet().state_dict())


def test_runtime_architecture_is_the_contributed_one():
    from mrnet_arch.commands.contribute import comfyui, spandrel_files
    from mrnet_arch.spandrel_arch import MRNetArch, MultiScaleMRNetArch
    assert [type(spandrel.MAIN_REGISTRY.get(i).architecture) for i in ARCH_IDS] == [MRNetArch, MultiScaleMRNetArch]
    with open(spandrel_arch.__file__, encoding='utf-8') as f:
        source = f.read()
    body = source[source.index('\n_SHARED = '):]
    assert body.count('class ') == 2 and "'purpose': 'Restoration' if scale == 1 else 'SR'" in body
    assert body in spandrel_files.init_source() and body in comfyui.init_source()


def test_register_without_spandrel_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'spandrel', None)  # import spandrel now fails as when it is not installed
    with pytest.raises(ImportError, match=re.escape('pip install "mrnet_arch[spandrel]"')):
        register()
