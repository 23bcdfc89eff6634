"""``mrnet export``: safetensors with the arch config, ONNX checked against PyTorch with onnxruntime."""
import json

import numpy as np
import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.cli import main as mrnet
from mrnet_arch.storage.weights import load_model


def main(argv):
    """``mrnet export``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['export', *argv])


def _save(tmp_path, net, name):
    path = tmp_path / name
    torch.save({'params': net.state_dict()}, path)
    return str(path)


@pytest.fixture()
def single(tmp_path):
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, upscale=3, num_recursion=2, fusion='conv1x1').eval()
    return net, _save(tmp_path, net, 'x3.pth')


def test_safetensors_holds_config_and_weights(tmp_path, single):
    net, weights = single
    out = str(tmp_path / 'x3.safetensors')
    assert main(['--weights', weights, '--format', 'safetensors', '--output', out]) == 0
    from safetensors import safe_open
    with safe_open(out, framework='pt') as f:
        metadata = f.metadata()
    assert metadata['format'] == 'pt'
    config = json.loads(metadata['mrnet_config'])
    assert config['type'] == 'MRNet' and config['upscale'] == 3 and config['fusion'] == 'conv1x1'
    loaded, _ = load_model(out)
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_existing_output_needs_overwrite(tmp_path, single, capsys):
    _, weights = single
    out = tmp_path / 'x3.safetensors'
    out.write_bytes(b'old')
    assert main(['--weights', weights, '--format', 'safetensors', '--output', str(out)]) == 2
    assert 'exists' in capsys.readouterr().err and out.read_bytes() == b'old'
    assert main(['--weights', weights, '--format', 'safetensors', '--output', weights, '--overwrite']) == 2


def _check_onnx(path, reference, sizes, in_ch=3):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for batch, h, w in sizes:
        x = torch.rand(batch, in_ch, h, w)
        got = session.run(['output'], {'input': x.numpy()})[0]
        with torch.no_grad():
            want = reference(x).numpy()
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-4


def test_onnx_matches_pytorch_on_two_sizes(tmp_path, single):
    net, weights = single
    out = str(tmp_path / 'x3.onnx')
    assert main(['--weights', weights, '--format', 'onnx', '--output', out]) == 0
    _check_onnx(out, net, [(1, 12, 17), (2, 9, 23)])


def test_onnx_multiscale_one_scale(tmp_path):
    torch.manual_seed(0)
    net = MultiScaleMRNet(num_feat=8, num_block=1, upscales=(2, 4), num_recursions=(2, 3)).eval()
    weights = _save(tmp_path, net, 'ms.pth')
    out = str(tmp_path / 'ms_x4.onnx')
    assert main(['--weights', weights, '--format', 'onnx', '--output', out, '--scale', '4']) == 0
    _check_onnx(out, lambda x: net(x, scale=4), [(1, 8, 10), (1, 13, 7)])
