"""Decompression bombs refused from the header, Pillow-written metadata, precision auto and the public Upscaler."""
import glob
import io
import json
import struct
import time
import zlib
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

import mrnet_arch
from mrnet_arch.cli import main as mrnet
from mrnet_arch.inference import precision
from mrnet_arch.measurement.machine import machine_info, native_bf16
from mrnet_arch.models.mrnet_model import AMP_DTYPES
from mrnet_arch.storage import images


def infer_main(argv):
    """``mrnet infer``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['infer', *argv])


REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_WEIGHTS = osp.join(REPO, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')


def _small(fmt, **kwargs):
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(buf, fmt, **kwargs)
    return bytearray(buf.getvalue())


def _png(w, h):
    data = _small('PNG')
    struct.pack_into('>II', data, 16, w, h)  # IHDR width, height, then its CRC
    struct.pack_into('>I', data, 29, zlib.crc32(bytes(data[12:29])))
    return data


def _jpeg(w, h):
    data = _small('JPEG')
    struct.pack_into('>HH', data, data.index(b'\xff\xc0') + 5, h, w)  # SOF0 height, width
    return data


def _bmp(w, h):
    data = _small('BMP')
    struct.pack_into('<ii', data, 18, w, h)
    return data


def _tiff(w, h):
    data = _small('TIFF')
    ifd = struct.unpack_from('<I', data, 4)[0]
    for k in range(struct.unpack_from('<H', data, ifd)[0]):
        entry = ifd + 2 + 12 * k
        tag, kind = struct.unpack_from('<HH', data, entry)
        if tag in (256, 257):  # ImageWidth, ImageLength
            struct.pack_into('<H' if kind == 3 else '<I', data, entry + 8, w if tag == 256 else h)
    return data


def _webp(w, h):
    data = _small('WEBP', quality=50)
    struct.pack_into('<HH', data, data.index(b'\x9d\x01\x2a') + 3, w, h)  # VP8 frame width, height (14 bits)
    return data


BOMBS = {'png': (_png, 20000, 20000), 'jpg': (_jpeg, 60000, 60000), 'bmp': (_bmp, 20000, 20000),
         'tif': (_tiff, 20000, 20000), 'webp': (_webp, 16383, 16383)}


@pytest.mark.parametrize('ext', sorted(BOMBS))
def test_header_claiming_a_huge_size_is_refused_within_a_second(tmp_path, ext):
    make, w, h = BOMBS[ext]
    path = tmp_path / f'bomb.{ext}'
    path.write_bytes(bytes(make(w, h)))
    start = time.perf_counter()
    with pytest.raises(images.ImageError) as err:
        images.read_image(str(path))
    assert time.perf_counter() - start < 1
    message = str(err.value)
    assert str(path) in message and f'{w * h:,} pixels' in message and '--max-pixels' in message
    assert images.image_size(str(path), max_pixels=None)[1] == message  # the header check of compare


def test_max_pixels_lowers_and_raises_the_limit(tmp_path):
    path = str(tmp_path / 'small.png')
    cv2.imwrite(path, np.zeros((30, 40, 3), np.uint8))
    assert images.read_image(path).shape == (30, 40, 3)
    with pytest.raises(images.ImageError, match='1,200 pixels, more than the limit of 1,199'):
        images.read_image(path, max_pixels=1199)
    bomb = tmp_path / 'big.png'
    bomb.write_bytes(bytes(_png(20000, 20000)))
    with pytest.raises(images.ImageError, match='not a readable image'):  # allowed: now the decoder fails
        images.read_image(str(bomb), max_pixels=20000 * 20000)


def test_infer_refuses_a_bomb_before_creating_anything(tmp_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    (src / 'bomb.png').write_bytes(bytes(_png(20000, 20000)))
    assert infer_main(['--weights', DEMO_WEIGHTS, '--input', str(src), '--output', str(tmp_path / 'out'),
                       '--device', 'cpu']) == 2
    err = capsys.readouterr().err
    assert 'bomb.png' in err and '400,000,000 pixels' in err and '--max-pixels' in err and 'Traceback' not in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('ext', ['.jpg', '.png', '.webp'])
def test_pillow_writes_profile_and_upright_exif(tmp_path, ext):
    from PIL import Image, ImageCms
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, 'MRNetTestCam'
    meta = images.ImageMetadata(icc=icc, exif=exif.tobytes()[6:] if exif.tobytes().startswith(b'Exif') else
                                exif.tobytes(), orientation=6)
    out = str(tmp_path / f'o{ext}')
    pixels = np.dstack([np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))] * 3)
    images.write_image(out, pixels, metadata=meta)
    with Image.open(out) as img:
        assert img.info.get('icc_profile') == icc
        assert img.getexif()[0x0112] == 1 and img.getexif()[0x010F] == 'MRNetTestCam'
    back = cv2.imread(out, cv2.IMREAD_UNCHANGED)
    assert back.shape == (30, 40, 3) and np.abs(back.astype(int) - pixels).max() <= (0 if ext != '.jpg' else 3)


@pytest.mark.parametrize('channels', [1, 3])
def test_16_bit_png_with_a_profile_stays_16_bit(tmp_path, channels):
    """Gray 16-bit PNGs are written by Pillow, colour ones by OpenCV with inserted chunks (Pillow cannot)."""
    from PIL import ImageCms
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes())
    if channels == 1:
        icc[16:20] = b'GRAY'  # the colour space field: a profile that fits gray pixels
    exif = (b'MM\x00*\x00\x00\x00\x08\x00\x01'  # big-endian TIFF, one IFD entry: orientation (SHORT) 8
            b'\x01\x12\x00\x03\x00\x00\x00\x01\x00\x08\x00\x00\x00\x00\x00\x00')
    out = str(tmp_path / 'p16.png')
    pixels = np.arange(1200 * channels, dtype=np.uint16).reshape(30, 40, channels) * 50 + 7
    images.write_image(out, pixels, metadata=images.ImageMetadata(exif=exif, icc=bytes(icc), orientation=8))
    back = cv2.imread(out, cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back.reshape(pixels.shape), pixels)
    meta = images.read_metadata(out)
    assert meta.icc == bytes(icc) and meta.exif is not None and meta.orientation == 1


def test_precision_auto_follows_native_bf16_and_the_measurement():
    flags = open('/proc/cpuinfo', encoding='utf-8').read()
    native = ('amx_bf16' in flags or 'avx512_bf16' in flags) and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert native_bf16() == native
    expected = 'bf16' if precision.AUTO_BF16 and native else 'fp32'
    assert precision.resolve_precision('auto', 'cpu') == expected
    assert precision.resolve_precision('fp32', 'cpu') == 'fp32'
    with pytest.raises(ValueError, match='precision must be one of'):
        precision.resolve_precision('fp8', 'cpu')
    assert machine_info(torch.device('cpu'))['native_bf16_cpu'] == native
    # the decision is the measured one: bf16 kept for auto only within the tolerance on the held-out photos
    files = sorted(glob.glob(osp.join(REPO, 'benchmarks', 'results', 'precision_auto_cpu_*.json')))
    assert files, 'no results of benchmarks/precision_auto.py'
    result = json.load(open(files[-1], encoding='utf-8'))
    assert result['tolerance_db'] == precision.AUTO_BF16_TOLERANCE_DB
    assert result['bf16_within_tolerance'] == precision.AUTO_BF16
    assert result['bf16_within_tolerance'] == (max(abs(d) for d in result['bf16_minus_fp32_db'].values())
                                               <= result['tolerance_db'])


def test_inference_precisions_have_the_dtypes_of_training_amp():
    """``mrnet infer --precision`` and ``train: amp`` name the same dtypes (two tables, one in the drop-in model)."""
    for name in ('fp32', 'bf16', 'fp16'):
        assert precision.dtype_and_mode(name)[0] is AMP_DTYPES[name], name
    assert precision.dtype_and_mode('bf16-cast') == (torch.bfloat16, 'cast')
    assert precision.PRECISION_NAMES == ('fp32', 'bf16', 'fp16', 'bf16-cast', 'fp16-cast')


def test_public_upscaler_from_weights(tmp_path):
    from skimage import data
    assert 'Upscaler' in mrnet_arch.__all__
    up = mrnet_arch.Upscaler.from_weights(DEMO_WEIGHTS, device='cpu', precision='fp32')
    assert up.scale == 2 and up.precision == 'fp32' and up.tile_pad == 32
    src, dst = str(tmp_path / 'cat.png'), str(tmp_path / 'cat_x2.png')
    cv2.imwrite(src, np.ascontiguousarray(data.chelsea()[100:140, 150:200, ::-1]))
    out = up.upscale_file(src, dst)
    assert out.shape == (80, 100, 3) and out.dtype == np.uint8
    assert np.array_equal(cv2.imread(dst), out)
    assert np.array_equal(up.upscale(cv2.imread(src)), out)
    with pytest.raises(AttributeError):
        mrnet_arch.NoSuchThing  # noqa: B018
