"""Photos as cameras write them: EXIF orientation 1-8, ICC profile and EXIF carried by ``mrnet infer``, CMYK and
palette images (``mrnet_arch.storage.images``).

Every photo here is a real JPEG (or PNG) of ``skimage.data.chelsea()`` whose stored pixels are turned so that,
once its EXIF orientation is applied, it is the upright original (Pillow's ``Image.transpose``, the inverse
of what the orientation asks for).
"""
import functools
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MRNet
from mrnet_arch.storage import images

H, W = 48, 72  # upright size of the small photos (not square: a rotation shows in the shape; multiples of 12)
ORIENTATIONS = range(1, 9)
MAKE = 0x010F  # an EXIF tag that must survive, besides the orientation


def _stored_for(n):
    """The Pillow transpose that stores an upright image so that orientation ``n`` shows it upright."""
    from PIL import Image
    t = Image.Transpose
    return {1: None, 2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_90,
            7: t.TRANSVERSE, 8: t.ROTATE_270}[n]


@functools.lru_cache(maxsize=None)
def _srgb_profile():
    """A real sRGB ICC profile (the same bytes every call: the profile holds its creation time)."""
    from PIL import ImageCms
    return ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()


def _upright(height=H, width=W):
    """An RGB uint8 crop of chelsea (the cat's face)."""
    from skimage import data
    return np.ascontiguousarray(data.chelsea()[60:60 + height, 150:150 + width])


def _save_oriented(path, rgb, n, mode=None, **kwargs):
    """Save ``rgb`` (upright) so that EXIF orientation ``n`` shows it upright; returns the path."""
    from PIL import Image
    img = Image.fromarray(rgb)
    if mode:
        img = img.convert(mode)
    if _stored_for(n) is not None:
        img = img.transpose(_stored_for(n))
    exif = Image.Exif()
    exif[0x0112] = n
    exif[MAKE] = 'MRNetTestCam'
    img.save(path, exif=exif, **kwargs)
    return str(path)


def _bgr(rgb):
    return rgb[..., ::-1]


def _mean_error(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.fixture(scope='module')
def oriented(tmp_path_factory):
    """Folder with ``o1.jpg`` ... ``o8.jpg`` (quality 95, sRGB ICC profile) and the upright RGB original."""
    folder = tmp_path_factory.mktemp('oriented')
    rgb = _upright()
    for n in ORIENTATIONS:
        _save_oriented(folder / f'o{n}.jpg', rgb, n, quality=95, icc_profile=_srgb_profile())
    return folder, rgb


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=2).eval()
    path = tmp_path_factory.mktemp('weights') / 'net_g_latest.pth'
    torch.save({'params_ema': net.state_dict()}, path)
    return str(path)


def _infer(weights, src, out):
    from mrnet_arch.commands.infer import main
    return main(['--weights', weights, '--input', str(src), '--output', str(out), '--device', 'cpu'])


def _exif_and_icc(path):
    from PIL import Image
    with Image.open(path) as img:
        img.load()
        return img.getexif(), img.info.get('icc_profile')


# ------------------------------------------------------------------------------------------- readers


@pytest.mark.parametrize('n', ORIENTATIONS)
def test_core_reader_and_header_size_are_upright(oriented, n):
    folder, rgb = oriented
    path = str(folder / f'o{n}.jpg')
    assert images.read_metadata(path).orientation == n
    for color in (False, True):  # infer/prepare read as stored, bench/evaluation as colour
        img = images.read_image(path, color=color)
        assert img.shape == (H, W, 3)
        assert _mean_error(img, _bgr(rgb)) < 3  # JPEG noise only; a turned or mirrored image is far off
    assert images.image_size(path) == ((H, W), None)
    stored = cv2.imread(path, cv2.IMREAD_UNCHANGED)  # OpenCV without orientation: as stored
    assert stored.shape[:2] == ((W, H) if n >= 5 else (H, W))
    if n != 1:
        assert stored.shape != (H, W, 3) or _mean_error(stored, _bgr(rgb)) > 20


def test_reader_agrees_with_pillow_and_basicsr(oriented):
    """The same pixels as Pillow's ``exif_transpose`` and as BasicSR's loaders (``imfrombytes``)."""
    from PIL import Image, ImageOps

    from basicsr.utils import imfrombytes
    folder, _ = oriented
    for n in ORIENTATIONS:
        path = str(folder / f'o{n}.jpg')
        with Image.open(path) as img:
            pillow = np.asarray(ImageOps.exif_transpose(img).convert('RGB'))[..., ::-1]
        ours = images.read_image(path)
        assert _mean_error(ours, pillow) < 1.5  # two JPEG decoders
        with open(path, 'rb') as f:
            basicsr = imfrombytes(f.read(), float32=False)
        assert np.array_equal(ours, basicsr)


@pytest.mark.parametrize('n', [6, 5])
def test_png_and_tiff_with_orientation_keep_bit_depth_and_gray(tmp_path, n):
    """16-bit gray PNG and TIFF, 8-bit RGB TIFF (OpenCV alone cannot read a rotated TIFF)."""
    gray16 = (cv2.cvtColor(_upright(), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    for ext in ('png', 'tif'):
        path = _save_oriented(tmp_path / f'g16.{ext}', gray16, n, mode='I;16')
        img = images.read_image(path)
        assert img.dtype == np.uint16 and img.shape == (H, W) and np.array_equal(img, gray16)
        assert images.image_size(path) == ((H, W), None)
    path = _save_oriented(tmp_path / 'rgb.tif', _upright(), n)
    assert np.array_equal(images.read_image(path), _bgr(_upright()))
    assert images.image_size(path) == ((H, W), None)


def test_png_exif_after_the_image_data_is_found(tmp_path):
    """An ``eXIf`` chunk after ``IDAT`` (allowed, and written by some tools) is read from the file."""
    import struct
    path = _save_oriented(tmp_path / 'late.png', _upright(), 6)
    data = open(path, 'rb').read()
    start = data.index(b'eXIf') - 4
    end = start + 12 + struct.unpack('>I', data[start:start + 4])[0]
    chunk, rest = data[start:end], data[:start] + data[end:]
    iend = rest.index(b'IEND') - 4
    with open(path, 'wb') as f:
        f.write(rest[:iend] + chunk + rest[iend:])
    assert open(path, 'rb').read().index(b'eXIf') > open(path, 'rb').read().index(b'IDAT')
    assert images.image_size(path) == ((H, W), None)
    assert np.array_equal(images.read_image(path), _bgr(_upright()))


# -------------------------------------------------------------------------------------------- infer


def test_infer_writes_upright_outputs_with_profile_and_exif(oriented, weights, tmp_path):
    folder, _ = oriented
    out = tmp_path / 'out'
    assert _infer(weights, folder, out) == 0
    reference = images.read_image(str(out / 'o1.jpg'))
    for n in ORIENTATIONS:
        path = str(out / f'o{n}.jpg')
        result = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert result.shape == (2 * H, 2 * W, 3)
        assert _mean_error(result, reference) < 4  # the same upright picture (input JPEG noise aside)
        exif, icc = _exif_and_icc(path)
        assert exif.get(0x0112) == 1 and exif.get(MAKE) == 'MRNetTestCam'
        assert icc == _srgb_profile()
        assert images.read_metadata(path).orientation == 1


def test_infer_png_keeps_profile_exif_and_16_bits(weights, tmp_path):
    src = tmp_path / 'in'
    src.mkdir()
    gray16 = (cv2.cvtColor(_upright(), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    _save_oriented(src / 'gray16.png', gray16, 8, mode='I;16')
    _save_oriented(src / 'rgb.png', _upright(), 6, icc_profile=_srgb_profile())
    _save_oriented(src / 'rgb_upright.png', _upright(), 1)
    assert _infer(weights, src, tmp_path / 'out') == 0
    result = cv2.imread(str(tmp_path / 'out' / 'gray16.png'), cv2.IMREAD_UNCHANGED)
    assert result.dtype == np.uint16 and result.shape == (2 * H, 2 * W)
    exif, icc = _exif_and_icc(str(tmp_path / 'out' / 'rgb.png'))
    assert exif.get(0x0112) == 1 and exif.get(MAKE) == 'MRNetTestCam' and icc == _srgb_profile()
    rgb = cv2.imread(str(tmp_path / 'out' / 'rgb.png'), cv2.IMREAD_UNCHANGED)
    assert rgb.shape == (2 * H, 2 * W, 3)
    assert np.array_equal(rgb, cv2.imread(str(tmp_path / 'out' / 'rgb_upright.png'), cv2.IMREAD_UNCHANGED))


def test_metadata_round_trip_in_webp_with_alpha(tmp_path):
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = 3
    exif[MAKE] = 'MRNetTestCam'
    meta = images.ImageMetadata(icc=_srgb_profile(), exif=exif.tobytes()[6:])
    bgra = np.dstack([_bgr(_upright()), np.full((H, W), 200, np.uint8)])
    images.write_image(str(tmp_path / 'a.webp'), bgra, metadata=meta)
    back_exif, icc = _exif_and_icc(str(tmp_path / 'a.webp'))
    assert icc == _srgb_profile() and back_exif.get(0x0112) == 1 and back_exif.get(MAKE) == 'MRNetTestCam'
    assert images.read_image(str(tmp_path / 'a.webp')).shape == (H, W, 4)


# ---------------------------------------------------------------------------------- prepare and bench


def test_prepare_benchmark_writes_upright_images(oriented, tmp_path):
    from mrnet_arch.dataprep.prepare import prepare_benchmark
    folder, rgb = oriented
    out = prepare_benchmark(str(folder), str(tmp_path / 'bench'), scales=[2], workers=1)
    for n in ORIENTATIONS:
        gt = cv2.imread(osp.join(out['gt'], f'o{n}.png'), cv2.IMREAD_UNCHANGED)
        assert gt.shape == (H, W, 3) and _mean_error(gt, _bgr(rgb)) < 3
        assert cv2.imread(osp.join(out[2], f'o{n}.png')).shape == (H // 2, W // 2, 3)


def test_bench_scores_oriented_ground_truth(oriented, tmp_path):
    """``mrnet bench``'s scoring reads an oriented GT upright: bicubic scores alike for every orientation."""
    from mrnet_arch.commands.bench.score import score_model
    from mrnet_arch.dataprep.prepare import bicubic_downscale
    folder, rgb = oriented
    lr = tmp_path / 'lr.png'
    cv2.imwrite(str(lr), _bgr(bicubic_downscale(rgb, 2)))

    def bicubic(x):
        return torch.nn.functional.interpolate(x, scale_factor=2, mode='bicubic').clamp(0, 1)

    pairs = {f'o{n}': [(str(folder / f'o{n}.jpg'), str(lr))] for n in ORIENTATIONS}
    scores = score_model(bicubic, pairs, 2)
    psnr = [scores[f'o{n}']['psnr'] for n in ORIENTATIONS]
    assert min(psnr) > 24 and max(psnr) - min(psnr) < 1


def test_checks_compare_upright_sizes(tmp_path):
    """A GT JPEG stored sideways (orientation 6/8) pairs with an upright LR: the checks pass, as training reads
    it upright; the sideways size would not match the scale."""
    from mrnet_arch.dataprep.prepare import bicubic_downscale
    from mrnet_arch.preflight.checks import check_datasets
    gt_dir, lq_dir = tmp_path / 'GT', tmp_path / 'LR'
    gt_dir.mkdir()
    lq_dir.mkdir()
    rgb = _upright()
    for n in (6, 8):
        _save_oriented(gt_dir / f'{n}.jpg', rgb, n, quality=95)
        cv2.imwrite(str(lq_dir / f'{n}.jpg'), _bgr(bicubic_downscale(rgb, 2)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    dataset = {'name': 'photos', 'type': 'PairedImageDataset', 'dataroot_gt': str(gt_dir), 'dataroot_lq': str(lq_dir),
               'io_backend': {'type': 'disk'}, 'scale': 2, 'phase': 'train', 'gt_size': 32}
    check_datasets({'scale': 2, 'datasets': {'train': dataset}})


# --------------------------------------------------------------------------------------- CMYK, palette


def test_cmyk_jpeg_is_read_as_rgb_and_its_profile_not_carried(weights, tmp_path):
    """A CMYK JPEG (orientation 6) is read as upright BGR; infer writes an RGB JPEG with the EXIF data and
    without the CMYK profile (it does not describe RGB pixels)."""
    src = tmp_path / 'in'
    src.mkdir()
    cmyk_profile = bytearray(_srgb_profile())
    cmyk_profile[16:20] = b'CMYK'  # the header's colour space is what decides
    path = _save_oriented(src / 'cmyk.jpg', _upright(), 6, mode='CMYK', quality=95, icc_profile=bytes(cmyk_profile))
    assert images.read_metadata(path).mode == 'CMYK'
    img = images.read_image(path)
    assert img.shape == (H, W, 3) and _mean_error(img, _bgr(_upright())) < 6
    assert _infer(weights, src, tmp_path / 'out') == 0
    out = str(tmp_path / 'out' / 'cmyk.jpg')
    assert cv2.imread(out, cv2.IMREAD_UNCHANGED).shape == (2 * H, 2 * W, 3)
    exif, icc = _exif_and_icc(out)
    assert exif.get(0x0112) == 1 and icc is None


@pytest.mark.parametrize('transparent', [False, True])
def test_palette_png_is_read_as_rgb_or_rgba(weights, tmp_path, transparent):
    from PIL import Image
    src = tmp_path / 'in'
    src.mkdir()
    pal = Image.fromarray(_upright()).convert('P', palette=Image.Palette.ADAPTIVE, colors=64)
    pal.save(src / 'pal.png', **({'transparency': 0} if transparent else {}))
    with Image.open(src / 'pal.png') as saved:
        expected = np.asarray(saved.convert('RGBA' if transparent else 'RGB'))
    expected = expected[..., [2, 1, 0, 3]] if transparent else _bgr(expected)
    img = images.read_image(str(src / 'pal.png'))
    assert img.shape == expected.shape
    opaque = expected[..., 3] > 0 if transparent else np.ones((H, W), bool)
    assert np.array_equal(img[opaque], expected[opaque])  # the transparent colour's own value may differ
    if transparent:
        assert np.array_equal(img[..., 3], expected[..., 3]) and not opaque.all()
    assert _infer(weights, src, tmp_path / 'out') == 0
    out = cv2.imread(str(tmp_path / 'out' / 'pal.png'), cv2.IMREAD_UNCHANGED)
    assert out.shape == (2 * H, 2 * W, 4 if transparent else 3)


def test_unsupported_pixel_type_is_refused_by_name(tmp_path):
    """A rotated 32-bit float TIFF decodes, but it is no kind infer or prepare handles."""
    path = _save_oriented(tmp_path / 'float.tif', _upright()[..., 0], 6, mode='F')
    with pytest.raises(images.ImageError, match=f'{path}: unsupported pixel type float32'):
        images.read_image(path)
