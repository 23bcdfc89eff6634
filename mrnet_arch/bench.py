"""``mrnet bench``: compare SR models side by side, like the paper's Table 3 and Figure 9.

For each model: parameters, MACs at a 1280x720 output (or at ``--lr-size``), median latency per
precision (CUDA events on GPU; ``time.perf_counter`` on CPU; warm-up runs first), peak memory
(``torch.cuda.max_memory_allocated`` on GPU; on CPU the rise of the process's peak RSS during one
forward, read from ``/proc/self/status`` after resetting it, or 'n/a' where that is not possible),
and, for models with weights (and Bicubic) and ``--benchmarks`` folders in BasicSR's Set5 layout
(``GTmod12/`` + ``LRbicx{s}/``), Y-channel PSNR/SSIM per dataset with ``crop_border = scale``.

Models are given as:

- a preset name: ``MRNet`` (the paper's MRNet-S config for the scale), ``MRNet-MS`` (the paper's
  multi-scale MRNet run at the scale), ``EDSR-baseline``, ``RCAN``, ``SwinIR`` (lightweight config),
  ``Bicubic``; a preset may take overrides: ``MRNet:num_feat=32,num_block=4``;
- a registered arch with keyword arguments: ``EDSR:num_in_ch=3,num_out_ch=3,num_feat=64,num_block=16``
  (values are YAML: ``depths=[6,6,6,6]``; ``upscale`` defaults to ``--scale``);
- an option YAML (its ``network_g``, whose ``upscale`` must equal ``--scale``; its
  ``path: pretrain_network_g`` is used as weights, a relative path being relative to the project root
  as in ``mrnet train``/``mrnet test``);
- any of these with a label: ``small=MRNet:num_feat=32``.

Outputs (``--output-dir``, default ``benchmarks/results/``): ``NAME.json``, ``NAME.md`` and with
``--plot`` ``NAME.png``: PSNR vs parameters when PSNR was measured, else MACs and latency vs
parameters (the figure title says which).
"""
import argparse
import copy
import datetime
import inspect
import json
import os
import os.path as osp
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import yaml
from torch import nn

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from mrnet_arch.complexity import HD_OUTPUT, count_macs, count_params, lr_size_for_output
from mrnet_arch.fast import PRECISIONS, prepare_fast
from mrnet_arch.infer import resolve_device
from mrnet_arch.machine import machine_info
from mrnet_arch.utils import project_root
from mrnet_arch.weights import WeightsError, read_state_dict

MRNET_RECURSIONS = {2: 4, 3: 6, 4: 8}  # section 4.1 of the paper


def _presets(scale):
    """Preset name -> (arch type, kwargs, input multiple) for ``scale``."""
    swinir = dict(upscale=scale, img_size=64, window_size=8, img_range=1., depths=[6, 6, 6, 6], embed_dim=60,
                  num_heads=[6, 6, 6, 6], mlp_ratio=2, upsampler='pixelshuffledirect', resi_connection='1conv')
    return {
        'MRNet': ('MRNet', dict(num_feat=64, num_block=10, upscale=scale,
                                num_recursion=MRNET_RECURSIONS.get(scale, 4)), 1),
        'MRNet-MS': ('MultiScaleMRNet', dict(upscale=scale), 1),
        'EDSR-baseline': ('EDSR', dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=scale,
                                       res_scale=1, img_range=255.), 1),
        'RCAN': ('RCAN', dict(num_in_ch=3, num_out_ch=3, upscale=scale), 1),
        'SwinIR': ('SwinIR', swinir, 8),
        'Bicubic': ('Bicubic', dict(upscale=scale), 1),
    }


PRESET_NAMES = tuple(_presets(2))


class ModelSpec:
    """One model to benchmark: label, arch type, kwargs, weights, input multiple (window size).

    ``weights`` is the path as given; ``weights_base`` the folder a relative one is relative to (the
    project root for an option file's ``pretrain_network_g``; None: the working directory).
    """

    def __init__(self, label, arch, kwargs, weights=None, multiple=1, source='', weights_base=None):
        self.label, self.arch, self.kwargs = label, arch, kwargs
        self.weights, self.multiple, self.source = weights, multiple, source
        self.weights_base = weights_base

    def weights_path(self):
        """The weights file to load (None: no weights)."""
        if self.weights and self.weights_base and not osp.isabs(self.weights):
            return osp.join(self.weights_base, self.weights)
        return self.weights

    def check_weights(self):
        """Stop with a clear message when the weights file does not exist."""
        path = self.weights_path()
        if path and not osp.isfile(path):
            where = (f' (path: pretrain_network_g of {self.source}, relative to the project root '
                     f'{self.weights_base})' if self.weights_base else '')
            raise SystemExit(f'mrnet bench: weights file not found: {path}{where}')

    def build(self):
        from basicsr.utils.registry import ARCH_REGISTRY
        try:
            cls = ARCH_REGISTRY.get(self.arch)
        except KeyError as e:
            raise SystemExit(f'mrnet bench: arch {self.arch!r} (model {self.label!r}) is not registered') from e
        net = cls(**self.kwargs)
        if self.weights:
            self.check_weights()
            load_weights(net, self.weights_path())
        return net


def _split_top_level(text, sep=','):
    """Split ``text`` on ``sep`` outside brackets (so ``depths=[6,6]`` stays whole)."""
    parts, depth, cur = [], 0, ''
    for ch in text:
        depth += ch in '[({'
        depth -= ch in '])}'
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def _parse_kwargs(text):
    kwargs = {}
    for item in _split_top_level(text):
        key, eq, value = item.partition('=')
        if not eq or not key.strip():
            raise SystemExit(f'mrnet bench: bad argument {item!r}: expected key=value')
        kwargs[key.strip()] = yaml.safe_load(value)
    return kwargs


def _fill_defaults(arch, kwargs, scale):
    """``upscale`` = scale and 3 channels for arch arguments that are left out and have no default."""
    from basicsr.utils.registry import ARCH_REGISTRY
    try:
        params = inspect.signature(ARCH_REGISTRY.get(arch)).parameters
    except KeyError:
        return kwargs
    kwargs = dict(kwargs)
    if 'upscale' in params and 'upscale' not in kwargs:
        kwargs['upscale'] = scale
    for key in ('num_in_ch', 'num_out_ch'):
        if key in params and key not in kwargs and params[key].default is inspect.Parameter.empty:
            kwargs[key] = 3
    return kwargs


def parse_model_spec(text, scale):
    """Parse one ``--models`` entry (see the module docstring) into a ``ModelSpec``."""
    label = None
    head, eq, rest = text.partition('=')
    if eq and ':' not in head and not head.lower().endswith(('.yml', '.yaml')):
        label, text = head, rest
    if text.lower().endswith(('.yml', '.yaml')):
        if not osp.isfile(text):
            raise SystemExit(f'mrnet bench: option file not found: {text}')
        with open(text, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
        net_opt = dict(opt.get('network_g') or {})
        if 'type' not in net_opt:
            raise SystemExit(f'mrnet bench: {text} has no network_g: type')
        arch = net_opt.pop('type')
        if 'upscale' in net_opt and net_opt['upscale'] != scale:
            raise SystemExit(f"mrnet bench: {text} has network_g: upscale {net_opt['upscale']}, but --scale is "
                             f"{scale}: pass --scale {net_opt['upscale']} or an option file for x{scale}")
        weights = (opt.get('path') or {}).get('pretrain_network_g')
        if weights:
            weights = osp.expanduser(weights)  # as BasicSR's parse_options
        multiple = net_opt.get('window_size', 1) if arch == 'SwinIR' else 1
        return ModelSpec(label or opt.get('name') or arch, arch, _fill_defaults(arch, net_opt, scale), weights,
                         multiple, source=text, weights_base=project_root())
    name, _, args = text.partition(':')
    overrides = _parse_kwargs(args) if args else {}
    presets = _presets(scale)
    if name in presets:
        arch, kwargs, multiple = presets[name]
        kwargs = dict(kwargs, **overrides)
        if arch == 'SwinIR':
            multiple = kwargs.get('window_size', multiple)
        return ModelSpec(label or name, arch, kwargs, None, multiple, source=text)
    multiple = overrides.get('window_size', 7) if name == 'SwinIR' else 1
    return ModelSpec(label or name, name, _fill_defaults(name, overrides, scale), None, multiple, source=text)


def load_weights(net, path):
    """Load BasicSR weights (``params_ema`` / ``params`` / a bare state dict; ``.pth`` or ``.safetensors``)
    with ``mrnet_arch.weights.read_state_dict``; a file it refuses stops with its ``WeightsError`` message."""
    try:
        state = read_state_dict(path)[0]
    except WeightsError as err:
        raise SystemExit(f'mrnet bench: {err}') from err
    net.load_state_dict(state, strict=True)


class PadCrop(nn.Module):
    """Reflect-pad the input to a multiple of ``multiple`` (SwinIR's window size) and crop the output
    back to ``scale`` times the input size, as SwinIR's own test script does."""

    def __init__(self, net, multiple, scale):
        super().__init__()
        self.net, self.multiple, self.upscale = net, multiple, scale

    def padded_size(self, h, w):
        m = self.multiple
        return h + (-h) % m, w + (-w) % m

    def forward(self, x):
        h, w = x.shape[-2:]
        ph, pw = self.padded_size(h, w)
        if (ph, pw) != (h, w):
            x = F.pad(x, (0, pw - w, 0, ph - h), mode='reflect')
        return self.net(x)[..., :h * self.upscale, :w * self.upscale]


# --------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------
def _proc_status_kib(field):
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            match = re.search(rf'^{field}:\s+(\d+) kB', f.read(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss():
    """Reset the kernel's peak RSS (VmHWM) of this process; False where that is not possible."""
    try:
        with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
            f.write('5')
    except OSError:
        return False
    return _proc_status_kib('VmHWM') is not None


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure_latency(fast, x, warmup, repeat):
    """Per-call times in ms of ``fast(x)`` after ``warmup`` calls (CUDA events on GPU)."""
    device = fast.device
    x = x.to(device)
    for _ in range(warmup):
        fast(x)
    _sync(device)
    times = []
    for _ in range(repeat):
        if device.type == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fast(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fast(x)
            times.append((time.perf_counter() - t0) * 1000)
    return times


def measure_peak_memory(fast, x):
    """Peak memory of one forward: dict with ``mib`` (None if unknown) and ``kind`` (what was measured)."""
    device = fast.device
    x = x.to(device)
    if device.type == 'cuda':
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        fast(x)
        _sync(device)
        return {'mib': torch.cuda.max_memory_allocated(device) / 2**20,
                'kind': 'torch.cuda.max_memory_allocated (weights, input and activations)'}
    if not _reset_peak_rss():
        return {'mib': None, 'kind': 'n/a (no /proc/self/clear_refs on this system)'}
    before = _proc_status_kib('VmRSS')
    fast(x)
    peak = _proc_status_kib('VmHWM')
    return {'mib': max(peak - before, 0) / 1024, 'kind': 'peak RSS rise during one forward (VmHWM - VmRSS before)'}


def _read_rgb(path):
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR uint8; gray files become 3 equal channels
    if img is None:
        raise SystemExit(f'mrnet bench: cannot read image {path}')
    return img


def _find_pairs(folder, scale):
    """(GT path, LR path) pairs of a benchmark folder in BasicSR's Set5 layout."""
    gt_dirs = sorted(d for d in os.listdir(folder) if d.startswith('GTmod') and osp.isdir(osp.join(folder, d)))
    lr_dir = osp.join(folder, f'LRbicx{scale}')
    if not gt_dirs or not osp.isdir(lr_dir):
        raise SystemExit(f'mrnet bench: {folder} needs GTmod*/ and LRbicx{scale}/ (run "mrnet prepare benchmark")')
    gt_dir = osp.join(folder, gt_dirs[0])
    lr_files = {}
    for name in os.listdir(lr_dir):
        stem = osp.splitext(name)[0]
        lr_files[stem] = name
        lr_files.setdefault(re.sub(rf'x{scale}$', '', stem), name)
    pairs = []
    for name in sorted(os.listdir(gt_dir)):
        stem = osp.splitext(name)[0]
        if stem in lr_files:
            pairs.append((osp.join(gt_dir, name), osp.join(lr_dir, lr_files[stem])))
    if not pairs:
        raise SystemExit(f'mrnet bench: no GT/LR pairs with matching names in {folder}')
    return pairs


def evaluate(fast, pairs, scale):
    """Mean Y-PSNR / SSIM (BasicSR's metrics, crop_border=scale) of ``fast`` over (GT, LR) pairs."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from basicsr.utils import img2tensor, tensor2img
    psnrs, ssims = [], []
    for gt_path, lr_path in pairs:
        gt, lr = _read_rgb(gt_path), _read_rgb(lr_path)
        x = img2tensor(lr.astype('float32') / 255., bgr2rgb=True, float32=True).unsqueeze(0)
        sr = tensor2img(fast(x).cpu(), rgb2bgr=True, min_max=(0, 1))
        sr = sr[:gt.shape[0], :gt.shape[1]]
        psnrs.append(calculate_psnr(sr, gt, crop_border=scale, test_y_channel=True))
        ssims.append(calculate_ssim(sr, gt, crop_border=scale, test_y_channel=True))
    return {'psnr': statistics.fmean(psnrs), 'ssim': statistics.fmean(ssims), 'images': len(pairs)}


# --------------------------------------------------------------------------------------------------
# Machine info, report
# --------------------------------------------------------------------------------------------------
def _fmt(value, spec, none='n/a'):
    return none if value is None else format(value, spec)


def _fmt_macs(macs):
    if macs is None:
        return 'n/a'
    return f'{macs / 1e9:.1f}G' if macs >= 1e9 else f'{macs / 1e6:.2f}M'


def _fmt_params(params):
    return f'{params / 1e6:.3f}M' if params >= 1e5 else f'{params:,}'


def markdown_report(result):
    m, s = result['machine'], result['settings']
    lines = [
        f"# mrnet bench, x{s['scale']}, {m['device_name']} ({m['device']})", '',
        f"- Date (UTC): {m['date_utc']}; CPU: {m['cpu_model']}, {m['cpu_count']} cores, torch threads "
        f"{m['torch_threads']}; load average at start (1/5/15 min): {m['load_average_1_5_15']}",
        f"- torch {m['torch']} (CUDA build {m['cuda_build']}), basicsr {m['basicsr']}, Python {m['python']}",
        f"- Input {s['lr_size'][1]}x{s['lr_size'][0]} (w x h), output {s['output_size'][1]}x{s['output_size'][0]}; "
        f"latency: median of {s['repeat']} runs after {s['warmup']} warm-up runs "
        f"({'CUDA events' if m['device'].startswith('cuda') else 'time.perf_counter'}), batch 1, "
        f"channels_last {s['channels_last']}, torch.compile {s['compile']}",
        f"- Peak memory: {result['memory_kind']}",
    ]
    if s.get('note'):
        lines.append(f"- Note: {s['note']}")
    precisions = s['precisions']
    header = ['Model', 'Params', 'MACs'] + [f'{p} ms' for p in precisions] + [f'{p} peak MiB' for p in precisions]
    datasets = [osp.basename(osp.normpath(d)) for d in s['benchmarks']]
    header += [f'{d} {p} PSNR/SSIM' for d in datasets for p in precisions]
    lines += ['', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in result['models']:
        row = [r['label'], _fmt_params(r['params']), _fmt_macs(r['macs'])]
        row += [_fmt((r['latency_ms'].get(p) or {}).get('median'), '.2f') for p in precisions]
        row += [_fmt((r['peak_memory'].get(p) or {}).get('mib'), '.1f') for p in precisions]
        for d in datasets:
            for p in precisions:
                metric = (r['metrics'].get(d) or {}).get(p)
                row.append(f"{metric['psnr']:.2f}/{metric['ssim']:.4f}" if metric else '-')
        lines.append('| ' + ' | '.join(row) + ' |')
    lines.append('')
    for r in result['models']:
        extra = []
        if r['padded_lr_size'] != s['lr_size']:
            extra.append(f"input reflect-padded to {r['padded_lr_size'][1]}x{r['padded_lr_size'][0]} "
                         f"(window multiple {r['multiple']}); MACs at the padded size")
        if r['weights']:
            extra.append(f"weights {r['weights']}")
        elif s['benchmarks'] and r['params']:
            extra.append('no weights: PSNR/SSIM not measured')
        for p, err in r.get('errors', {}).items():
            extra.append(f'{p}: {err}')
        lines.append(f"- {r['label']}: {r['arch']}({json.dumps(r['kwargs'])})" + (f"; {'; '.join(extra)}" if extra
                                                                                   else ''))
    return '\n'.join(lines) + '\n'


def plot_report(result, path):
    """PSNR vs params (Figure 9) when PSNR was measured, else MACs and latency vs params; returns the title."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    s = result['settings']
    prec = s['precisions'][0]
    rows = result['models']
    points = []
    dataset = None
    for d in (osp.basename(osp.normpath(b)) for b in s['benchmarks']):
        points = [(r['label'], r['params'], r['metrics'][d][prec]['psnr']) for r in rows
                  if (r['metrics'].get(d) or {}).get(prec)]
        if points:
            dataset = d
            break
    if dataset:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for label, params, psnr in points:
            ax.scatter(params / 1e3, psnr)
            ax.annotate(label, (params / 1e3, psnr), textcoords='offset points', xytext=(4, 4), fontsize=8)
        ax.set_xlabel('Parameters (K)')
        ax.set_ylabel(f'PSNR (dB), Y channel, {prec}')
        title = f"PSNR vs parameters on {dataset} x{s['scale']}"
        ax.set_title(title)
        ax.grid(alpha=.3)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        panels = [('MACs (G)', lambda r: None if r['macs'] is None else r['macs'] / 1e9),
                  (f'median latency {prec} (ms)', lambda r: (r['latency_ms'].get(prec) or {}).get('median'))]
        for ax, (ylabel, get) in zip(axes, panels):
            for r in rows:
                y = get(r)
                if y is None:
                    continue
                ax.scatter(r['params'] / 1e3, y)
                ax.annotate(r['label'], (r['params'] / 1e3, y), textcoords='offset points', xytext=(4, 4),
                            fontsize=8)
            ax.set_xlabel('Parameters (K)')
            ax.set_ylabel(ylabel)
            ax.grid(alpha=.3)
        title = (f"No PSNR measured (no weights or no --benchmarks): MACs and latency vs parameters, "
                 f"x{s['scale']}, {result['machine']['device_name']}")
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return title


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def _parser():
    p = argparse.ArgumentParser(prog='mrnet bench', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', default=['MRNet', 'EDSR-baseline', 'RCAN', 'SwinIR', 'Bicubic'],
                   help=f'presets {", ".join(PRESET_NAMES)}, ARCH:k=v,..., option YAMLs, optionally LABEL=...')
    p.add_argument('--scale', type=int, default=2)
    p.add_argument('--device', default='auto', help='auto (cuda if available), cpu, cuda or cuda:N')
    p.add_argument('--precision', nargs='+', default=['fp32', 'bf16'], choices=PRECISIONS)
    p.add_argument('--lr-size', nargs=2, type=int, metavar=('H', 'W'),
                   help='input size; default: the input of a 1280x720 output at --scale')
    p.add_argument('--weights', nargs='+', default=[], metavar='LABEL=PATH')
    p.add_argument('--benchmarks', nargs='+', default=[], metavar='DIR',
                   help='folders with GTmod12/ and LRbicx{scale}/ for Y-PSNR/SSIM (models with weights, Bicubic)')
    p.add_argument('--repeat', type=int, default=20, help='timed runs per model and precision (median reported)')
    p.add_argument('--warmup', type=int, default=None, help='untimed runs first (default 3; 10 with --compile)')
    p.add_argument('--no-channels-last', dest='channels_last', action='store_false')
    p.add_argument('--compile', action='store_true', help='torch.compile the models (CUDA only)')
    p.add_argument('--compile-mode', default=None, help="torch.compile mode, e.g. 'reduce-overhead' (CUDA graphs)")
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (torch.set_num_threads)')
    p.add_argument('--no-tf32', dest='tf32', action='store_false', help='CUDA fp32 without TF32 (default: TF32 on)')
    p.add_argument('--skip-latency', action='store_true', help='params, MACs and metrics only')
    p.add_argument('--output-dir', default=None, help='default: benchmarks/results/ under the project root')
    p.add_argument('--name', default=None, help='file name stem (default bench_<device>_x<scale>_<date>)')
    p.add_argument('--plot', action='store_true', help='write a PNG plot (needs matplotlib)')
    p.add_argument('--note', default=None, help='free text stored in the report (e.g. machine load)')
    return p


def _resolve_device(name):
    try:
        return resolve_device(name)
    except ValueError as err:
        raise SystemExit(f'mrnet bench: {err}') from err


def bench_model(spec, args, device, lr_size, pairs):
    """All measurements of one model; returns its result dict."""
    scale = args.scale
    net = spec.build()
    wrapped = PadCrop(net, spec.multiple, scale)
    padded = list(wrapped.padded_size(*lr_size))
    has_params = count_params(net) > 0
    try:
        macs = count_macs(wrapped, lr_size=tuple(lr_size), scale=scale)
    except Exception as e:  # noqa: BLE001  (report, keep going with the other numbers)
        macs, macs_error = None, f'{type(e).__name__}: {e}'
    else:
        macs_error = None
    result = {
        'label': spec.label, 'arch': spec.arch, 'kwargs': spec.kwargs, 'source': spec.source,
        'weights': spec.weights_path(), 'multiple': spec.multiple, 'params': count_params(net), 'macs': macs,
        'padded_lr_size': padded, 'latency_ms': {}, 'peak_memory': {}, 'metrics': {}, 'errors': {},
    }
    if macs_error:
        result['errors']['macs'] = macs_error
    x = torch.rand(1, 3, *lr_size, generator=torch.Generator().manual_seed(0))
    for precision in args.precision:
        try:
            fast = prepare_fast(copy.deepcopy(wrapped), device, precision, channels_last=args.channels_last,
                                compile=args.compile, compile_mode=args.compile_mode)
            if not args.skip_latency:
                times = measure_latency(fast, x, args.warmup, args.repeat)
                result['latency_ms'][precision] = {
                    'median': statistics.median(times), 'min': min(times), 'max': max(times), 'runs': times}
                result['peak_memory'][precision] = measure_peak_memory(fast, x)
            if pairs and (spec.weights or not has_params):
                for dataset, dataset_pairs in pairs.items():
                    result['metrics'].setdefault(dataset, {})[precision] = evaluate(fast, dataset_pairs, scale)
        except (RuntimeError, ValueError) as e:  # e.g. out of memory, unsupported precision on this device
            result['errors'][precision] = f'{type(e).__name__}: {str(e).splitlines()[0][:300]}'
        finally:
            fast = None
            if device.type == 'cuda':
                torch.cuda.empty_cache()
        lat = result['latency_ms'].get(precision)
        print(f"[bench] {spec.label:>16} {precision:>9}: "
              f"{'latency %.2f ms' % lat['median'] if lat else result['errors'].get(precision, 'done')}",
              flush=True)
    return result


def run(argv=None):
    """Run the benchmark; returns the result dict (also written to files)."""
    args = _parser().parse_args(argv)
    device = _resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True
    if args.warmup is None:
        args.warmup = 10 if args.compile else 3
    if args.repeat < 1:
        raise SystemExit('mrnet bench: --repeat must be >= 1')
    lr_size = list(args.lr_size) if args.lr_size else list(lr_size_for_output(args.scale, HD_OUTPUT))
    specs = [parse_model_spec(m, args.scale) for m in args.models]
    labels = [s.label for s in specs]
    for item in args.weights:
        label, eq, path = item.partition('=')
        if not eq or label not in labels:
            raise SystemExit(f'mrnet bench: --weights {item!r}: expected LABEL=PATH with LABEL one of {labels}')
        spec = specs[labels.index(label)]
        spec.weights, spec.weights_base = path, None
    for spec in specs:
        spec.check_weights()
    pairs = {osp.basename(osp.normpath(d)): _find_pairs(d, args.scale) for d in args.benchmarks}
    machine = machine_info(device)
    settings = {
        'scale': args.scale, 'lr_size': lr_size, 'output_size': [lr_size[0] * args.scale, lr_size[1] * args.scale],
        'precisions': args.precision, 'repeat': args.repeat, 'warmup': args.warmup,
        'channels_last': args.channels_last, 'compile': args.compile, 'compile_mode': args.compile_mode,
        'tf32': args.tf32 if device.type == 'cuda' else None, 'benchmarks': args.benchmarks, 'note': args.note,
        'argv': list(sys.argv[1:] if argv is None else argv),
    }
    print(f"[bench] {machine['device_name']} ({device}), input {lr_size[1]}x{lr_size[0]}, x{args.scale}, "
          f"precisions {args.precision}", flush=True)
    models = [bench_model(spec, args, device, lr_size, pairs) for spec in specs]
    machine['load_average_end'] = list(os.getloadavg()) if hasattr(os, 'getloadavg') else None
    memory_kind = ('torch.cuda.max_memory_allocated during one forward (weights, input, activations)'
                   if device.type == 'cuda' else
                   next((v['kind'] for r in models for v in r['peak_memory'].values()), 'not measured'))
    result = {'machine': machine, 'settings': settings, 'memory_kind': memory_kind, 'models': models}

    out_dir = args.output_dir or osp.join(project_root(), 'benchmarks', 'results')
    os.makedirs(out_dir, exist_ok=True)
    stem = args.name or f"bench_{device.type}_x{args.scale}_{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    paths = {'json': osp.join(out_dir, stem + '.json'), 'md': osp.join(out_dir, stem + '.md')}
    if args.plot:
        paths['png'] = osp.join(out_dir, stem + '.png')
        result['plot'] = {'path': paths['png'], 'title': plot_report(result, paths['png'])}
    markdown = markdown_report(result)
    if args.plot:
        markdown += f"\nPlot: {osp.basename(paths['png'])}: {result['plot']['title']}\n"
    with open(paths['json'], 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1, default=str)
    with open(paths['md'], 'w', encoding='utf-8') as f:
        f.write(markdown)
    print(markdown)
    print('[bench] wrote ' + ', '.join(paths.values()))
    result['paths'] = paths
    return result


def main(argv=None):
    """``mrnet bench``; returns 0 (or 1 when a model failed in every precision)."""
    result = run(argv)
    failed = [r['label'] for r in result['models'] if r['errors'] and all(p in r['errors'] for p in
                                                                          result['settings']['precisions'])]
    if failed:
        print(f'[bench] failed: {failed}', file=sys.stderr)
        return 1
    return 0
