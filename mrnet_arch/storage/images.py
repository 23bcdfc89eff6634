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
  the pixels are upright) into JPEG, PNG and WebP outputs: Pillow encodes those files then (``icc_profile=``,
  ``exif=``; JPEG at quality 95, WebP lossless as OpenCV writes it). Pillow cannot write 16-bit colour PNGs, so
  OpenCV encodes them and their ``iCCP``/``eXIf`` chunks are inserted here. Files without metadata to carry,
  and TIFF, BMP and PPM/PGM outputs (which carry none), are encoded by OpenCV. An ICC profile whose colour space
  does not fit the output (a CMYK profile for the RGB pixels of a CMYK JPEG) is dropped.

Decompression bombs: ``read_image`` reads the size from the header first (Pillow, no pixel decoded) and refuses
an image of more than ``max_pixels`` pixels (default ``MAX_PIXELS``, Pillow's own error threshold), naming the
file, its size and ``--max-pixels``, before anything is decoded.
"""
import os
import struct
import zlib
from dataclasses import dataclass
from os import path as osp

import cv2
import numpy as np

from mrnet_arch.errors import InputError

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
_METADATA_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp')
MAX_PIXELS = 178956970  # Pillow's decompression-bomb error threshold (2 x Image.MAX_IMAGE_PIXELS)


@dataclass(frozen=True)
class ImageMetadata:
    """What ``read_metadata`` reads from an image file's header.

    Attributes:
        format (str): Pillow's format name ('JPEG', 'PNG', 'TIFF', ...).
        mode (str): Pillow's mode of the stored pixels ('RGB', 'L', 'P', 'CMYK', 'I;16', ...).
        orientation (int): EXIF orientation 1-8 (1: stored upright; anything else read as 1 is 1).
        icc (bytes | None): The ICC profile.
        exif (bytes | None): The EXIF data as a TIFF structure (without JPEG's ``Exif\0\0`` prefix).
        size (tuple[int, int] | None): Stored width and height from the header.
    """
    format: str = ''
    mode: str = ''
    size: tuple = None
    orientation: int = 1
    icc: bytes = None
    exif: bytes = None


class ImageError(InputError):
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
        1, 9) else 1, icc=img.info.get('icc_profile') or None, exif=exif or None, size=tuple(img.size))


def _open_header(path, max_pixels=None):
    """``Image.open`` of ``path`` (header only) without Pillow's decompression-bomb error below ``max_pixels``:
    the size is checked by ``check_pixels``; Pillow's limit is raised for the call only."""
    from PIL import Image
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # size checked by the caller, not by a warning or an error of Pillow
        return Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def check_pixels(path, size, max_pixels=None):
    """Refuse an image whose header size exceeds ``max_pixels`` (a decompression bomb, or simply too large).

    Args:
        path (str): The file (named in the error).
        size (tuple[int, int] | None): Width and height from its header (None: unknown, accepted).
        max_pixels (int | None): The limit. Default: ``MAX_PIXELS``.

    Raises:
        ImageError: More pixels than the limit.
    """
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    if size is not None and size[0] * size[1] > limit:
        raise ImageError(f'{path}: {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels, more than the limit of '
                         f'{limit:,} (a decompression bomb, or a very large image): refused before decoding; pass '
                         f'--max-pixels {size[0] * size[1]} (or more) to process it')


def read_metadata(path):
    """Format, pixel mode, EXIF orientation, ICC profile and EXIF data of an image file (header only).

    Args:
        path (str): Image file.

    Returns:
        ImageMetadata: Empty (orientation 1, no profile) for a file Pillow cannot open.
    """
    try:
        with _open_header(path) as img:
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


def read_image(path, color=False, dtypes=PIXEL_TYPES, max_pixels=None):
    """Read an image file, upright (its EXIF orientation applied).

    Args:
        path (str): Image file.
        color (bool): True: 3-channel 8-bit BGR (``cv2.IMREAD_COLOR``: gray replicated, alpha dropped).
            False: as stored (``cv2.IMREAD_UNCHANGED``): gray ``(H, W)``, BGR or BGRA, its bit depth
            (CMYK: BGR, palette: BGR or BGRA). Default: False.
        dtypes (tuple): Accepted pixel types. Default: ``PIXEL_TYPES`` (uint8, uint16).
        max_pixels (int | None): Refuse larger images before decoding (``check_pixels``). Default: ``MAX_PIXELS``.

    Returns:
        np.ndarray: ``(H, W)`` or ``(H, W, C)`` with C 3 or 4, of one of ``dtypes``.

    Raises:
        ImageError: The file is missing, too large, not a decodable image, empty, or of a pixel type not in
            ``dtypes``.
    """
    if not osp.isfile(path):
        raise ImageError(f'Image not found: {path}')
    meta = read_metadata(path)
    check_pixels(path, meta.size, max_pixels)
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


def image_size(path, max_pixels=0):
    """Upright height and width of an image from its header (no pixel is decoded), checking it is not cut short.

    EXIF orientations 5-8 (rotated by 90 degrees) swap the stored height and width, as ``read_image`` does.

    Args:
        path (str): Image file.
        max_pixels (int | None): A size above it is a problem (``check_pixels``); 0: no limit, None:
            ``MAX_PIXELS``. Default: 0.

    Returns:
        tuple[tuple[int, int] | None, str | None]: ``((h, w), None)``, or ``(None, problem)``.
    """
    ext = osp.splitext(path)[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        return None, f'{path}: not an image (extension {ext!r}; expected one of {" ".join(IMAGE_EXTENSIONS)})'
    try:
        with _open_header(path) as img:
            w, h = img.size
            if max_pixels != 0:
                check_pixels(path, img.size, max_pixels)
            orientation = _metadata_of(img, path).orientation
            pillow_upright = img.format == 'TIFF'  # Pillow gives a TIFF's upright size
    except ImageError as e:
        return None, str(e)
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


def _png_chunk(kind, payload):
    return struct.pack('>I', len(payload)) + kind + payload + struct.pack('>I', zlib.crc32(kind + payload))


def _png_with_metadata(data, icc, exif):
    """``iCCP`` and ``eXIf`` chunks inserted after the ``IHDR`` chunk of an OpenCV PNG. Only for 16-bit colour
    PNGs: Pillow cannot write 48- or 64-bit pixels, every other case is written by Pillow (``_pillow_encode``)."""
    chunks = (_png_chunk(b'iCCP', b'ICC profile\0\0' + zlib.compress(icc)) if icc else b'') + \
        (_png_chunk(b'eXIf', exif) if exif else b'')
    pos = 8 + 12 + struct.unpack('>I', data[8:12])[0]
    return data[:pos] + chunks + data[pos:]


def _pillow_encode(ext, img, icc, exif, png_compression):
    """JPEG (quality ``JPEG_QUALITY``), PNG or lossless WebP (OpenCV's default) by Pillow with the metadata;
    None for the 16-bit colour PNG that Pillow cannot write."""
    import io

    from PIL import Image
    channels = 1 if img.ndim == 2 else img.shape[2]
    if img.dtype == np.uint16 and (ext != '.png' or channels != 1):
        return None
    if channels == 1:
        pil = Image.fromarray(np.ascontiguousarray(img.reshape(img.shape[:2])))  # 'L' or 'I;16'
    else:
        pil = Image.fromarray(np.ascontiguousarray(img[:, :, 2::-1] if channels == 3 else img[:, :, [2, 1, 0, 3]]))
    options = {'icc_profile': icc} if icc else {}
    if exif:
        options['exif'] = b'Exif\0\0' + exif
    if ext in ('.jpg', '.jpeg'):
        if exif and len(exif) + 6 > _JPEG_APP_MAX:  # larger EXIF does not fit one segment: left out
            options.pop('exif')
        pil.save(buf := io.BytesIO(), 'JPEG', quality=JPEG_QUALITY, **options)
    elif ext == '.png':
        pil.save(buf := io.BytesIO(), 'PNG', compress_level=1 if png_compression is None else png_compression,
                 **options)
    else:
        pil.save(buf := io.BytesIO(), 'WEBP', lossless=True, **options)
    return buf.getvalue()


def metadata_to_carry(img, metadata):
    """The ICC profile and EXIF data (orientation set to 1) of an input to write with ``img``.

    Args:
        img (np.ndarray): The pixels to encode, for the channel count.
        metadata (ImageMetadata | None): From ``read_metadata`` of the input. A profile of a colour space that
            does not fit the channels (e.g. CMYK) is left out.

    Returns:
        tuple[bytes | None, bytes | None]: The profile and the EXIF data (a TIFF structure).
    """
    if metadata is None:
        return None, None
    channels = 1 if img.ndim == 2 else img.shape[2]
    icc = metadata.icc if metadata.icc and metadata.icc[16:20] in _ICC_SPACES.get(channels, ()) else None
    return icc, _upright_exif(metadata.exif)


def encode_image(path, img, png_compression=None, metadata=None):
    """Encode an integer image in the format of ``path``'s extension (JPEG at quality ``JPEG_QUALITY``).

    Args:
        path (str): The file it is for (only its extension is used).
        img (np.ndarray): uint8 or uint16 ``(H, W)`` or ``(H, W, C)`` image, BGR(A) order; a single channel
            is written as gray.
        png_compression (int | None): PNG compression level (0-9); None: OpenCV's default.
        metadata (ImageMetadata | None): ICC profile and EXIF data to carry (``metadata_to_carry``) into a
            JPEG, PNG or WebP; the file is then encoded by Pillow. Default: None.

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
    icc, exif = metadata_to_carry(img, metadata)
    if (icc or exif) and ext in _METADATA_EXTENSIONS:
        data = _pillow_encode(ext, img, icc, exif, png_compression)
        if data is not None:
            return data
    try:
        ok, buf = cv2.imencode(ext, img, params)
    except cv2.error as err:
        raise ImageError(f'Cannot encode image for {path}: {err}') from err
    if not ok:
        raise ImageError(f'Cannot encode image for {path}')
    data = buf.tobytes()
    return _png_with_metadata(data, icc, exif) if (icc or exif) and ext == '.png' else data


def write_image(path, img, png_compression=None, metadata=None):
    """Write an integer image atomically (temporary file, then rename): a file that exists is complete.

    Args:
        path (str): Output file; its extension picks the format.
        img (np.ndarray): uint8 or uint16 image (see ``encode_image``).
        png_compression (int | None): PNG compression level; None: OpenCV's default.
        metadata (ImageMetadata | None): ICC profile and EXIF data to carry (JPEG, PNG, WebP). Default: None.

    Raises:
        ImageError: The image cannot be encoded or the file cannot be written.
        DiskFullError: The disk is full (``mrnet_arch.storage.files``); the file is not written.
    """
    from mrnet_arch.storage.files import DiskFullError, write_bytes
    data = encode_image(path, img, png_compression, metadata)
    try:
        write_bytes(path, data)
    except DiskFullError:  # names the folder, the bytes needed and free; commands print it as one line
        raise
    except OSError as err:
        raise ImageError(f'Cannot write {path}: {err}') from err
