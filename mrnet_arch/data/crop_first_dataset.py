"""``CropFirstPairedImageDataset``: BasicSR's paired dataset with the patch cut from the 8-bit images before the
conversion to float, so that only the patch is converted.

BasicSR's ``PairedImageDataset`` converts each whole sub-image to float32 (``imfrombytes(float32=True)``) and
only then crops a patch: for a 480 px DIV2K sub-image and a 96 px patch that is 25 times the pixels the sample
needs. This dataset decodes to uint8 (``imfrombytes(float32=False)``), crops, flips and rotates the uint8 arrays
with the same functions and the same random draws (``paired_random_crop``, ``augment``), and converts only the
patch (``astype(np.float32) / 255.``, as ``imfrombytes`` does). Its samples are bit-equal to
``PairedImageDataset``'s for the same index and random state, in every phase and with every option
(``color: y``, ``mean``/``std``, ``filename_tmpl``, ``meta_info_file``, the lmdb and disk backends).

A 24-bit uncompressed BMP (what ``mrnet prepare div2k`` stores in its LMDBs by default) is not copied whole: its
pixels are read in place as a bottom-up view of the bytes, the pixels ``cv2.imdecode`` would give, and only the
patch is copied. Any other value (PNG, gray or 32-bit BMP, ...) is decoded by ``imfrombytes``.

The file imports only numpy, torch, basicsr and the standard library: it can be copied into a BasicSR checkout on
its own.
"""
import numpy as np
import struct

from basicsr.data.paired_image_dataset import PairedImageDataset, normalize  # torchvision's, as it uses it
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, bgr2ycbcr, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY


def bmp_pixels(content):
    """The ``(H, W, 3)`` BGR pixels of a 24-bit uncompressed bottom-up BMP as a read-only view of ``content`` (the
    values ``imfrombytes(content)`` decodes), or None for any other content.

    Args:
        content (bytes): Encoded image.

    Returns:
        np.ndarray | None: A view (no copy) of the pixels, or None.
    """
    if len(content) < 54 or content[:2] != b'BM':
        return None
    offset, = struct.unpack_from('<I', content, 10)
    header_size, width, height, planes, bits, compression = struct.unpack_from('<IiiHHI', content, 14)
    if header_size < 40 or planes != 1 or bits != 24 or compression != 0 or width <= 0 or height <= 0:
        return None
    stride = (width * 3 + 3) & ~3  # rows are padded to 4 bytes
    if offset + stride * height > len(content):
        return None
    rows = np.frombuffer(content, np.uint8, count=stride * height, offset=offset).reshape(height, stride)
    return rows[::-1, :width * 3].reshape(height, width, 3)  # stored bottom row first


def _to_float(img):
    """The conversion of ``imfrombytes(float32=True)``, applied to a decoded (and cropped) uint8 image."""
    return img.astype(np.float32) / 255.


@DATASET_REGISTRY.register()
class CropFirstPairedImageDataset(PairedImageDataset):
    """Paired LQ/GT images, as ``PairedImageDataset`` (same options, same samples), cropped before the conversion.

    Options: those of ``PairedImageDataset`` (``dataroot_gt``, ``dataroot_lq``, ``meta_info_file``,
    ``io_backend``, ``filename_tmpl``, ``gt_size``, ``use_hflip``, ``use_rot``, ``color``, ``mean``, ``std``,
    ``scale``, ``phase``).

    A sample that cannot be loaded raises ``RuntimeError`` naming its files.

    Args:
        opt (dict): Dataset options.
    """

    def _decode(self, path, client_key):
        content = self.file_client.get(path, client_key)
        img = bmp_pixels(content)
        if img is None:
            img = imfrombytes(content, float32=False)
        if img is None:
            raise ValueError('the bytes are no image that OpenCV decodes')
        return img

    def _load(self, index):
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        scale = self.opt['scale']
        gt_path = self.paths[index]['gt_path']
        img_gt = self._decode(gt_path, 'gt')
        lq_path = self.paths[index]['lq_path']
        img_lq = self._decode(lq_path, 'lq')
        if self.opt['phase'] == 'train':
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.opt['gt_size'], scale, gt_path)
            img_gt, img_lq = img_gt.copy(), img_lq.copy()  # the patches alone; augment flips them in place
            img_gt, img_lq = augment([img_gt, img_lq], self.opt['use_hflip'], self.opt['use_rot'])
        else:  # the unmatched border of benchmark GT images, as PairedImageDataset crops it
            img_gt = img_gt[0:img_lq.shape[0] * scale, 0:img_lq.shape[1] * scale, :]
        img_gt, img_lq = _to_float(img_gt), _to_float(img_lq)
        if self.opt.get('color') == 'y':
            img_gt = bgr2ycbcr(img_gt, y_only=True)[..., None]
            img_lq = bgr2ycbcr(img_lq, y_only=True)[..., None]
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        if self.mean is not None or self.std is not None:
            normalize(img_lq, self.mean, self.std, inplace=True)
            normalize(img_gt, self.mean, self.std, inplace=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': lq_path, 'gt_path': gt_path}

    def __getitem__(self, index):
        if index >= len(self):
            raise IndexError(index)  # the end of ``for sample in dataset``
        try:
            return self._load(index)
        except Exception as e:  # noqa: BLE001  (re-raised with the file names)
            entry = self.paths[index]
            raise RuntimeError(f"{type(self).__name__}: could not load lq={entry['lq_path']}, "
                               f"gt={entry['gt_path']}: {type(e).__name__}: {e}. "
                               'Is the file a complete, readable image?') from e
