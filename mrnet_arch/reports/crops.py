"""Crop boxes for visual comparisons and the scores shown beside them.

Images are ``(H, W, 3)`` uint8 **RGB** arrays of the same size. A box is ``(x, y, w, h)`` in pixels:
``x``/``y`` the left/top column/row, ``w``/``h`` its width/height, so the crop is
``img[y:y + h, x:x + w]``.

How :func:`choose_crop` picks a box ("where the models differ most"):

1. Per model, the absolute error against the ground truth on the luma channel
   (ITU-R BT.601 Y in [16, 235], the channel the benchmark scores use), per pixel.
2. For every candidate window (size ``w x h``, top-left corners on a grid of step ``stride``, whole
   window at least ``margin`` pixels from every image border) the mean absolute error of each model.
3. The window's score is the *spread* of those means: the worst model's mean error minus the best
   model's. The highest score wins; ties go to the first window in raster order (top to bottom, then
   left to right), so the choice is deterministic.

The spread is large where one model fails and another one does not, i.e. exactly where a
side-by-side crop shows a visible difference; flat regions (every model right) and regions every
model gets equally wrong score low.
"""
import math
import re

import numpy as np

from mrnet_arch.errors import InvalidValueError

MIN_CROP = 11  # SSIM's 11x11 Gaussian window needs at least this many pixels per side

_BOX_RE = re.compile(r'^\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*$')


def _size(shape_or_image):
    """(height, width) from an image array or a shape tuple."""
    shape = getattr(shape_or_image, 'shape', shape_or_image)
    return int(shape[0]), int(shape[1])


def validate_crop(box, image, option='--crop'):
    """Check that a box lies inside an image.

    Args:
        box (tuple[int, int, int, int]): ``(x, y, w, h)``.
        image (np.ndarray | tuple): The image, or its shape ``(H, W[, C])``.
        option (str): The option name used in error messages.

    Returns:
        tuple[int, int, int, int]: The box as plain ints.

    Raises:
        InvalidValueError: The box is not four integers, is smaller than ``MIN_CROP`` pixels a side or
            reaches outside the image; the message names ``option`` and the image size.
    """
    height, width = _size(image)
    try:
        x, y, w, h = (int(v) for v in box)
    except (TypeError, ValueError):
        raise InvalidValueError(f'{option}: expected four integers x,y,w,h, got {box!r}') from None
    where = f'{option} {x},{y},{w},{h}'
    size = f'the image is {width}x{height} (width x height)'
    if w < MIN_CROP or h < MIN_CROP:
        raise InvalidValueError(f'{where}: width and height must be at least {MIN_CROP} pixels ({size})')
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise InvalidValueError(f'{where} reaches outside the image: {size}, so x+w must be <= {width} and '
                                f'y+h <= {height} with x, y >= 0')
    return x, y, w, h


def parse_crop(text, image, option='--crop'):
    """Parse and validate a user crop given as ``"x,y,w,h"``.

    Args:
        text (str): E.g. ``"120,80,64,64"``.
        image (np.ndarray | tuple): The image, or its shape ``(H, W[, C])``.
        option (str): The option name used in error messages.

    Returns:
        tuple[int, int, int, int]: ``(x, y, w, h)``.

    Raises:
        InvalidValueError: Not four comma-separated integers, or see :func:`validate_crop`.
    """
    match = _BOX_RE.match(str(text))
    if not match:
        height, width = _size(image)
        raise InvalidValueError(f'{option}: expected x,y,w,h (four integers, e.g. 40,30,64,64), got {text!r} '
                                f'(the image is {width}x{height}, width x height)')
    return validate_crop(tuple(int(g) for g in match.groups()), image, option)


def crop(img, box):
    """``img[y:y + h, x:x + w]`` for ``box = (x, y, w, h)``."""
    x, y, w, h = box
    return img[y:y + h, x:x + w]


def luma(img):
    """BT.601 luma (Y of YCbCr, range [16, 235]) of an RGB uint8 image, as float64 ``(H, W)``."""
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 2:
        return img
    return 16. + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.


def _window_means(values, w, h):
    """Mean of ``values`` over every ``h x w`` window; entry [i, j] is the window with top-left (j, i)."""
    integral = np.zeros((values.shape[0] + 1, values.shape[1] + 1), dtype=np.float64)
    integral[1:, 1:] = values.cumsum(0).cumsum(1)
    sums = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
    return sums / (w * h)


def default_crop_size(image):
    """Side of the square crop :func:`choose_crop` uses by default: a fifth of the shorter side,
    between 24 and 96 pixels (never more than the image allows)."""
    height, width = _size(image)
    return min(96, max(24, min(height, width) // 5), height, width)


def choose_crop(gt, outputs, size=None, margin=None, stride=None, models=None):
    """Choose the crop box where the models differ most (the rule is in the module docstring).

    Args:
        gt (np.ndarray): Ground truth, ``(H, W, 3)`` uint8 RGB.
        outputs (dict[str, np.ndarray]): ``{model name: SR image}``, same size as ``gt``; at least
            two models for a meaningful spread (with one, its worst window is chosen).
        size (int | tuple[int, int] | None): Crop side, or ``(w, h)``; default
            :func:`default_crop_size`.
        margin (int | None): Distance kept from every image border; default ``max(4, min(H, W) // 20)``,
            reduced where the image is too small to keep it.
        stride (int | None): Step between candidate windows; default ``max(1, min(w, h) // 8)``.
        models (list[str] | None): Which models take part (default all of ``outputs``).

    Returns:
        tuple[int, int, int, int]: ``(x, y, w, h)``.

    Raises:
        ValueError: No models, sizes differ, or the crop does not fit in the image.
    """
    names = list(models if models is not None else outputs)
    if not names:
        raise ValueError('choose_crop: no model outputs to compare')
    height, width = _size(gt)
    for name in names:
        if _size(outputs[name]) != (height, width):
            raise ValueError(f'choose_crop: {name} is {outputs[name].shape[1]}x{outputs[name].shape[0]}, '
                             f'the ground truth {width}x{height}')
    if size is None:
        size = default_crop_size(gt)
    w, h = (size, size) if np.isscalar(size) else size
    w, h = int(w), int(h)
    if w > width or h > height:
        raise ValueError(f'choose_crop: a {w}x{h} crop does not fit in the {width}x{height} image')
    if margin is None:
        margin = max(4, min(height, width) // 20)
    margin = max(0, min(int(margin), (width - w) // 2, (height - h) // 2))
    if stride is None:
        stride = max(1, min(w, h) // 8)

    gt_y = luma(gt)
    means = np.stack([_window_means(np.abs(luma(outputs[n]) - gt_y), w, h) for n in names])
    spread = means.max(0) - means.min(0) if len(names) > 1 else means[0]
    # candidate top-left corners: inside the margin, on the stride grid; the last position is always a
    # candidate so that the full allowed range is covered
    ys = np.unique(np.r_[np.arange(margin, height - h - margin + 1, stride), height - h - margin])
    xs = np.unique(np.r_[np.arange(margin, width - w - margin + 1, stride), width - w - margin])
    grid = spread[np.ix_(ys, xs)]
    i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)  # first maximum in raster order
    return int(xs[j]), int(ys[i]), w, h


def basicsr_score(crop_border=0):
    """The default scorer: the evaluator of ``mrnet bench`` (``mrnet_arch.measurement.evaluation.y_metrics``:
    basicsr's ``calculate_psnr``/``calculate_ssim`` on the Y channel).

    Args:
        crop_border (int): Pixels ignored at every edge (the benchmark convention: the scale).

    Returns:
        Callable[[np.ndarray, np.ndarray], tuple[float, float]]: ``score(sr, gt) -> (psnr, ssim)`` for
        RGB uint8 images (converted to BGR, the order of the images bench reads and of basicsr's Y conversion).
    """
    from mrnet_arch.measurement.evaluation import y_metrics

    def score(sr, gt):
        metrics = y_metrics(np.ascontiguousarray(sr[..., ::-1]), np.ascontiguousarray(gt[..., ::-1]), crop_border)
        return float(metrics['psnr']), float(metrics['ssim'])

    score.crop_border = crop_border
    return score


def score_images(gt, outputs, box, score=None, crop_score=None, crop_border=0):
    """Whole-image and crop PSNR/SSIM of every model.

    Args:
        gt (np.ndarray): Ground truth, RGB uint8.
        outputs (dict[str, np.ndarray]): ``{model name: SR image}``.
        box (tuple[int, int, int, int]): The crop ``(x, y, w, h)``.
        score (Callable | None): ``score(sr, gt) -> (psnr, ssim)`` for whole images; default
            ``basicsr_score(crop_border)``, the evaluator of ``mrnet bench``.
        crop_score (Callable | None): The same for the crops; default ``basicsr_score(0)`` (a chosen
            crop keeps clear of the image border already, so the crop is scored whole, as shown).
        crop_border (int): Border for the default whole-image scorer.

    Returns:
        dict[str, dict[str, float]]: ``{model: {'psnr', 'ssim', 'crop_psnr', 'crop_ssim'}}``, in the
        order of ``outputs``.
    """
    score = score or basicsr_score(crop_border)
    crop_score = crop_score or basicsr_score(0)
    gt_crop = crop(gt, box)
    result = {}
    for name, sr in outputs.items():
        psnr, ssim = score(sr, gt)
        crop_psnr, crop_ssim = crop_score(crop(sr, box), gt_crop)
        result[name] = {'psnr': float(psnr), 'ssim': float(ssim), 'crop_psnr': float(crop_psnr),
                        'crop_ssim': float(crop_ssim)}
    return result


def is_finite(value):
    """Whether a score is a finite number (PSNR of identical images is infinite)."""
    return value is not None and math.isfinite(value)
