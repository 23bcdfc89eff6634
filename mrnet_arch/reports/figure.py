"""Paper-style comparison figures (like Figure 8 of the MRNet paper), one PNG per image.

Layout, on a white background::

    +-------------------+  +---------+ +---------+ +---------+ +---------+
    | whole GT image,   |  | Bicubic | | model A | | model B | |   GT    |   <- crops, zoomed by the
    | crop box in red   |  |  crop   | |  crop   | |  crop   | |  crop   |      same integer factor
    |                   |  +---------+ +---------+ +---------+ +---------+      (nearest neighbour)
    +-------------------+   Bicubic     model A     model B      GT          <- captions: name,
     name (W x H)           crop  p/s   crop  p/s   crop  p/s   crop                crop PSNR/SSIM,
     legend                 image p/s   image p/s   image p/s   image              whole-image PSNR/SSIM

The crops run Bicubic first (a model named ``bicubic`` in any case), then the other models in the
given order, the ground truth last, and wrap into rows of ``columns`` panels. The best PSNR and the
best SSIM among the models (crop and whole image separately) are printed in red, as in papers.
"""
import math

import cv2
import numpy as np

from mrnet_arch.reports.crops import crop as crop_box
from mrnet_arch.reports.crops import is_finite

WHITE = (255, 255, 255)
TEXT = (20, 20, 20)
BEST = (200, 0, 0)
MUTED = (110, 110, 110)
FRAME = (180, 180, 180)
BOX = (230, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_NAME = cv2.FONT_HERSHEY_DUPLEX
DECIMALS = {'psnr': 2, 'ssim': 4}


def order_models(names):
    """Bicubic first (any model named ``bicubic``, case-insensitive), then the others in their order."""
    names = list(names)
    return [n for n in names if n.lower() == 'bicubic'] + [n for n in names if n.lower() != 'bicubic']


def zoom_factor(box, panel):
    """Integer nearest-neighbour zoom that brings the crop's longer side closest to ``panel`` (>= 1)."""
    return max(1, int(round(panel / max(box[2], box[3]))))


def zoom_nearest(img, factor):
    """Repeat every pixel ``factor x factor`` times (nearest neighbour; pixel values are kept exactly)."""
    return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def _fmt(value, key):
    return f'{value:.{DECIMALS[key]}f}' if is_finite(value) else 'inf'


def _best(scores, models, key):
    values = [scores[m][key] for m in models if m in scores and is_finite(scores[m][key])]
    return max(values) if values else None


def _text(canvas, text, x, y, scale, color=TEXT, font=FONT, thickness=1):
    """Draw ``text`` with its baseline at ``y`` and return its width."""
    cv2.putText(canvas, text, (int(x), int(y)), font, scale, color, thickness, cv2.LINE_AA)
    return cv2.getTextSize(text, font, scale, thickness)[0][0]


def _width(text, scale, font=FONT, thickness=1):
    return cv2.getTextSize(text, font, scale, thickness)[0][0]


def _font_scale(lines, width, target_height):
    """The largest scale at which the text is about ``target_height`` px tall and every line fits."""
    cap = cv2.getTextSize('Ag', FONT, 1.0, 1)[0][1]
    scale = target_height / cap
    for text, font in lines:
        scale = min(scale, (width - 6) / max(1, _width(text, 1.0, font)))
    return max(scale, 0.3)


def caption_lines(name, scores, is_gt=False):
    """The three caption lines of a panel: name, crop PSNR/SSIM, whole-image PSNR/SSIM."""
    if is_gt:
        return [name, 'crop  reference', 'image reference']
    s = scores[name]
    return [name, f'crop  {_fmt(s["crop_psnr"], "psnr")} / {_fmt(s["crop_ssim"], "ssim")}',
            f'image {_fmt(s["psnr"], "psnr")} / {_fmt(s["ssim"], "ssim")}']


def render_figure(gt, outputs, box, scores, name=None, order=None, panel=240, columns=4, gt_label='GT',
                  path=None):
    """Render one comparison figure.

    Args:
        gt (np.ndarray): Ground truth (HR) image, ``(H, W, 3)`` uint8 RGB.
        outputs (dict[str, np.ndarray]): ``{model name: SR image}`` (RGB, same size), Bicubic included
            if it is to be shown.
        box (tuple[int, int, int, int]): The crop ``(x, y, w, h)``.
        scores (dict[str, dict[str, float]]): ``{model: {'psnr', 'ssim', 'crop_psnr', 'crop_ssim'}}``
            as returned by :func:`mrnet_arch.reports.crops.score_images`; printed with 2 decimals
            for PSNR (dB) and 4 for SSIM.
        name (str | None): Image name, printed under the thumbnail.
        order (list[str] | None): Panel order of the models (default :func:`order_models`); GT is
            always last.
        panel (int): Target size of a zoomed crop's longer side, in pixels; the zoom is the integer
            factor closest to it (:func:`zoom_factor`), so every crop panel has the same size.
        columns (int): Crop panels per row; more panels wrap into further rows.
        gt_label (str): Caption of the ground-truth panel.
        path (str | None): If given, the figure is also written there as PNG.

    Returns:
        np.ndarray: The figure, ``(height, width, 3)`` uint8 RGB.
    """
    models = list(order) if order is not None else order_models(outputs)
    missing = [m for m in models if m not in outputs or m not in scores]
    if missing:
        raise ValueError(f'render_figure: no output or scores for {missing}')
    x, y, w, h = box
    factor = zoom_factor(box, panel)
    zw, zh = w * factor, h * factor
    panels = [(m, outputs[m], False) for m in models] + [(gt_label, gt, True)]
    cols = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / cols)

    gap = max(8, zw // 24)
    pad = max(12, zw // 16)
    captions = [caption_lines(label, scores, is_gt) for label, _, is_gt in panels]
    scale = _font_scale([(c[0], FONT_NAME) for c in captions] + [(t, FONT) for c in captions for t in c[1:]],
                        zw, min(20, max(11, zw * 0.065)))
    line_h = int(math.ceil(cv2.getTextSize('Ag', FONT, scale, 1)[0][1] * 1.75))
    caption_h = 3 * line_h + line_h // 3
    cell_h = zh + caption_h
    grid_w = cols * zw + (cols - 1) * gap
    grid_h = rows * cell_h + (rows - 1) * gap

    # thumbnail: as tall as the crop grid minus its own two caption lines, capped in width
    gh, gw = gt.shape[:2]
    thumb_caption_h = 2 * line_h + line_h // 3
    thumb_h = max(zh, grid_h - thumb_caption_h)
    thumb_w = int(round(gw * thumb_h / gh))
    max_thumb_w = max(2 * zw, grid_w)
    if thumb_w > max_thumb_w:
        thumb_w, thumb_h = max_thumb_w, int(round(gh * max_thumb_w / gw))
    interp = cv2.INTER_AREA if thumb_h < gh else cv2.INTER_CUBIC
    thumb = cv2.resize(np.ascontiguousarray(gt), (thumb_w, thumb_h), interpolation=interp)
    sx, sy = thumb_w / gw, thumb_h / gh
    thick = max(2, int(round(min(thumb_w, thumb_h) / 150)))
    cv2.rectangle(thumb, (int(round(x * sx)), int(round(y * sy))),
                  (int(round((x + w) * sx)) - 1, int(round((y + h) * sy)) - 1), BOX, thick, cv2.LINE_AA)

    legend = 'PSNR (dB) / SSIM (Y)'
    title = f'{name} ({gw}x{gh})' if name else f'{gw}x{gh}'
    left_w = max(thumb_w, _width(title, scale, FONT_NAME), _width(legend, scale))
    height = pad + max(thumb_h + thumb_caption_h, grid_h) + pad
    width = pad + left_w + 2 * pad + grid_w + pad
    canvas = np.full((height, width, 3), WHITE, dtype=np.uint8)

    canvas[pad:pad + thumb_h, pad:pad + thumb_w] = thumb
    cv2.rectangle(canvas, (pad - 1, pad - 1), (pad + thumb_w, pad + thumb_h), FRAME, 1)
    base = pad + thumb_h + line_h
    _text(canvas, title, pad, base, scale, TEXT, FONT_NAME)
    _text(canvas, legend, pad, base + line_h, scale, MUTED)

    best = {k: _best(scores, models, k) for k in ('psnr', 'ssim', 'crop_psnr', 'crop_ssim')}
    left = pad + left_w + 2 * pad
    for i, ((label, img, is_gt), lines) in enumerate(zip(panels, captions)):
        r, c = divmod(i, cols)
        px, py = left + c * (zw + gap), pad + r * (cell_h + gap)
        canvas[py:py + zh, px:px + zw] = zoom_nearest(crop_box(img, box), factor)
        cv2.rectangle(canvas, (px - 1, py - 1), (px + zw, py + zh), FRAME, 1)
        ty = py + zh + line_h
        name_w = _width(lines[0], scale, FONT_NAME)
        _text(canvas, lines[0], px + (zw - name_w) // 2, ty, scale, TEXT, FONT_NAME)
        for j, (kind, line) in enumerate(zip(('crop_', ''), lines[1:])):
            ly = ty + (j + 1) * line_h
            lx = px + (zw - _width(line, scale)) // 2
            if is_gt:
                _text(canvas, line, lx, ly, scale, MUTED)
                continue
            s = scores[label]
            head, rest = line.split(' ', 1) if ' ' in line else (line, '')
            # "crop  31.25 / 0.8912": head, PSNR, SSIM; best values in red
            psnr_txt, ssim_txt = _fmt(s[kind + 'psnr'], 'psnr'), _fmt(s[kind + 'ssim'], 'ssim')
            prefix = line[:len(line) - len(rest.lstrip())]
            lx += _text(canvas, prefix, lx, ly, scale, MUTED)
            lx += _text(canvas, psnr_txt, lx, ly, scale, BEST if s[kind + 'psnr'] == best[kind + 'psnr'] else TEXT)
            lx += _text(canvas, ' / ', lx, ly, scale, TEXT)
            _text(canvas, ssim_txt, lx, ly, scale, BEST if s[kind + 'ssim'] == best[kind + 'ssim'] else TEXT)
    if path:
        write_png(path, canvas)
    return canvas


def write_png(path, rgb):
    """Write an RGB uint8 image as PNG with cv2 (RGB -> BGR); raises OSError when cv2 cannot."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f'could not write {path}')
    return str(path)


def encode_png(rgb):
    """PNG bytes of an RGB uint8 image."""
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError('could not encode the image as PNG')
    return buf.tobytes()
