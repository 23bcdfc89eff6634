"""``mrnet infer``: image kinds, tiling, bad files, and never overwriting."""
import copy

import cv2
import numpy as np
import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MRNet
from mrnet_arch.archs.mrnet_config import receptive_radius
from mrnet_arch.cli import main as mrnet
from mrnet_arch.models.mrnet_tiling import tiled_forward
from mrnet_arch.storage.weights import infer_config


def main(argv):
    """``mrnet infer``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['infer', *argv])


def _astronaut(height, width):
    """An RGB uint8 crop of skimage's astronaut photo (face and suit: edges and texture)."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[60:60 + height, 140:140 + width])


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=2).eval()


@pytest.fixture()
def weights(tmp_path, net):
    path = tmp_path / 'net_g_latest.pth'
    torch.save({'params_ema': net.state_dict()}, path)
    return str(path)


def _infer(weights, src, out, *extra):
    """``mrnet infer`` on the CPU, in fp32 unless ``extra`` names a precision (the default, auto, may be bf16)."""
    precision = [] if '--precision' in extra else ['--precision', 'fp32']
    return main(['--weights', weights, '--input', str(src), '--output', str(out), '--device', 'cpu', *precision,
                 *extra])


def test_tiled_matches_untiled_on_a_photo(net):
    x = torch.from_numpy(_astronaut(56, 72)).permute(2, 0, 1)[None].float() / 255.
    pad = receptive_radius(infer_config(net.state_dict()))
    with torch.no_grad():
        whole = net(x).clamp(0, 1)
        tiled = tiled_forward(net, x, 2, tile=16, tile_pad=pad).clamp(0, 1)
        no_pad = tiled_forward(net, x, 2, tile=16, tile_pad=0).clamp(0, 1)
    assert tiled.shape == whole.shape == (1, 3, 112, 144)
    assert (tiled - whole).abs().max() <= 1 / 255
    assert (no_pad - whole).abs().max() > 1 / 255  # the pad matters: without it the seams show


def test_cli_tiled_equals_untiled_files(tmp_path, weights):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'photo.png'), cv2.cvtColor(_astronaut(40, 52), cv2.COLOR_RGB2BGR))
    assert _infer(weights, src, tmp_path / 'whole') == 0
    assert _infer(weights, src, tmp_path / 'tiled', '--tile', '12') == 0
    whole = cv2.imread(str(tmp_path / 'whole' / 'photo.png'), cv2.IMREAD_UNCHANGED).astype(int)
    tiled = cv2.imread(str(tmp_path / 'tiled' / 'photo.png'), cv2.IMREAD_UNCHANGED).astype(int)
    assert whole.shape == (80, 104, 3)
    assert np.abs(whole - tiled).max() <= 1


def test_kinds_and_bit_depths_kept(tmp_path, weights, net):
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    rgb = _astronaut(24, 20)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    alpha = np.tile(np.linspace(0, 255, 20).astype(np.uint8), (24, 1))
    files = {
        'gray.png': gray,
        'gray16.tif': gray.astype(np.uint16) * 256 + 37,  # not a multiple of 257: real 16-bit data
        'rgb16.png': bgr.astype(np.uint16) * 257,
        'rgba.png': np.dstack([bgr, alpha]),
        'photo.jpg': bgr,
        'photo.webp': bgr,
        'photo.bmp': bgr,
    }
    for name, img in files.items():
        assert cv2.imwrite(str(src / name), img)
    assert _infer(weights, src, out, '--suffix', '_x2') == 0
    for name, img in files.items():
        stem, ext = name.rsplit('.', 1)
        result = cv2.imread(str(out / f'{stem}_x2.{ext}'), cv2.IMREAD_UNCHANGED)
        assert result is not None, name
        assert result.dtype == img.dtype, name
        assert result.shape == (48, 40) + img.shape[2:], name
    gray16 = cv2.imread(str(out / 'gray16_x2.tif'), cv2.IMREAD_UNCHANGED)
    assert np.any(gray16 % 257 != 0)  # real 16-bit values, not 8-bit ones scaled up
    rgba = cv2.imread(str(out / 'rgba_x2.png'), cv2.IMREAD_UNCHANGED)
    expected_alpha = np.clip(cv2.resize(alpha.astype(np.float32) / 255, (40, 48), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert np.abs(rgba[:, :, 3].astype(int) - np.round(expected_alpha * 255)).max() <= 1
    rgb_out = cv2.imread(str(out / 'rgb16_x2.png'), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        ref = net(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()[:, :, ::-1]
    assert np.abs(rgb_out - ref).max() <= 1 / 65535 + 1e-6


def test_unreadable_file_skipped_with_nonzero_exit(tmp_path, weights, capsys):
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    cv2.imwrite(str(src / 'a.png'), _astronaut(10, 12))
    (src / 'broken.png').write_bytes(b'this is no png')
    (src / 'notes.txt').write_text('ignored: not an image extension')
    assert _infer(weights, src, out) == 1
    err = capsys.readouterr().err
    assert 'broken.png' in err and '1 of 2 image(s) written' in err
    assert (out / 'a.png').exists() and not (out / 'broken.png').exists()


def test_existing_outputs_need_overwrite(tmp_path, weights):
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    out.mkdir()
    cv2.imwrite(str(src / 'a.png'), _astronaut(10, 12))
    (out / 'a.png').write_bytes(b'keep me')
    assert _infer(weights, src, out) == 2
    assert (out / 'a.png').read_bytes() == b'keep me'
    assert _infer(weights, src, out, '--overwrite') == 0
    assert cv2.imread(str(out / 'a.png')).shape == (20, 24, 3)


def test_inputs_never_overwritten(tmp_path, weights, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'a.png'), _astronaut(10, 12))
    before = (src / 'a.png').read_bytes()
    assert _infer(weights, src, src, '--overwrite') == 2
    assert _infer(weights, src / 'a.png', src, '--overwrite', '--suffix', '_sr') == 2
    assert 'inputs are never overwritten' in capsys.readouterr().err
    assert sorted(p.name for p in src.iterdir()) == ['a.png']
    assert (src / 'a.png').read_bytes() == before


@pytest.mark.parametrize('args,message', [
    (['--scale', '4'], 'scale x4 was asked for'),
    (['--precision', 'fp16'], '--precision fp16 needs CUDA'),  # _infer passes --device cpu
    (['--tile', '-1'], '--tile must be >= 0, got -1'),
    (['--tile', '4', '--tile-pad', '-1'], '--tile-pad must be >= 0, got -1'),
])
def test_usage_errors(tmp_path, weights, capsys, args, message):
    """Wrong scale, fp16 without CUDA, negative tile options: exit status 2, a message, nothing written."""
    src = tmp_path / 'a.png'
    cv2.imwrite(str(src), _astronaut(10, 12))
    assert _infer(weights, src, tmp_path / 'out', *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_one_channel_model_on_color_image(tmp_path):
    torch.manual_seed(1)
    gray_net = MRNet(num_in_ch=1, num_out_ch=1, num_feat=8, num_block=1, upscale=2, num_recursion=2).eval()
    weights = tmp_path / 'y.pth'
    torch.save(gray_net.state_dict(), weights)
    cv2.imwrite(str(tmp_path / 'c.png'), _astronaut(10, 12))
    assert _infer(str(weights), tmp_path / 'c.png', tmp_path / 'out') == 0
    result = cv2.imread(str(tmp_path / 'out' / 'c.png'), cv2.IMREAD_UNCHANGED)
    assert result.shape == (20, 24, 3)


def test_bf16_keeps_the_output_head_in_float32(net):
    """bf16 goes through ``prepare_fast`` (autocast, output head in float32): close to fp32 on a photo."""
    from mrnet_arch.inference.upscaler import Upscaler
    config = infer_config(net.state_dict())
    img = cv2.cvtColor(_astronaut(24, 32), cv2.COLOR_RGB2BGR).astype(np.float32) / 255
    fp32 = Upscaler(copy.deepcopy(net), config, torch.device('cpu'), 'fp32').upscale(img)
    bf16 = Upscaler(copy.deepcopy(net), config, torch.device('cpu'), 'bf16')
    assert bf16.net.fp32_modules == ['reconstruction.conv_last']
    assert next(net.parameters()).dtype == torch.float32
    assert 0 < np.abs(bf16.upscale(img) - fp32).max() < 1e-3


def test_names_differing_only_in_case_are_refused(tmp_path, weights, capsys):
    """a.png and A.PNG would be one output file on a case-insensitive file system."""
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'a.png'), _astronaut(10, 12))
    cv2.imwrite(str(src / 'A.PNG'), _astronaut(10, 12))
    assert _infer(weights, src, tmp_path / 'out') == 2
    assert 'differ only in case' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_ppm_and_pgm_inputs_keep_their_format(tmp_path, weights):
    """The file types of ``mrnet prepare``: .ppm (colour) and .pgm (gray) are read and written back."""
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    bgr = cv2.cvtColor(_astronaut(12, 10), cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(src / 'c.ppm'), bgr)
    assert cv2.imwrite(str(src / 'g.pgm'), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert _infer(weights, src, out) == 0
    assert cv2.imread(str(out / 'c.ppm'), cv2.IMREAD_UNCHANGED).shape == (24, 20, 3)
    assert cv2.imread(str(out / 'g.pgm'), cv2.IMREAD_UNCHANGED).shape == (24, 20)
