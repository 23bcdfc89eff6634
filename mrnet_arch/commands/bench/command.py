"""``mrnet bench``: compare SR models side by side, like the paper's Table 3 and Figure 9.

For each model: parameters, MACs at a 1280x720 output (or at ``--lr-size``), median latency per
precision (CUDA events on GPU; ``time.perf_counter`` on CPU; warm-up runs first), peak memory
(``torch.cuda.max_memory_allocated`` on GPU; on CPU the rise of the process's peak RSS during one
forward, read from ``/proc/self/status`` after resetting it, or 'n/a' where that is not possible),
and, for models with weights (and Bicubic) and ``--benchmarks`` folders in BasicSR's Set5 layout
(``GTmod12/`` + ``LRbicx{s}/``), Y-channel PSNR/SSIM per dataset with ``crop_border = scale``.

Models are given as model specs (``mrnet_arch.measurement.specs``): a preset name (``MRNet``, ``MRNet-MS``,
``EDSR-baseline``, ``RCAN``, ``SwinIR``, ``Bicubic``, with optional overrides ``MRNet:num_feat=32``), a
registered arch with keyword arguments (``EDSR:num_feat=64,num_block=16``), an option YAML (its ``network_g``
and ``path: pretrain_network_g``), a weight file (``MRNet_demo_x2.pth``: the network is built from it), any of
these with a label (``small=MRNet:num_feat=32``). Weights define the network: an MRNet preset given weights of
another size takes its size from them and says so; weights that fit no network of the spec stop the command,
naming the tensors, before any model runs. Archs of another BasicSR plugin register with ``--import MODULE``
(e.g. ``--import hat.archs``), imported before the models are built.

Outputs (``--output-dir``, relative to the working directory, default ``benchmarks/results/`` under the project
root): ``NAME.json``, ``NAME.md`` and with ``--plot`` ``NAME.png``: PSNR vs parameters when PSNR was measured,
else MACs and latency vs parameters (the figure title says which). The JSON and Markdown files are written
before the plot is drawn; matplotlib (``--plot``) is checked before any model runs.
"""
import argparse
import copy
import datetime
import os
import os.path as osp
import statistics
import sys

import torch

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from mrnet_arch.commandline.cli_paths import overwritten_inputs
from mrnet_arch.commandline.optional import require
from mrnet_arch.commandline.plugins import add_import_argument, import_modules
from mrnet_arch.commands.bench.measure import measure_latency, measure_peak_memory
from mrnet_arch.commands.bench.report import markdown_report, plot_report
from mrnet_arch.commands.bench.score import load_benchmarks, score_model
from mrnet_arch.errors import InputError
from mrnet_arch.inference.device import resolve_device
from mrnet_arch.inference.fast import prepare_fast
from mrnet_arch.inference.precision import PRECISION_NAMES
from mrnet_arch.inference.upscaler import mrnet_arch_config, sizing
from mrnet_arch.measurement import specs as model_specs
from mrnet_arch.measurement.complexity import HD_OUTPUT, count_macs, count_params, lr_size_for_output
from mrnet_arch.measurement.machine import machine_info
from mrnet_arch.measurement.specs import PRESET_NAMES, PadCrop, parse_model_spec
from mrnet_arch.models.mrnet_tiling import MemoryBudgetError, parse_memory
from mrnet_arch.project import project_root
from mrnet_arch.storage.files import write_json, write_text
from mrnet_arch.storage.images import MAX_PIXELS

PROG = 'mrnet bench'


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def _memory_size(text):
    try:
        return parse_memory(text)
    except MemoryBudgetError as err:
        raise argparse.ArgumentTypeError(str(err).replace('--max-memory ', '')) from err


def _positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'expected a positive number of pixels, got {text!r}')
    return int(text)


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', default=['MRNet', 'EDSR-baseline', 'RCAN', 'SwinIR', 'Bicubic'],
                   help=f'presets {", ".join(PRESET_NAMES)}, ARCH:k=v,..., option YAMLs, weight files (.pth, '
                   '.safetensors: the network is built from them), optionally LABEL=...')
    p.add_argument('--scale', type=int, default=2)
    p.add_argument('--device', default='auto', help='auto (cuda if available), cpu, cuda or cuda:N')
    p.add_argument('--precision', nargs='+', default=['fp32', 'bf16'], choices=PRECISION_NAMES)
    p.add_argument('--lr-size', nargs=2, type=int, metavar=('H', 'W'),
                   help='input size; default: the input of a 1280x720 output at --scale')
    p.add_argument('--weights', nargs='+', default=[], metavar='LABEL=PATH')
    p.add_argument('--benchmarks', nargs='+', default=[], metavar='DIR',
                   help='folders with GTmod12/ and LRbicx{scale}/ for Y-PSNR/SSIM (models with weights, Bicubic)')
    p.add_argument('--max-memory', default=None, metavar='SIZE', type=_memory_size,
                   help='memory budget of one forward when scoring --benchmarks, e.g. 2G; larger images run in tiles '
                   '(default: half of the memory available now)')
    p.add_argument('--max-pixels', type=_positive_int, default=MAX_PIXELS, metavar='N',
                   help=f'refuse benchmark images with more pixels, read from the header (default {MAX_PIXELS:,})')
    p.add_argument('--repeat', type=int, default=20, help='timed runs per model and precision (median reported)')
    p.add_argument('--warmup', type=int, default=None, help='untimed runs first (default 3; 10 with --compile)')
    p.add_argument('--no-channels-last', dest='channels_last', action='store_false')
    p.add_argument('--compile', action='store_true', help='torch.compile the models (CUDA only)')
    p.add_argument('--compile-mode', default=None, help="torch.compile mode, e.g. 'reduce-overhead' (CUDA graphs)")
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (torch.set_num_threads)')
    p.add_argument('--no-tf32', dest='tf32', action='store_false', help='CUDA fp32 without TF32 (default: TF32 on)')
    p.add_argument('--skip-latency', action='store_true', help='params, MACs and metrics only')
    p.add_argument('--output-dir', default=None,
                   help='folder of the results files, relative to the working directory (default: '
                   'benchmarks/results/ under the project root)')
    p.add_argument('--name', default=None, help='file name stem (default bench_<device>_x<scale>_<date>)')
    p.add_argument('--plot', action='store_true',
                   help='also write a PNG plot, after the JSON and Markdown files (needs matplotlib: pip install '
                   '"mrnet_arch[bench]", checked before any model runs)')
    p.add_argument('--note', default=None, help='free text stored in the report (e.g. machine load)')
    add_import_argument(p)
    return p


def bench_model(spec, args, device, lr_size, pairs):
    """All measurements of one model.

    Args:
        spec (ModelSpec): The model.
        args (argparse.Namespace): The parsed options.
        device (torch.device): Where it runs.
        lr_size (list[int]): Input (h, w).
        pairs (dict): ``mrnet_arch.commands.bench.score.load_benchmarks`` result (may be empty).

    Returns:
        dict: Its counts, latency and peak memory per precision, metrics per dataset and precision, errors.
    """
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
                pad, per_pixel = sizing(net, scale, mrnet_arch_config(spec.arch, spec.kwargs))
                for dataset, metrics in score_model(fast, pairs, scale, args.max_memory, args.max_pixels,
                                                    per_pixel, pad).items():
                    result['metrics'].setdefault(dataset, {})[precision] = metrics
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
    """Run the benchmark.

    Args:
        argv (list[str] | None): The options (default: ``sys.argv[1:]``).

    Returns:
        dict: The result (machine, settings, one dict per model, file paths), also written to files.
    """
    args = build_parser().parse_args(argv)
    if args.plot:
        require(['matplotlib'], '--plot')  # before any model runs
    out_dir = args.output_dir or osp.join(project_root(), 'benchmarks', 'results')
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise InputError(f'--output-dir {out_dir} is a file, not a folder')
    if not args.output_dir:
        print(f'[bench] project root: {project_root()}', file=sys.stderr)
    import_modules(args.imports)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True
    if args.warmup is None:
        args.warmup = 10 if args.compile else 3
    if args.repeat < 1:
        raise InputError('--repeat must be >= 1')
    lr_size = list(args.lr_size) if args.lr_size else list(lr_size_for_output(args.scale, HD_OUTPUT))
    specs = [parse_model_spec(m, args.scale) for m in args.models]
    model_specs.assign_weights(specs, args.weights)
    for spec in specs:  # every weights file read and checked against its network before any model runs
        note = spec.resolve()
        if note:
            print(f'[bench] {note}', flush=True)
    pairs = load_benchmarks(args.benchmarks, args.scale)
    stem = args.name or f"bench_{device.type}_x{args.scale}_{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    paths = {k: osp.join(out_dir, f'{stem}.{k}') for k in ('json', 'md') + (('png', ) if args.plot else ())}
    inputs = [s.weights_path() for s in specs if s.weights] + [s.source for s in specs
                                                               if s.source.lower().endswith(('.yml', '.yaml'))]
    clash = overwritten_inputs(paths.values(), inputs + [p for d in pairs.values() for pair in d for p in pair])
    if clash:
        raise InputError(f'the results file {clash[0]} would replace an input: choose another --name or '
                         '--output-dir, inputs are never overwritten')
    machine = machine_info(device)
    settings = {
        'scale': args.scale, 'lr_size': lr_size, 'output_size': [lr_size[0] * args.scale, lr_size[1] * args.scale],
        'precisions': args.precision, 'repeat': args.repeat, 'warmup': args.warmup,
        'channels_last': args.channels_last, 'compile': args.compile, 'compile_mode': args.compile_mode,
        'tf32': args.tf32 if device.type == 'cuda' else None, 'benchmarks': args.benchmarks, 'note': args.note,
        'argv': list(sys.argv[1:] if argv is None else argv), 'imports': args.imports,
    }
    print(f"[bench] {machine['device_name']} ({device}), input {lr_size[1]}x{lr_size[0]}, x{args.scale}, "
          f"precisions {args.precision}", flush=True)
    models = [bench_model(spec, args, device, lr_size, pairs) for spec in specs]
    machine['load_average_end'] = list(os.getloadavg()) if hasattr(os, 'getloadavg') else None
    memory_kind = ('torch.cuda.max_memory_allocated during one forward (weights, input, activations)'
                   if device.type == 'cuda' else
                   next((v['kind'] for r in models for v in r['peak_memory'].values()), 'not measured'))
    result = {'machine': machine, 'settings': settings, 'memory_kind': memory_kind, 'models': models}

    os.makedirs(out_dir, exist_ok=True)
    markdown = markdown_report(result)
    write_json(paths['json'], result, indent=1, default=str)  # the measurements first: the plot is an extra
    write_text(paths['md'], markdown)
    if args.plot:
        result['plot'] = {'path': paths['png'], 'title': plot_report(result, paths['png'])}
        markdown += f"\nPlot: {osp.basename(paths['png'])}: {result['plot']['title']}\n"
        write_json(paths['json'], result, indent=1, default=str)
        write_text(paths['md'], markdown)
    print(markdown)
    print('[bench] wrote ' + ', '.join(paths.values()))
    result['paths'] = paths
    return result


def main(argv=None):
    """``mrnet bench``; returns 0, or 1 when any requested model failed in any requested precision (the
    results files are written either way, with the errors)."""
    result = run(argv)
    failed = [f"{r['label']} {p}" for r in result['models'] for p in result['settings']['precisions']
              if p in r['errors']]
    if failed:
        print(f'[bench] failed: {failed}', file=sys.stderr)
        return 1
    return 0
