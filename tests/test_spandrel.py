"""spandrel auto-detection of MRNet checkpoints after ``mrnet_arch.spandrel_support.register()``."""
import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.core.weights import infer_config, save_safetensors
from mrnet_arch.spandrel_support import ARCH_IDS, register

spandrel = pytest.importorskip('spandrel')


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
