"""The optional global skip (beyond the paper): off by default, and recognised from the weights by
``weights.infer_config``, ``mrnet infer``, ``mrnet export`` and spandrel, so that weights trained with it are
never run without it."""
import cv2
import numpy as np
import pytest
import torch

import mrnet_arch  # noqa: F401  (registration)
from basicsr.utils.registry import ARCH_REGISTRY
from mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.commands.export import main as export_main
from mrnet_arch.commands.infer import main as infer_main
from mrnet_arch.storage.weights import WeightsError, build_from_state_dict, infer_config, load_model

SMALL = dict(num_feat=8, num_block=1, num_recursion=2)


def _photo(height, width):
    from skimage import data
    return np.ascontiguousarray(data.chelsea()[80:80 + height, 120:120 + width])


def _trained_like(net):
    """Non-trivial weights: a few random steps so the skip and the body both matter."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return net.eval()


def test_off_by_default_keeps_the_paper_counts():
    assert sum(p.numel() for p in MRNet().parameters()) == 878_339
    assert sum(p.numel() for p in MRNet(global_skip='bicubic').parameters()) == 878_339
    assert 'global_skip.bicubic' in MRNet(global_skip='bicubic').state_dict()
    assert sum(p.numel() for p in MRNet(global_skip='learned').parameters()) == 878_339 + 3 * 12 * 9 + 12
    with pytest.raises(ValueError, match='global_skip must be one of'):
        MRNet(global_skip='nearest')


def test_bicubic_skip_adds_bicubic_of_the_input():
    """With the body's output zeroed, the network returns the bicubic upsampling of the input."""
    net = MRNet(global_skip='bicubic', **SMALL).eval()
    torch.nn.init.zeros_(net.reconstruction.conv_last.weight)
    torch.nn.init.zeros_(net.reconstruction.conv_last.bias)
    x = torch.from_numpy(_photo(12, 14)).permute(2, 0, 1)[None].float() / 255
    want = torch.nn.functional.interpolate(x, scale_factor=2, mode='bicubic', align_corners=False)
    with torch.no_grad():
        assert torch.allclose(net(x), want, atol=1e-5)


@pytest.mark.parametrize('skip', ['bicubic', 'learned'])
def test_infer_config_reads_the_skip_and_plain_weights_refuse_it(skip):
    net = MRNet(global_skip=skip, **SMALL)
    config = infer_config(net.state_dict())
    assert config['global_skip'] == skip
    assert 'global_skip' not in infer_config(MRNet(**SMALL).state_dict())
    rebuilt, _ = build_from_state_dict(net.state_dict())
    assert isinstance(rebuilt.global_skip, torch.nn.Module)
    with pytest.raises(WeightsError, match='unexpected keys .*global_skip'):
        build_from_state_dict(net.state_dict(), overrides={'global_skip': None})
    with pytest.raises(RuntimeError, match='global_skip'):
        ARCH_REGISTRY.get('MRNet')(**SMALL).load_state_dict(net.state_dict())
    ms = MultiScaleMRNet(num_feat=8, num_block=1, upscales=(2, 3), num_recursions=(2, 2), global_skip=skip)
    assert infer_config(ms.state_dict())['global_skip'] == skip


@pytest.mark.parametrize('skip', ['bicubic', 'learned'])
def test_infer_and_export_run_the_skip(tmp_path, skip):
    net = _trained_like(MRNet(global_skip=skip, **SMALL))
    weights = tmp_path / 'net_g_latest.pth'
    torch.save({'params': net.state_dict()}, weights)
    photo = _photo(20, 24)
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'cat.png'), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    assert infer_main(['--weights', str(weights), '--input', str(src), '--output', str(tmp_path / 'out'),
                       '--device', 'cpu']) == 0
    got = cv2.cvtColor(cv2.imread(str(tmp_path / 'out' / 'cat.png')), cv2.COLOR_BGR2RGB).astype(int)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = (net(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(int)
        without = MRNet(**SMALL)
        without.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith('global_skip')})
        plain = (without.eval()(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(int)
    assert np.abs(got - want).max() <= 1
    assert np.abs(got - plain).max() > 8  # running the same weights without the skip would be visibly wrong

    out = tmp_path / 'skip.safetensors'
    assert export_main(['--weights', str(weights), '--format', 'safetensors', '--output', str(out)]) == 0
    loaded, config = load_model(str(out))
    assert config['global_skip'] == skip
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))

    onnx_path = tmp_path / 'skip.onnx'
    assert export_main(['--weights', str(weights), '--format', 'onnx', '--output', str(onnx_path)]) == 0
    import onnxruntime as ort
    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    with torch.no_grad():
        assert np.abs(session.run(None, {name: x.numpy()})[0] - net(x).numpy()).max() <= 1e-4


@pytest.mark.parametrize('skip', ['bicubic', 'learned'])
def test_spandrel_loads_the_skip(tmp_path, skip):
    spandrel = pytest.importorskip('spandrel')
    from mrnet_arch.spandrel_support import register
    register()
    net = _trained_like(MRNet(global_skip=skip, **SMALL))
    path = tmp_path / 'skip.pth'
    torch.save(net.state_dict(), path)
    model = spandrel.ModelLoader().load_from_file(str(path))
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(model(x), net(x).clamp(0, 1))
