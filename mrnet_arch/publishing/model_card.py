"""Markdown model cards for weight files (``mrnet card``, ``mrnet contribute --weights``).

The card holds the architecture and its config (inferred from the weights, see
``mrnet_arch.storage.weights``), the parameter count, the MACs for a 1280x720 output per scale
(``mrnet_arch.measurement.complexity``), the training options, the PSNR/SSIM table of a test run and the sha256
of the weight file.

Training options come from ``--options YML``, else from the option file BasicSR copies into the
experiment folder: for ``experiments/<name>/models/net_g_*.pth`` the ``*.yml`` files in
``experiments/<name>/``.

Results (``--results``) are either

- a JSON file mapping test-set names to metrics, each a number or, for multi-scale models, a
  mapping from scale to numbers::

      {"Set5": {"psnr": 38.05, "ssim": 0.9607}, "Set14": {"psnr": 33.65, "ssim": 0.9186}}
      {"x2": {"Set5": {"psnr": 38.05, "ssim": 0.9607}}, "x4": {"Set5": {"psnr": 32.1, "ssim": 0.89}}}

  (top-level keys ``x<s>`` are scales; anything else is a test set), or
- a BasicSR test log (``*.log``), whose ``Validation <set>`` blocks of ``# <metric>: <value>`` lines
  are read (the last block of each set wins).
"""
import os
import re
from glob import glob
from os import path as osp

import yaml

from mrnet_arch.errors import InvalidValueError
from mrnet_arch.measurement.complexity import HD_OUTPUT, count_macs, count_params, lr_size_for_output
from mrnet_arch.storage.files import json_object, sha256_of
from mrnet_arch.storage.weights import load_model, scales_of

_LOG_SET = re.compile(r'Validation (\S+)')
_LOG_METRIC = re.compile(r'# (\w+): ([-+0-9.eE]+|nan|inf)')


def find_options(weights):
    """The experiment's copied option file(s) for BasicSR's ``experiments/<name>/models/<weights>`` layout.

    Returns:
        list[str]: ``*.yml`` files in the weights' folder or, if it is ``models``, its parent; may be empty.
    """
    folder = osp.dirname(osp.abspath(weights))
    folders = [folder] + ([osp.dirname(folder)] if osp.basename(folder) == 'models' else [])
    return sorted(f for d in folders for f in glob(osp.join(d, '*.yml')) + glob(osp.join(d, '*.yaml')))


def parse_log(text):
    """Metrics of a BasicSR test/validation log: ``{set: {metric: value}}`` (last block per set wins)."""
    results, current = {}, None
    for line in text.splitlines():
        found = _LOG_SET.search(line)
        if found:
            current = results.setdefault(found.group(1), {})
            current.clear()
            continue
        metric = _LOG_METRIC.search(line)
        if metric and current is not None:
            current[metric.group(1)] = float(metric.group(2))
        elif line.strip() and not line.startswith(('\t', ' ')):
            current = None
    return {k: v for k, v in results.items() if v}


def read_results(path):
    """Results file -> ``{scale or None: {set: {metric: value}}}``.

    Raises:
        InvalidValueError: The file does not follow the documented format (the message names it).
    """
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if path.lower().endswith('.log'):
        results = parse_log(text)
        if not results:
            raise InvalidValueError(f'--results {path}: no "Validation <set>" blocks with "# <metric>: <value>" lines')
        return {None: results}
    data = json_object(text, f'--results {path}')
    by_scale = {}
    for key, value in data.items():
        scale = int(key[1:]) if re.fullmatch(r'x\d+', key) else None
        sets = value if scale is not None else {key: value}
        for name, metrics in sets.items():
            if not isinstance(metrics, dict) or not all(isinstance(v, (int, float)) for v in metrics.values()):
                raise InvalidValueError(f'--results {path}: entry {name!r} must map metric names to numbers, '
                                        f'e.g. {{"psnr": 38.0, "ssim": 0.96}}; found {metrics!r}')
            by_scale.setdefault(scale, {})[name] = metrics
    return by_scale


def results_table(by_scale):
    """Markdown table of ``read_results`` output."""
    metrics = []
    for sets in by_scale.values():
        for m in sets.values():
            metrics += [k for k in m if k not in metrics]
    with_scale = any(s is not None for s in by_scale)
    head = (['Scale'] if with_scale else []) + ['Test set'] + [m.upper() for m in metrics]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for scale, sets in sorted(by_scale.items(), key=lambda kv: kv[0] or 0):
        for name, m in sets.items():
            cells = ([f'x{scale}' if scale else ''] if with_scale else []) + [name]
            cells += [f'{m[k]:.4f}' if k in m else '' for k in metrics]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _options_section(path):
    """Markdown summary of a BasicSR option file plus the file itself."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    opt = yaml.safe_load(text) or {}
    train = opt.get('train') or {}
    train_set = ((opt.get('datasets') or {}).get('train')) or {}
    rows = [('experiment', opt.get('name')), ('model_type', opt.get('model_type')), ('scale', opt.get('scale')),
            ('train set', train_set.get('name')), ('gt_size', train_set.get('gt_size')),
            ('batch size per GPU', train_set.get('batch_size_per_gpu')),
            ('optimizer', (train.get('optim_g') or {}).get('type')), ('lr', (train.get('optim_g') or {}).get('lr')),
            ('scheduler', (train.get('scheduler') or {}).get('type')), ('total_iter', train.get('total_iter')),
            ('pixel loss', (train.get('pixel_opt') or {}).get('type')), ('ema_decay', train.get('ema_decay'))]
    lines = [f'From `{osp.basename(path)}`.', '', '| Option | Value |', '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in rows if v is not None]
    lines += ['', '<details><summary>Full option file</summary>', '', '```yaml', text.rstrip(), '```', '',
              '</details>']
    return '\n'.join(lines)


def make_card(weights, results=None, options=None, prefer_ema=True):
    """Markdown model card of a weight file.

    Args:
        weights (str): Weight file.
        results (str | None): Results JSON or BasicSR log (see the module docstring).
        options (str | None): BasicSR option file; default: found beside the weights (``find_options``).
        prefer_ema (bool): Describe a checkpoint's ``params_ema`` over its ``params``. Default: True.

    Returns:
        str: The card.
    """
    net, config = load_model(weights, prefer_ema=prefer_ema)
    scales = scales_of(config)
    params = count_params(net)
    name = osp.splitext(osp.basename(weights))[0]
    lines = [f'# {name}', '', f'{config["type"]} (Memory Recursive Network for Single Image Super-Resolution, '
             f'ACM MM 2020), {"/".join(f"x{s}" for s in scales)} super-resolution, BasicSR plugin `mrnet_arch`.',
             '', '## Architecture', '', '| Config | Value |', '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in config.items()]
    lines += ['', '## Complexity', '', f'Parameters: {params:,}', '',
              f'| Scale | Input | MACs for a {HD_OUTPUT[1]}x{HD_OUTPUT[0]} output |', '|---|---|---|']
    for s in scales:
        h, w = lr_size_for_output(s)
        lines.append(f'| x{s} | {w}x{h} | {count_macs(net, (h, w), scale=s) / 1e9:.1f} G |')
    lines += ['', 'MACs: convolution multiply-accumulates (torch.utils.flop_counter FLOPs / 2).', '',
              '## Training', '']
    option_files = [options] if options else find_options(weights)
    if option_files:
        lines.append(_options_section(option_files[0]))
    else:
        lines.append('No option file given (--options) or found beside the weights.')
    lines += ['', '## Results', '']
    lines.append(results_table(read_results(results)) if results else 'No test results given (--results).')
    lines += ['', '## Weights', '', f'- file: `{osp.basename(weights)}` ({os.path.getsize(weights):,} bytes)',
              f'- sha256: `{sha256_of(weights)}`', '- load: `mrnet_arch.storage.weights.load_model(path)`, '
              '`mrnet infer --weights ...`, or spandrel after `mrnet_arch.spandrel_support.register()`', '']
    return '\n'.join(lines)
