"""A self-contained static comparison page: ``index.html`` plus ``scores.json`` beside it.

The page needs no server and no other file: every image is a base64 PNG data URI, CSS and JS are
inline. It holds

* the score table: whole-image PSNR (dB) and SSIM per image and model, and their mean over the
  images. Numbers are shown with ``DECIMALS`` decimals (PSNR 2, SSIM 4, rounded half-even as Python's
  ``format`` does); every score cell carries the exact JSON number in ``data-value`` (plus
  ``data-image``, ``data-model``, ``data-metric``). The best value of a row is bold.
* the comparison figures (:mod:`mrnet_arch.reports.figure`), and
* per image a before/after slider over the full images: two ``<select>`` pick the left and right
  model (GT included), an ``<input type=range>`` moves the split; the left model's image lies on top,
  clipped with CSS ``clip-path: inset(0 <100-split>% 0 0)``.

Each full image is embedded once, in a ``<script type="application/json" id="full-images">`` store
(``{image index: {model: data URI}}``) that the slider's two ``<img>`` elements take their sources
from.

``scores.json`` holds the same numbers::

    {"title": ..., "decimals": {"psnr": 2, "ssim": 4}, "models": [...],
     "images": [{"name": ..., "crop": [x, y, w, h],
                 "scores": {model: {"psnr", "ssim", "crop_psnr", "crop_ssim"}}}, ...],
     "mean": {model: {"psnr", "ssim"}}}

Non-finite scores (the PSNR of an output identical to GT) are written as ``null`` and shown as ``inf``.
"""
import base64
import html
import json
import math
import os
from os import path as osp

import numpy as np

from mrnet_arch.reports.figure import encode_png, order_models
from mrnet_arch.storage.files import write_json, write_text

DECIMALS = {'psnr': 2, 'ssim': 4}
METRICS = ('psnr', 'ssim')
GT_NAME = 'GT'


def json_number(value):
    """A score as JSON stores it: a float, or None when not finite."""
    return float(value) if value is not None and math.isfinite(value) else None


def format_score(value, metric):
    """The table's text for a score: ``DECIMALS[metric]`` decimals, ``inf`` when not finite."""
    return 'inf' if value is None else f'{value:.{DECIMALS[metric]}f}'


def data_uri(image):
    """``data:image/png;base64,...`` for an RGB uint8 array, or for the bytes of a PNG file (a path)."""
    if isinstance(image, (str, os.PathLike)):
        with open(image, 'rb') as f:
            raw = f.read()
    else:
        raw = encode_png(np.asarray(image))
    return 'data:image/png;base64,' + base64.b64encode(raw).decode('ascii')


def collect_scores(images, title=''):
    """The content of ``scores.json`` for ``images`` (see :func:`write_page`)."""
    models = []
    for item in images:
        for model in order_models(item['outputs']):
            if model not in models:
                models.append(model)
    entries = []
    for item in images:
        scores = {m: {k: json_number(v) for k, v in item['scores'][m].items()} for m in item['outputs']}
        entry = {'name': str(item['name']), 'scores': scores}
        if item.get('crop') is not None:
            entry['crop'] = [int(v) for v in item['crop']]
        entries.append(entry)
    mean = {}
    for model in models:
        mean[model] = {}
        for metric in METRICS:
            values = [e['scores'][model][metric] for e in entries if model in e['scores']]
            mean[model][metric] = (None if any(v is None for v in values) or not values else
                                   float(np.mean(values)))
    return {'title': title, 'decimals': dict(DECIMALS), 'models': models, 'images': entries, 'mean': mean}


def _cell(value, metric, image, model, best):
    text = format_score(value, metric)
    cls = ' class="best"' if best is not None and value == best else ''
    return (f'<td{cls} data-image="{html.escape(image)}" data-model="{html.escape(model)}" '
            f'data-metric="{metric}" data-value="{json.dumps(value)}">{text}</td>')


def _table(data):
    models = data['models']
    head1 = ''.join(f'<th colspan="2">{html.escape(m)}</th>' for m in models)
    head2 = ''.join('<th>PSNR</th><th>SSIM</th>' for _ in models)
    rows = []
    for name, scores, cls in ([(e['name'], e['scores'], '') for e in data['images']] +
                              [('mean', data['mean'], ' class="mean"')]):
        best = {}
        for metric in METRICS:
            finite = [scores[m][metric] for m in models if m in scores and scores[m][metric] is not None]
            best[metric] = max(finite) if finite else None
        cells = []
        for model in models:
            if model not in scores:
                cells.append('<td class="na">&ndash;</td><td class="na">&ndash;</td>')
                continue
            cells.extend(_cell(scores[model][m], m, name, model, best[m]) for m in METRICS)
        rows.append(f'<tr{cls}><th scope="row">{html.escape(name)}</th>{"".join(cells)}</tr>')
    return (f'<table id="scores"><thead><tr><th rowspan="2">image</th>{head1}</tr><tr>{head2}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _slider(index, item, scores):
    names = order_models(item['outputs']) + [GT_NAME]
    others = [m for m in names if m != GT_NAME]
    ranked = sorted(others, key=lambda m: -(scores[m]['psnr'] if scores[m]['psnr'] is not None else math.inf))
    left = ranked[0] if ranked else GT_NAME
    right = next((m for m in others if m.lower() == 'bicubic' and m != left), GT_NAME)

    def options(selected):
        return ''.join(f'<option value="{html.escape(m)}"{" selected" if m == selected else ""}>'
                       f'{html.escape(m)}</option>' for m in names)

    h, w = item['gt'].shape[:2]
    return f'''<div class="ba" data-image="{index}" style="max-width:{max(w, 480)}px">
  <div class="controls">
    <label>left <select class="left" aria-label="left model">{options(left)}</select></label>
    <input class="split" type="range" min="0" max="100" step="0.1" value="50" aria-label="split position">
    <label><select class="right" aria-label="right model">{options(right)}</select> right</label>
  </div>
  <div class="stage" style="width:{w}px;aspect-ratio:{w}/{h}">
    <img class="under" alt="right model" width="{w}" height="{h}">
    <img class="over" alt="left model" width="{w}" height="{h}">
    <div class="divider"></div>
    <span class="tag tag-left"></span><span class="tag tag-right"></span>
  </div>
</div>'''


CSS = '''
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1400px;
  padding:0 16px;color:#222;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .5em}
p.note{color:#666;margin:.2em 0 1em;font-size:.9em}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.92em;margin-bottom:1em}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}
thead th{background:#f4f4f4;text-align:center}tbody th{text-align:left;font-weight:normal}
tr.mean th,tr.mean td{border-top:2px solid #999;background:#fafafa}
td.best{font-weight:bold;color:#b00000}td.na{color:#aaa;text-align:center}
img.figure{display:block;max-width:100%;height:auto;border:1px solid #eee}
.ba{margin:14px 0 8px}.controls{display:flex;align-items:center;gap:12px;margin-bottom:8px;flex-wrap:wrap}
.controls input[type=range]{flex:1;min-width:120px}
.stage{position:relative;max-width:100%;height:auto;user-select:none;touch-action:none;cursor:ew-resize;
  background:#eee;overflow:hidden}
.stage img{position:absolute;top:0;left:0;width:100%;height:100%;display:block;image-rendering:auto}
.stage img.over{clip-path:inset(0 50% 0 0)}
.stage .divider{position:absolute;top:0;bottom:0;left:50%;width:2px;margin-left:-1px;background:#fff;
  box-shadow:0 0 0 1px rgba(0,0,0,.45);pointer-events:none}
.tag{position:absolute;top:8px;padding:2px 8px;background:rgba(0,0,0,.6);color:#fff;font-size:.85em;
  border-radius:3px;pointer-events:none}.tag-left{left:8px}.tag-right{right:8px}
'''

JS = '''
(function(){
  const FULL = JSON.parse(document.getElementById('full-images').textContent);
  document.querySelectorAll('.ba').forEach(function(ba){
    const store = FULL[ba.dataset.image];
    const left = ba.querySelector('select.left'), right = ba.querySelector('select.right');
    const range = ba.querySelector('input.split'), stage = ba.querySelector('.stage');
    const over = ba.querySelector('img.over'), under = ba.querySelector('img.under');
    const divider = ba.querySelector('.divider');
    function pick(){
      if (over.getAttribute('src') !== store[left.value]) over.src = store[left.value];
      if (under.getAttribute('src') !== store[right.value]) under.src = store[right.value];
      over.alt = left.value; under.alt = right.value;
      ba.querySelector('.tag-left').textContent = left.value;
      ba.querySelector('.tag-right').textContent = right.value;
    }
    function split(){
      const v = Math.min(100, Math.max(0, parseFloat(range.value)));
      over.style.clipPath = 'inset(0 ' + (100 - v) + '% 0 0)';
      divider.style.left = v + '%';
    }
    function drag(e){
      if (e.type === 'pointermove' && !(e.buttons & 1)) return;
      const r = stage.getBoundingClientRect();
      range.value = Math.min(100, Math.max(0, 100 * (e.clientX - r.left) / r.width));
      range.dispatchEvent(new Event('input', {bubbles: true}));
    }
    left.addEventListener('change', pick); right.addEventListener('change', pick);
    range.addEventListener('input', split);
    stage.addEventListener('pointerdown', drag); stage.addEventListener('pointermove', drag);
    pick(); split();
  });
})();
'''


def write_page(output_dir, images, title='MRNet: visual comparison', extra=None):
    """Write ``index.html`` and ``scores.json`` into ``output_dir``.

    Args:
        output_dir (str): Folder to write into (created if missing).
        images (list[dict]): One dict per image, in page order:

            * ``name`` (str): the image's name.
            * ``gt`` (np.ndarray): the ground truth, ``(H, W, 3)`` uint8 RGB.
            * ``outputs`` (dict[str, np.ndarray]): ``{model: SR image}``, RGB, the size of ``gt``.
            * ``scores`` (dict[str, dict[str, float]]): ``{model: {'psnr', 'ssim', 'crop_psnr',
              'crop_ssim'}}`` for every model of ``outputs`` (as from
              :func:`mrnet_arch.reports.crops.score_images`).
            * ``crop`` (tuple[int, int, int, int], optional): the figure's crop box ``(x, y, w, h)``.
            * ``figure`` (str | np.ndarray, optional): the figure, as a PNG file path or an RGB array.
        title (str): The page title.
        extra (dict | None): More top-level entries for ``scores.json`` (e.g. the settings of the run); they
            may not replace the entries described in the module docstring.

    Returns:
        dict[str, str]: ``{'html': path of index.html, 'json': path of scores.json}``.
    """
    if not images:
        raise ValueError('write_page: no images')
    for item in images:
        missing = [m for m in item['outputs'] if m not in item['scores']]
        if missing:
            raise ValueError(f'write_page: {item["name"]}: no scores for {missing}')
        if GT_NAME in item['outputs']:
            raise ValueError(f'write_page: {item["name"]}: a model may not be called {GT_NAME!r}')
    os.makedirs(output_dir, exist_ok=True)
    data = collect_scores(images, title)
    clash = sorted(set(extra or {}) & set(data))
    if clash:
        raise ValueError(f'write_page: extra may not replace {clash} of scores.json')

    full = {}
    sections = []
    for index, (item, entry) in enumerate(zip(images, data['images'])):
        full[str(index)] = {m: data_uri(item['outputs'][m]) for m in order_models(item['outputs'])}
        full[str(index)][GT_NAME] = data_uri(item['gt'])
        parts = [f'<section class="image" id="image-{index}"><h2>{html.escape(entry["name"])}</h2>']
        if item.get('figure') is not None:
            parts.append(f'<img class="figure" alt="comparison figure: {html.escape(entry["name"])}" '
                         f'src="{data_uri(item["figure"])}">')
        parts.append(_slider(index, item, entry['scores']))
        parts.append('</section>')
        sections.append('\n'.join(parts))

    decimals = ', '.join(f'{m.upper()} {d} decimals' for m, d in DECIMALS.items())
    store = json.dumps(full).replace('</', '<\\/')
    page = f'''<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="note">Whole-image PSNR (dB) and SSIM ({decimals}); the exact values are in scores.json
beside this page. Figures: crop PSNR/SSIM and whole-image PSNR/SSIM under each crop, best in red.
Sliders: pick two models, drag across the image.</p>
{_table(data)}
{''.join(sections)}
<script type="application/json" id="full-images">{store}</script>
<script>{JS}</script>
</body></html>
'''
    html_path = osp.join(output_dir, 'index.html')
    json_path = osp.join(output_dir, 'scores.json')
    write_json(json_path, dict(data, **(extra or {})), indent=1, allow_nan=False)
    write_text(html_path, page)
    return {'html': html_path, 'json': json_path}
