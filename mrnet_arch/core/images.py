"""Image files: the accepted extensions, the one reader and the one writer, and listing a folder's images.

Every command, benchmark and tool decodes image files with ``read_image`` and encodes them with
``write_image``; the tools differ only in the arguments:

- ``mrnet infer`` reads as stored (8 or 16 bits, gray, BGR or BGRA) and converts with ``to_float`` /
  ``from_float``, so the output keeps the input's bit depth, alpha and gray;
- ``mrnet prepare`` reads as stored with ``dtypes=(np.uint8, )``, so a 16-bit image is refused by name;
- ``mrnet bench`` and the evaluation read with ``color=True``: 3-channel 8-bit BGR (gray replicated, alpha
  dropped), as BasicSR's ``PairedImageDataset`` decodes images.

Photos as cameras write them (``read_metadata``, read with Pillow from the header; no pixel is decoded):

- EXIF orientation (tag 0x0112, values 2-8) is applied by ``read_image`` for every tool and both modes, so
  images come out upright; ``image_size`` gives the upright size (5-8 swap height and width), which is what
  BasicSR's loaders (``cv2.IMREAD_COLOR``) decode. OpenCV applies the orientation with ``IMREAD_COLOR`` but
  not with ``IMREAD_UNCHANGED``, so pixels are decoded without it (``IMREAD_IGNORE_ORIENTATION``) and turned
  here. OpenCV turns TIFFs itself whatever the flags (and cannot read the rotated ones), so a TIFF with an
  orientation is decoded from its bytes with the orientation tag set to 1, then turned here as well.
- CMYK images are converted to BGR (8-bit); palette images are expanded to BGR, or BGRA with a
  transparent colour, by OpenCV's decoders. Any other pixel type (32-bit or float TIFFs, for example) is
  refused with an error naming the file.
- ``write_image(..., metadata=...)`` carries the ICC profile and the EXIF data (orientation set to 1, since
  the pixels are upright) into JPEG (APP1/APP2 segments), PNG (``iCCP``/``eXIf`` chunks) and WebP (``VP8X``
  with ``ICCP``/``EXIF`` chunks). The pixels are still encoded by OpenCV (so 16-bit PNG/TIFF stay 16-bit);
  the metadata are inserted into its output. TIFF, BMP and PPM/PGM outputs carry none. An ICC profile whose
  colour space does not fit the output (a CMYK profile for the RGB pixels of a CMYK JPEG) is dropped.
"""
import os
import struct
import zlib
from dataclasses import dataclass
from os import path as osp

import cv2
import numpy as np

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
MAX_VALUES = {np.dtype(np.uint8): 255., np.dtype(np.uint16): 65535.}
PIXEL_TYPES = (np.uint8, np.uint16)
JPEG_QUALITY = 95
_TAIL_BYTES = 1024
_END_MARKERS = {'.png': b'IEND', '.jpg': b'\xff\xd9', '.jpeg': b'\xff\xd9'}
_BITS = {np.dtype(np.uint8): '8-bit', np.dtype(np.uint16): '16-bit'}
ORIENTATION_TAG = 0x0112
_ICC_SPACES = {1: (b'GRAY', ), 3: (b'RGB ', ), 4: (b'RGB ', )}  # output channels -> fitting ICC colour spaces
_JPEG_APP_MAX = 65533  # bytes of a JPEG segment after its length field
_ICC_JPEG_CHUNK = _JPEG_APP_MAX - 14  # 'ICC_PROFILE\0', sequence number and count


@dataclass(frozen=True)
class ImageMetadata:
    """What ``read_metadata`` reads from an image file's header.

    Attributes:
        format (str): Pillow's format name ('JPEG', 'PNG', 'TIFF', ...).
        mode (str): Pillow's mode of the stored pixels ('RGB', 'L', 'P', 'CMYK', 'I;16', ...).
        orientation (int): EXIF orientation 1-8 (1: stored upright; anything else read as 1 is 1).
        icc (bytes | None): The ICC profile.
        exif (bytes | None): The EXIF data as a TIFF structure (without JPEG's ``Exif\0\0`` prefix).
    """
    format: str = ''
    mode: str = ''
    orientation: int = 1
    icc: bytes = None
    exif: bytes = None


class ImageError(Exception):
    """An image file that cannot be read or written, or is of a kind that is not accepted; names the file."""


def is_image_file(name):
    """Whether a file name has one of ``IMAGE_EXTENSIONS`` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder):
    """The image files directly in ``folder`` (``IMAGE_EXTENSIONS``, not recursive), sorted by name.

    Args:
        folder (str): The folder.

    Returns:
        list[str]: File names (not paths); empty when there is none.

    Raises:
        NotADirectoryError: ``folder`` is no directory.
    """
    if not osp.isdir(folder):
        raise NotADirectoryError(f'Not a folder: {folder}')
    return sorted(f for f in os.listdir(folder) if is_image_file(f) and osp.isfile(osp.join(folder, f)))


def _orientation_field(tiff):
    """Byte order ('<' or '>') and offset of the orientation value in EXIF data (a TIFF structure), or None."""
    order = {b'II': '<', b'MM': '>'}.get(bytes(tiff[:2]))
    if len(tiff) < 8 or order is None or struct.unpack_from(order + 'H', tiff, 2)[0] != 42:  # not BigTIFF
        return None
    ifd = struct.unpack_from(order + 'I', tiff, 4)[0]
    if ifd + 2 > len(tiff):
        return None
    for i in range(struct.unpack_from(order + 'H', tiff, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            return None
        tag, kind = struct.unpack_from(order + 'HH', tiff, entry)
        if tag == ORIENTATION_TAG and kind == 3:  # SHORT, stored in the entry
            return order, entry + 8
    return None


def _png_exif(path):
    """The payload of a PNG's ``eXIf`` chunk wherever it is (Pillow sees it only before the image data)."""
    with open(path, 'rb') as f:
        f.seek(8)
        while True:
            head = f.read(8)
            if len(head) < 8:
                return None
            length, kind = struct.unpack('>I4s', head)
            if kind == b'eXIf':
                data = f.read(length)
                return data if len(data) == length else None
            if kind == b'IEND':
                return None
            f.seek(length + 4, os.SEEK_CUR)


def _metadata_of(img, path):
    """``ImageMetadata`` of an image opened with Pillow (header only)."""
    exif = img.info.get('exif')
    if exif is None and img.format == 'PNG':
        exif = _png_exif(path)
    if exif is not None and exif.startswith(b'Exif\0\0'):
        exif = exif[6:]
    orientation = 1
    if exif:
        field = _orientation_field(exif)
        orientation = struct.unpack_from(field[0] + 'H', exif, field[1])[0] if field else 1
    elif img.format == 'TIFF':  # a TIFF tag, not an EXIF block
        orientation = img.getexif().get(ORIENTATION_TAG, 1)
    return ImageMetadata(format=img.format or '', mode=img.mode, orientation=orientation if orientation in range(
        1, 9) else 1, icc=img.info.get('icc_profile') or None, exif=exif or None)


def read_metadata(path):
    """Format, pixel mode, EXIF orientation, ICC profile and EXIF data of an image file (header only).

    Args:
        path (str): Image file.

    Returns:
        ImageMetadata: Empty (orientation 1, no profile) for a file Pillow cannot open.
    """
    from PIL import Image
    try:
        with Image.open(path) as img:
            return _metadata_of(img, path)
    except Exception:  # noqa: BLE001  (no metadata; the decoder reports unreadable files)
        return ImageMetadata()


def apply_orientation(img, orientation):
    """The image as shown upright for an EXIF ``orientation`` (1-8), as Pillow's ``ImageOps.exif_transpose``.

    Args:
        img (np.ndarray): ``(H, W)`` or ``(H, W, C)`` image as stored.
        orientation (int): EXIF orientation; 5-8 swap height and width.

    Returns:
        np.ndarray: The upright image (contiguous).
    """
    if orientation in (5, 6, 7, 8):  # transposed first, then mirrored
        img = img.swapaxes(0, 1)
    if orientation in (2, 3, 6, 7):
        img = img[:, ::-1]
    if orientation in (3, 4, 7, 8):
        img = img[::-1]
    return np.ascontiguousarray(img)


def read_image(path, color=False, dtypes=PIXEL_TYPES):
    """Read an image file, upright (its EXIF orientation applied).

    Args:
        path (str): Image file.
        color (bool): True: 3-channel 8-bit BGR (``cv2.IMREAD_COLOR``: gray replicated, alpha dropped).
            False: as stored (``cv2.IMREAD_UNCHANGED``): gray ``(H, W)``, BGR or BGRA, its bit depth
            (CMYK: BGR, palette: BGR or BGRA). Default: False.
        dtypes (tuple): Accepted pixel types. Default: ``PIXEL_TYPES`` (uint8, uint16).

    Returns:
        np.ndarray: ``(H, W)`` or ``(H, W, C)`` with C 3 or 4, of one of ``dtypes``.

    Raises:
        ImageError: The file is missing, not a decodable image, empty, or of a pixel type not in ``dtypes``.
    """
    if not osp.isfile(path):
        raise ImageError(f'Image not found: {path}')
    meta = read_metadata(path)
    as_color = color or meta.mode == 'CMYK'  # CMYK: OpenCV converts to BGR (a TIFF to BGRA without it)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION if as_color else cv2.IMREAD_UNCHANGED
    if meta.format == 'TIFF' and meta.orientation != 1:
        with open(path, 'rb') as f:  # OpenCV turns TIFFs itself (and fails on rotated ones): read them as stored
            img = cv2.imdecode(np.frombuffer(_upright_exif(f.read()), np.uint8), flags)
    else:
        img = cv2.imread(path, flags)
    if img is None or img.size == 0:
        raise ImageError(f'Cannot read image {path}: not a readable image file (corrupt, empty or unsupported '
                         'format)')
    if img.dtype not in [np.dtype(d) for d in dtypes]:
        accepted = ' or '.join(_BITS.get(np.dtype(d), str(np.dtype(d))) for d in dtypes)
        raise ImageError(f'{path}: unsupported pixel type {img.dtype}, expected {accepted} integers')
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        raise ImageError(f'{path}: unsupported channel count {img.shape[2]}, expected 1, 3 or 4')
    return apply_orientation(img, meta.orientation)


def image_size(path):
    """Upright height and width of an image from its header (no pixel is decoded), checking it is not cut short.

    EXIF orientations 5-8 (rotated by 90 degrees) swap the stored height and width, as ``read_image`` does.

    Args:
        path (str): Image file.

    Returns:
        tuple[tuple[int, int] | None, str | None]: ``((h, w), None)``, or ``(None, problem)``.
    """
    from PIL import Image  # reads the header only
    ext = osp.splitext(path)[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        return None, f'{path}: not an image (extension {ext!r}; expected one of {" ".join(IMAGE_EXTENSIONS)})'
    try:
        with Image.open(path) as img:
            w, h = img.size
            orientation = _metadata_of(img, path).orientation
            pillow_upright = img.format == 'TIFF'  # Pillow gives a TIFF's upright size
    except Exception as e:  # noqa: BLE001  (unreadable for any reason)
        return None, f'{path}: not a readable image ({type(e).__name__}: {e})'
    marker = _END_MARKERS.get(ext)
    if marker:
        with open(path, 'rb') as f:
            f.seek(max(0, os.path.getsize(path) - _TAIL_BYTES))
            if marker not in f.read():
                return None, f'{path}: cut short (no end-of-image marker {marker!r}); re-copy or remove it'
    return ((w, h) if orientation >= 5 and not pillow_upright else (h, w)), None


def to_float(img):
    """An image as read by ``read_image`` -> float32 ``(H, W, C)`` in [0, 1], and its pixel type.

    Args:
        img (np.ndarray): uint8 or uint16 ``(H, W)`` or ``(H, W, C)`` image.

    Returns:
        tuple[np.ndarray, np.dtype]: The float image (gray gets a channel axis) and ``img.dtype``.
    """
    if img.ndim == 2:
        img = img[:, :, None]
    return img.astype(np.float32) / MAX_VALUES[img.dtype], img.dtype


def from_float(img, dtype):
    """A float image in [0, 1] -> ``dtype`` (clipped and rounded), the inverse of ``to_float``.

    Args:
        img (np.ndarray): Float ``(H, W)`` or ``(H, W, C)`` image.
        dtype (np.dtype): uint8 or uint16.

    Returns:
        np.ndarray: The integer image.
    """
    return (np.clip(img, 0, 1) * MAX_VALUES[np.dtype(dtype)]).round().astype(dtype)


def _upright_exif(exif):
    """EXIF data (or a TIFF file) with its orientation set to 1; other bytes unchanged."""
    field = _orientation_field(exif) if exif else None
    if field is None:
        return exif
    out = bytearray(exif)
    struct.pack_into(field[0] + 'H', out, field[1], 1)
    return bytes(out)


def _jpeg_segment(marker, payload):
    return b'\xff' + bytes([marker]) + struct.pack('>H', len(payload) + 2) + payload


def _jpeg_with_metadata(data, icc, exif):
    """APP1 (EXIF) and APP2 (ICC, in chunks) segments inserted after OpenCV's SOI and JFIF APP0."""
    segments = []
    if exif and len(exif) + 6 <= _JPEG_APP_MAX:  # larger EXIF does not fit one segment: left out
        segments.append(_jpeg_segment(0xE1, b'Exif\0\0' + exif))
    if icc:
        chunks = [icc[i:i + _ICC_JPEG_CHUNK] for i in range(0, len(icc), _ICC_JPEG_CHUNK)]
        segments += [_jpeg_segment(0xE2, b'ICC_PROFILE\0' + bytes([n + 1, len(chunks)]) + chunk)
                     for n, chunk in enumerate(chunks) if len(chunks) < 256]
    pos = 4 + struct.unpack('>H', data[4:6])[0] if data[2:4] == b'\xff\xe0' else 2
    return data[:pos] + b''.join(segments) + data[pos:]


def _png_chunk(kind, payload):
    return struct.pack('>I', len(payload)) + kind + payload + struct.pack('>I', zlib.crc32(kind + payload))


def _png_with_metadata(data, icc, exif):
    """``iCCP`` and ``eXIf`` chunks inserted after the ``IHDR`` chunk."""
    chunks = (_png_chunk(b'iCCP', b'ICC profile\0\0' + zlib.compress(icc)) if icc else b'') + \
        (_png_chunk(b'eXIf', exif) if exif else b'')
    pos = 8 + 12 + struct.unpack('>I', data[8:12])[0]
    return data[:pos] + chunks + data[pos:]


def _riff_chunk(kind, payload):
    return kind + struct.pack('<I', len(payload)) + payload + b'\0' * (len(payload) & 1)


def _webp_with_metadata(data, icc, exif, height, width, alpha):
    """The extended WebP layout: ``VP8X`` (flags, canvas size), ``ICCP``, the image chunks, ``EXIF``."""
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, length = data[pos:pos + 4], struct.unpack('<I', data[pos + 4:pos + 8])[0]
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 8 + length + (length & 1)
    if chunks and chunks[0][0] == b'VP8X':  # already extended (lossy with alpha): keep its flags and canvas
        vp8x = chunks.pop(0)[1]
        flags, canvas = vp8x[0], vp8x[4:10]
    else:
        flags, canvas = 0x10 if alpha else 0, struct.pack('<I', width - 1)[:3] + struct.pack('<I', height - 1)[:3]
    flags |= (0x20 if icc else 0) | (0x08 if exif else 0)
    body = _riff_chunk(b'VP8X', bytes([flags, 0, 0, 0]) + canvas) + (_riff_chunk(b'ICCP', icc) if icc else b'')
    body += b''.join(_riff_chunk(k, v) for k, v in chunks) + (_riff_chunk(b'EXIF', exif) if exif else b'')
    return b'RIFF' + struct.pack('<I', 4 + len(body)) + b'WEBP' + body


def add_metadata(ext, data, img, metadata):
    """Insert an input's ICC profile and EXIF data (orientation 1) into an encoded image, where the format
    allows: JPEG, PNG and WebP; other formats are returned unchanged.

    Args:
        ext (str): The format's file extension ('.jpg', '.png', ...).
        data (bytes): The encoded image (``cv2.imencode`` output).
        img (np.ndarray): The pixels encoded, for the channel count and size.
        metadata (ImageMetadata): From ``read_metadata`` of the input. A profile of a colour space that
            does not fit the channels (e.g. CMYK) is left out.

    Returns:
        bytes: The encoded image with the metadata.
    """
    channels = 1 if img.ndim == 2 else img.shape[2]
    icc = metadata.icc if metadata.icc and metadata.icc[16:20] in _ICC_SPACES.get(channels, ()) else None
    exif = _upright_exif(metadata.exif)
    if not (icc or exif):
        return data
    if ext in ('.jpg', '.jpeg'):
        return _jpeg_with_metadata(data, icc, exif)
    if ext == '.png':
        return _png_with_metadata(data, icc, exif)
    if ext == '.webp':
        return _webp_with_metadata(data, icc, exif, img.shape[0], img.shape[1], channels == 4)
    return data


def encode_image(path, img, png_compression=None, metadata=None):
    """Encode an integer image in the format of ``path``'s extension (JPEG at quality ``JPEG_QUALITY``).

    Args:
        path (str): The file it is for (only its extension is used).
        img (np.ndarray): uint8 or uint16 ``(H, W)`` or ``(H, W, C)`` image, BGR(A) order; a single channel
            is written as gray.
        png_compression (int | None): PNG compression level (0-9); None: OpenCV's default.
        metadata (ImageMetadata | None): ICC profile and EXIF data to carry (``add_metadata``). Default: None.

    Returns:
        bytes: The encoded file.

    Raises:
        ImageError: OpenCV cannot encode it in that format.
    """
    ext = osp.splitext(path)[1].lower()
    params = []
    if ext in ('.jpg', '.jpeg'):
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    elif ext == '.png' and png_compression is not None:
        params = [cv2.IMWRITE_PNG_COMPRESSION, png_compression]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    try:
        ok, buf = cv2.imencode(ext, img, params)
    except cv2.error as err:
        raise ImageError(f'Cannot encode image for {path}: {err}') from err
    if not ok:
        raise ImageError(f'Cannot encode image for {path}')
    return add_metadata(ext, buf.tobytes(), img, metadata) if metadata is not None else buf.tobytes()


def write_image(path, img, png_compression=None, metadata=None):
    """Write an integer image atomically (temporary file, then rename): a file that exists is complete.

    Args:
        path (str): Output file; its extension picks the format.
        img (np.ndarray): uint8 or uint16 image (see ``encode_image``).
        png_compression (int | None): PNG compression level; None: OpenCV's default.
        metadata (ImageMetadata | None): ICC profile and EXIF data to carry (JPEG, PNG, WebP). Default: None.

    Raises:
        ImageError: The image cannot be encoded or the file cannot be written.
    """
    from mrnet_arch.core.files import write_bytes
    data = encode_image(path, img, png_compression, metadata)
    try:
        write_bytes(path, data)
    except OSError as err:
        raise ImageError(f'Cannot write {path}: {err}') from err
