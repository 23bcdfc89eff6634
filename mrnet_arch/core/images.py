"""Image files: the accepted extensions, the one reader and the one writer, and listing a folder's images.

Every command, benchmark and tool decodes image files with ``read_image`` and encodes them with
``write_image``; the tools differ only in the arguments:

- ``mrnet infer`` reads as stored (8 or 16 bits, gray, BGR or BGRA) and converts with ``to_float`` /
  ``from_float``, so the output keeps the input's bit depth, alpha and gray;
- ``mrnet prepare`` reads as stored with ``dtypes=(np.uint8, )``, so a 16-bit image is refused by name;
- ``mrnet bench`` and the evaluation read with ``color=True``: 3-channel 8-bit BGR (gray replicated, alpha
  dropped), as BasicSR's ``PairedImageDataset`` decodes images.

EXIF orientation: OpenCV applies it with ``color=True`` (``cv2.IMREAD_COLOR``) and not with the default
``cv2.IMREAD_UNCHANGED``; handling it the same way for every tool is a change of ``read_image`` alone.
"""
import os
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


def read_image(path, color=False, dtypes=PIXEL_TYPES):
    """Read an image file.

    Args:
        path (str): Image file.
        color (bool): True: 3-channel 8-bit BGR (``cv2.IMREAD_COLOR``: gray replicated, alpha dropped).
            False: as stored (``cv2.IMREAD_UNCHANGED``): gray ``(H, W)``, BGR or BGRA, its bit depth.
            Default: False.
        dtypes (tuple): Accepted pixel types. Default: ``PIXEL_TYPES`` (uint8, uint16).

    Returns:
        np.ndarray: ``(H, W)`` or ``(H, W, C)`` with C 3 or 4, of one of ``dtypes``.

    Raises:
        ImageError: The file is missing, not a decodable image, empty, or of a pixel type not in ``dtypes``.
    """
    if not osp.isfile(path):
        raise ImageError(f'Image not found: {path}')
    img = cv2.imread(path, cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageError(f'Cannot read image {path}: not a readable image file (corrupt, empty or unsupported '
                         'format)')
    if img.dtype not in [np.dtype(d) for d in dtypes]:
        accepted = ' or '.join(_BITS.get(np.dtype(d), str(np.dtype(d))) for d in dtypes)
        raise ImageError(f'{path}: unsupported pixel type {img.dtype}, expected {accepted} integers')
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        raise ImageError(f'{path}: unsupported channel count {img.shape[2]}, expected 1, 3 or 4')
    return img


def image_size(path):
    """Height and width of an image from its header (no pixel is decoded), checking it is not cut short.

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
    except Exception as e:  # noqa: BLE001  (unreadable for any reason)
        return None, f'{path}: not a readable image ({type(e).__name__}: {e})'
    marker = _END_MARKERS.get(ext)
    if marker:
        with open(path, 'rb') as f:
            f.seek(max(0, os.path.getsize(path) - _TAIL_BYTES))
            if marker not in f.read():
                return None, f'{path}: cut short (no end-of-image marker {marker!r}); re-copy or remove it'
    return (h, w), None


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


def encode_image(path, img, png_compression=None):
    """Encode an integer image in the format of ``path``'s extension (JPEG at quality ``JPEG_QUALITY``).

    Args:
        path (str): The file it is for (only its extension is used).
        img (np.ndarray): uint8 or uint16 ``(H, W)`` or ``(H, W, C)`` image, BGR(A) order; a single channel
            is written as gray.
        png_compression (int | None): PNG compression level (0-9); None: OpenCV's default.

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
    return buf.tobytes()


def write_image(path, img, png_compression=None):
    """Write an integer image atomically (temporary file, then rename): a file that exists is complete.

    Args:
        path (str): Output file; its extension picks the format.
        img (np.ndarray): uint8 or uint16 image (see ``encode_image``).
        png_compression (int | None): PNG compression level; None: OpenCV's default.

    Raises:
        ImageError: The image cannot be encoded or the file cannot be written.
    """
    from mrnet_arch.core.files import write_bytes
    data = encode_image(path, img, png_compression)
    try:
        write_bytes(path, data)
    except OSError as err:
        raise ImageError(f'Cannot write {path}: {err}') from err
