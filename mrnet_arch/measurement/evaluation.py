"""Evaluation: pairing GT images with LR inputs or SR outputs, and Y-channel PSNR/SSIM with BasicSR's metrics.

The scores are BasicSR's ``calculate_psnr`` / ``calculate_ssim`` on the Y channel with ``crop_border = scale``,
the convention of the published SR tables, on 8-bit BGR images read with
``mrnet_arch.storage.images.read_image(path, color=True)`` (gray replicated to three channels, as BasicSR's
``PairedImageDataset`` decodes them).

Used by ``mrnet bench``, ``mrnet demo`` and ``benchmarks/equal_budget.py``.
"""
import os
import statistics
from os import path as osp

from mrnet_arch.errors import InputError
from mrnet_arch.storage.images import read_image


class PairingError(InputError, ValueError):
    """A folder that does not have the expected layout, or images that do not pair up; names the folder."""


def pair_by_stem(gt_dir, other_dir, suffixes=('', ), require_all=False):
    """Pair every file of ``gt_dir`` with the file of ``other_dir`` whose stem is its stem plus a suffix.

    Args:
        gt_dir (str): Folder of GT images.
        other_dir (str): Folder of LR inputs or SR outputs.
        suffixes (tuple[str]): Stem suffixes of the partner, in order of preference (e.g. ``('', 'x2')`` for
            ``baby.png`` or ``babyx2.png``; ``('_MRNet', )`` for BasicSR's SR images). Default: ``('', )``.
        require_all (bool): Raise when a GT file has no partner. Default: False (it is left out).

    Returns:
        list[tuple[str, str]]: (GT path, partner path), in GT name order.

    Raises:
        PairingError: ``require_all`` and a GT file without partner (named).
    """
    by_stem = {}
    for name in os.listdir(other_dir):
        by_stem.setdefault(osp.splitext(name)[0], name)
    pairs, missing = [], []
    for name in sorted(os.listdir(gt_dir)):
        stem = osp.splitext(name)[0]
        partner = next((by_stem[stem + s] for s in suffixes if stem + s in by_stem), None)
        if partner is None:
            missing.append(name)
        else:
            pairs.append((osp.join(gt_dir, name), osp.join(other_dir, partner)))
    if require_all and missing:
        raise PairingError(f'{other_dir} has no file for {missing[:5]} of {gt_dir} (expected names: the GT name '
                           f'with one of the suffixes {list(suffixes)})')
    return pairs


def find_pairs(folder, scale):
    """(GT path, LR path) pairs of a benchmark folder in BasicSR's Set5 layout.

    The GT folder is the first ``GTmod*/`` (e.g. ``GTmod12``), the LR folder ``LRbicx{scale}/``; an LR file is
    named as its GT file or with an ``x{scale}`` suffix (``baby.png`` or ``babyx2.png``), the former preferred.
    This is the layout ``mrnet prepare benchmark`` writes.

    Args:
        folder (str): The benchmark folder.
        scale (int): The scale.

    Returns:
        list[tuple[str, str]]: The pairs, in GT name order.

    Raises:
        PairingError: No ``GTmod*/`` or ``LRbicx{scale}/`` folder, or no pair.
    """
    gt_dirs = sorted(d for d in os.listdir(folder) if d.startswith('GTmod') and osp.isdir(osp.join(folder, d)))
    lr_dir = osp.join(folder, f'LRbicx{scale}')
    if not gt_dirs or not osp.isdir(lr_dir):
        raise PairingError(f'{folder} needs GTmod*/ and LRbicx{scale}/ (run "mrnet prepare benchmark")')
    pairs = pair_by_stem(osp.join(folder, gt_dirs[0]), lr_dir, suffixes=('', f'x{scale}'))
    if not pairs:
        raise PairingError(f'no GT/LR pairs with matching names in {folder}')
    return pairs


def dataset_name(folder):
    """The name a benchmark folder is reported under: its last path component (``datasets/Set5/`` -> Set5)."""
    return osp.basename(osp.normpath(folder))


def y_metrics(sr, gt, crop_border):
    """Y-channel PSNR and SSIM of one SR image against its GT, with BasicSR's metrics.

    Args:
        sr (np.ndarray): SR image, uint8 BGR ``(H, W, 3)`` (larger than ``gt`` is cropped to it).
        gt (np.ndarray): GT image, uint8 BGR ``(H, W, 3)``.
        crop_border (int): Pixels left out at each border (the scale).

    Returns:
        dict: ``{'psnr': float, 'ssim': float}``.
    """
    from basicsr.metrics import calculate_psnr, calculate_ssim
    sr = sr[:gt.shape[0], :gt.shape[1]]
    return {'psnr': calculate_psnr(sr, gt, crop_border=crop_border, test_y_channel=True),
            'ssim': calculate_ssim(sr, gt, crop_border=crop_border, test_y_channel=True)}


def mean_metrics(rows):
    """The mean of each metric over a list of ``y_metrics`` results, plus the number of images.

    Args:
        rows (list[dict]): ``y_metrics`` results.

    Returns:
        dict: ``{'psnr': mean, 'ssim': mean, 'images': len(rows)}``.
    """
    return {'psnr': statistics.fmean(r['psnr'] for r in rows), 'ssim': statistics.fmean(r['ssim'] for r in rows),
            'images': len(rows)}


def upscale_image(net, lr):
    """Run an SR network on one 8-bit BGR image.

    Args:
        net (callable): Maps a float [1, 3, h, w] RGB batch in [0, 1] to [1, 3, h*s, w*s] (e.g. a ``FastSR``).
        lr (np.ndarray): uint8 BGR ``(h, w, 3)`` image.

    Returns:
        np.ndarray: uint8 BGR SR image.
    """
    from basicsr.utils import img2tensor, tensor2img
    x = img2tensor(lr.astype('float32') / 255., bgr2rgb=True, float32=True).unsqueeze(0)
    return tensor2img(net(x).cpu(), rgb2bgr=True, min_max=(0, 1))


def evaluate(net, pairs, scale, max_pixels=None):
    """Mean Y-PSNR / SSIM (crop border = ``scale``) of an SR network over (GT, LR) pairs.

    Args:
        net (Upscaler | callable): An ``mrnet_arch.inference.upscaler.Upscaler`` (tiles within its memory budget;
            the same pixels as ``upscale_image`` when it runs whole), or a network for ``upscale_image``.
        pairs (list[tuple[str, str]]): (GT path, LR path), e.g. from ``find_pairs``.
        scale (int): The network's scale.
        max_pixels (int | None): Refuse larger images (``read_image``). Default: ``images.MAX_PIXELS``.

    Returns:
        dict: ``{'psnr': mean, 'ssim': mean, 'images': number of pairs}``.
    """
    run = net.upscale if hasattr(net, 'upscale') else lambda lr: upscale_image(net, lr)
    rows = []
    for gt_path, lr_path in pairs:
        gt = read_image(gt_path, color=True, max_pixels=max_pixels)
        lr = read_image(lr_path, color=True, max_pixels=max_pixels)
        rows.append(y_metrics(run(lr), gt, scale))
    return mean_metrics(rows)
