"""CPU latency of MRNet vs EDSR-baseline, x2, fp32 and bf16, on this machine's CPU: one ``mrnet bench`` run and,
in the same process, interleaved rounds that give the latency ratios on a machine shared with other jobs.

    python benchmarks/cpu_bench.py [--lr-size 180 320] [--threads 1] [--rounds 12] [--variants channels_last]

1. ``mrnet bench`` (``mrnet_arch.commands.bench.command.run``) over the models and precisions: parameters, MACs,
   median latency (one model and precision after the other), peak RSS rise; its own ``.json``/``.md``.
2. Interleaved rounds: every configuration (model x precision x variant) prepared once with ``prepare_fast`` and
   warmed up, then each round times one forward of every configuration, in an order that rotates from round
   to round. A burst of load from another job then hits all configurations of a round alike, and the ratios
   (MRNet / EDSR-baseline, fp32 / bf16) are taken within each round; the report gives their medians.

Variants (``--variants``): ``channels_last`` (what ``mrnet bench`` runs), ``contiguous`` (NCHW), ``compile``
(``torch.compile`` of the prepared network with the inductor CPU backend) and ``compile_freezing`` (the same with
inductor's ``freezing``: weights folded in as constants and the convolutions' weights prepacked for oneDNN), and
``stack``: channels_last with every ``ShuffleConv`` computed as its grouped convolution
(:class:`ForcedShuffleConv`: the T outputs stacked, a copy, and one grouped convolution) instead of the
multiply-adds it runs at inference: the same function of the same weights, to measure what the multiply-add form
gains. The compile time is in the warm-up time the report gives.

Writes ``<name>.json`` and ``<name>.md`` (default name ``cpu_<vendor>-<capability>_<date>``, e.g.
``cpu_intel-avx512-amx_20261202``) with the CPU model, its torch capability and native-bf16 support, the
load average before, during and after, and the number of other busy processes seen at the start.
"""
import argparse
import copy
import datetime
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from mrnet_arch.commands.bench.command import parse_model_spec, run
from mrnet_arch.inference.fast import prepare_fast
from mrnet_arch.measurement.complexity import count_macs, count_params
from mrnet_arch.measurement.machine import cpu_flags, cpu_model, machine_info
from mrnet_arch.storage.files import write_json, write_text

VARIANTS = ('channels_last', 'contiguous', 'compile', 'compile_freezing', 'stack')
CPU_FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512_fp16')


def busy_processes(min_cpu=10.0):
    """Commands (first three words) of other processes using >= min_cpu % CPU, from ``ps``."""
    try:
        out = subprocess.run(['ps', '-eo', 'pid,pcpu,args', '--sort=-pcpu'], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    busy = []
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) == 3 and int(parts[0]) != os.getpid() and float(parts[1]) >= min_cpu:
            busy.append(' '.join(osp.basename(w) for w in parts[2].split()[:3]))
    return busy


def load_note(load_before, load_after, busy):
    """(busy, the report's line on it): busy means a 1-min load average above 0.5 or other busy processes."""
    shared = (busy is not None and len(busy) > 0) or load_before[0] > 0.5
    if not shared:
        return shared, '- No other busy process was seen at the start and the load average was low.'
    return shared, (f'- **The machine was busy (load average {load_before[0]:.2f} at the start, '
                    f'{load_after[0]:.2f} at the end; {len(busy) if busy is not None else "unknown"} other '
                    'process(es) using >= 10% CPU at the start), so the latencies are not idle-machine figures; '
                    'the ratios are taken within each interleaved round.**')


def cpu_features():
    """What torch and the CPU offer: ATen's CPU capability, oneDNN's native bf16, and the relevant cpuinfo flags.

    Returns:
        dict: ``cpu_capability``, ``mkldnn_available``, ``mkldnn_bf16_supported``, ``flags`` (present ones).
    """
    flags = cpu_flags()
    return {
        'cpu_capability': torch.backends.cpu.get_cpu_capability(),
        'mkldnn_available': torch.backends.mkldnn.is_available(),
        'mkldnn_bf16_supported': bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        'flags': [f for f in CPU_FLAGS if f in flags],
    }


def machine_slug(features):
    """``<vendor>-<capability>[-amx]``, e.g. ``intel-avx512-amx`` or ``amd-avx2``, for file names."""
    model = cpu_model().lower()
    vendor = 'intel' if 'intel' in model else 'amd' if 'amd' in model else 'cpu'
    slug = f"{vendor}-{features['cpu_capability'].lower()}"
    return slug + '-amx' if 'amx_bf16' in features['flags'] else slug


class ForcedShuffleConv(nn.Module):
    """A ShuffleConv that always computes its output in one ``form``: ``'grouped_conv'`` (the T outputs stacked,
    a copy, and one grouped convolution) or ``'multiply_add'`` (T multiply-adds, 1x1 only), whatever the grad mode
    (``ShuffleConv.forward`` takes the multiply-adds without gradients and the grouped convolution with them).

    Args:
        shuffle (nn.Module): The ``ShuffleConv`` (its weights are shared).
        form (str): ``'grouped_conv'`` or ``'multiply_add'``.
    """

    def __init__(self, shuffle, form):
        super().__init__()
        self.shuffle, self.form = shuffle, form

    def forward(self, feats):
        return getattr(self.shuffle, self.form)(feats)


def force_shuffle_convs(net, form):
    """Wrap every ``ShuffleConv`` of ``net`` in a :class:`ForcedShuffleConv` of ``form``; returns their count."""
    names = [n for n, m in net.named_modules() if type(m).__name__ == 'ShuffleConv']
    for name in names:
        parent_name, _, child = name.rpartition('.')
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, child, ForcedShuffleConv(getattr(parent, child), form))
    return len(names)


def prepare(net, precision, variant):
    """``prepare_fast(net, 'cpu', precision)`` in the given variant (see the module docstring)."""
    net = copy.deepcopy(net)
    if variant == 'stack':
        force_shuffle_convs(net, 'grouped_conv')
    fast = prepare_fast(net, 'cpu', precision, channels_last=variant != 'contiguous')
    if variant == 'compile':
        fast.net = torch.compile(fast.net)
    elif variant == 'compile_freezing':  # weights folded as constants, convolutions with prepacked oneDNN weights
        fast.net = torch.compile(fast.net, options={'freezing': True})
    return fast


def interleaved_rounds(nets, precisions, variants, lr_size, rounds, warmup):
    """Time one forward of every configuration per round (rotating order); see the module docstring.

    Args:
        nets (dict): Label -> network.
        precisions (list[str]): Precisions of ``prepare_fast``.
        variants (list[str]): Items of ``VARIANTS``.
        lr_size (list[int]): Input (h, w).
        rounds (int): Timed rounds.
        warmup (int): Untimed forwards of each configuration first (at least 1).

    Returns:
        dict: ``configs`` (list of [label, precision, variant]), ``times_ms`` (per config key
        ``label|precision|variant``, one wall time per round), ``cpu_times_ms`` (the same, the process's CPU time:
        what the forward itself ran, without the time other jobs held the core), ``warmup_s`` (per key, the
        warm-up's wall time, which holds the compile time of the compiled variants), ``load_per_round`` (1-min
        load average at each round's start).
    """
    x = torch.rand(1, 3, *lr_size, generator=torch.Generator().manual_seed(0))
    fasts, warm, diff = {}, {}, {}
    for label, net in nets.items():
        with torch.inference_mode():
            ref = net.eval()(x)  # plain fp32 NCHW forward, the reference of every configuration's output
        for precision in precisions:
            for variant in variants:
                key = f'{label}|{precision}|{variant}'
                fasts[key] = prepare(net, precision, variant)
                t0 = time.perf_counter()
                for _ in range(max(warmup, 1)):
                    out = fasts[key](x)
                warm[key] = time.perf_counter() - t0
                diff[key] = (out - ref).abs().max().item()
                print(f'[cpu_bench] warm-up {key}: {warm[key]:.1f} s; max |out - fp32 eager| {diff[key]:.2e}',
                      flush=True)
    keys = list(fasts)
    times, cpu_times = {k: [] for k in keys}, {k: [] for k in keys}
    loads = []
    for r in range(rounds):
        loads.append(os.getloadavg()[0])
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for key in order:
            t0, c0 = time.perf_counter(), time.process_time()
            fasts[key](x)
            cpu_times[key].append((time.process_time() - c0) * 1000)
            times[key].append((time.perf_counter() - t0) * 1000)
        print(f'[cpu_bench] round {r + 1}/{rounds}: ' + ', '.join(
            f'{k} {times[k][-1]:.0f} ms ({cpu_times[k][-1]:.0f} ms CPU)' for k in keys), flush=True)
    return {'configs': [k.split('|') for k in keys], 'times_ms': times, 'cpu_times_ms': cpu_times, 'warmup_s': warm,
            'max_abs_diff_vs_fp32_eager': diff, 'load_per_round': loads}


def summarize(rounds, labels, precisions, variants, macs, clock='times_ms'):
    """Medians and within-round ratios of :func:`interleaved_rounds`' times (``clock``: ``times_ms``, wall, or
    ``cpu_times_ms``).

    Returns:
        dict: ``median_ms`` [variant][precision][label]; ``ratio`` [variant][precision] = median over rounds of
        labels[0] / labels[1] latency, with ``min``/``max``; ``bf16_speedup`` [variant][label] = median over
        rounds of fp32 / bf16 latency (when both were measured); ``mac_ratio``.
    """
    t = rounds[clock]

    def stats(values):
        return {'median': statistics.median(values), 'min': min(values), 'max': max(values)}

    out = {'median_ms': {}, 'ratio': {}, 'bf16_speedup': {}, 'mac_ratio': macs[labels[0]] / macs[labels[1]]}
    for v in variants:
        out['median_ms'][v] = {p: {m: statistics.median(t[f'{m}|{p}|{v}']) for m in labels} for p in precisions}
        out['ratio'][v] = {p: stats([a / b for a, b in zip(t[f'{labels[0]}|{p}|{v}'], t[f'{labels[1]}|{p}|{v}'])])
                           for p in precisions}
        if 'fp32' in precisions and 'bf16' in precisions:
            out['bf16_speedup'][v] = {m: stats([a / b for a, b in zip(t[f'{m}|fp32|{v}'], t[f'{m}|bf16|{v}'])])
                                      for m in labels}
    return out


def markdown(result):
    """The report (Markdown) of ``main``'s result."""
    m, f, a = result['machine'], result['features'], result['settings']
    labels, precisions = a['models'], a['precisions']
    h, w = a['lr_size']
    lines = [
        f"# CPU latency, {' vs '.join(labels)}, x{a['scale']}, {w}x{h} input ({w * a['scale']}x{h * a['scale']} "
        f"output), {' and '.join(precisions)} ({m['cpu_model']})", '',
        f"- Date (UTC): {m['date_utc']}; CPU {m['cpu_model']}, {m['cpu_count']} cores; torch {m['torch']}; "
        f"basicsr {m['basicsr']}; torch threads {a['threads']}; batch 1"
        + (f"; environment {' '.join(f'{k}={v}' for k, v in a['env'].items())}" if a.get('env') else ''),
        f"- torch CPU capability {f['cpu_capability']}; oneDNN native bf16 "
        f"(`torch.ops.mkldnn._is_mkldnn_bf16_supported()`): {f['mkldnn_bf16_supported']}; cpuinfo flags: "
        f"{', '.join(f['flags']) or 'none of ' + ', '.join(CPU_FLAGS)}",
        f"- Load average (1/5/15 min) before: {[round(v, 2) for v in result['load_before']]}, after: "
        f"{[round(v, 2) for v in result['load_after']]}; 1-min load at the rounds' starts: "
        f"{min(result['rounds']['load_per_round']):.2f} to {max(result['rounds']['load_per_round']):.2f}; "
        f"other busy processes (>= 10% CPU) at the start: "
        f"{len(result['busy_processes_at_start']) if result['busy_processes_at_start'] is not None else 'unknown'}",
        result['load_note'],
        f"- Interleaved: {a['rounds']} rounds after {a['warmup']} warm-up forward(s) of each configuration; "
        'medians over the rounds; ratios taken within each round (median, [min, max] over the rounds). Wall-clock '
        'time and the process CPU time of the same forwards (one torch thread: the CPU time is the time the '
        'forward ran on a core)', '',
    ]
    clocks = (('wall', 'wall-clock time'), ('cpu', 'process CPU time (the time the forward held a core)'))
    for clock, what in clocks:
        s = result['summary'][clock]
        has_bf16 = bool(s['bf16_speedup'])
        lines += [f'### {what}', '',
                  '| variant | Model | Params | MACs | ' + ' | '.join(f'{p} median ms' for p in precisions)
                  + (' | bf16 speed-up |' if has_bf16 else ' |'), '|' + '---|' * (4 + len(precisions) + has_bf16)]
        for v in a['variants']:
            for label in labels:
                row = f"| {v} | {label} | {result['params'][label]:,} | {result['macs'][label] / 1e9:.1f}G | "
                row += ' | '.join(f"{s['median_ms'][v][p][label]:.0f}" for p in precisions)
                if has_bf16:
                    sp = s['bf16_speedup'][v][label]
                    row += f" | {sp['median']:.2f}x [{sp['min']:.2f}, {sp['max']:.2f}]"
                lines.append(row + ' |')
        lines += ['', f"{labels[0]} / {labels[1]} ({what}): MAC ratio {s['mac_ratio']:.2f}; latency ratio:"]
        for v in a['variants']:
            lines.append(f'- {v}: ' + '; '.join(
                f"{p} {s['ratio'][v][p]['median']:.2f} [{s['ratio'][v][p]['min']:.2f}, {s['ratio'][v][p]['max']:.2f}]"
                for p in precisions))
        lines.append('')
    lines.append('- Largest |output - plain fp32 forward| of each configuration: ' + ', '.join(
        f'{k} {v:.1e}' for k, v in result['rounds']['max_abs_diff_vs_fp32_eager'].items()))
    if any(v.startswith('compile') for v in a['variants']):
        lines.append('- Warm-up wall time, with the compile time of the compiled variants: ' + ', '.join(
            f'{k} {v:.0f} s' for k, v in result['rounds']['warmup_s'].items() if '|compile' in k))
    if result.get('bench'):
        b = result['bench']
        lines += [f"`mrnet bench` in the same process (one configuration after the other, median of "
                  f"{a['bench_repeat']} after 1 warm-up; `{osp.basename(b['paths']['md'])}`):", '']
        for r in b['models']:
            lat = ', '.join(f"{p} {r['latency_ms'][p]['median']:.0f} ms" for p in precisions if p in r['latency_ms'])
            mem = ', '.join(f"{p} {r['peak_memory'][p]['mib']:.0f} MiB" for p in precisions
                            if r['peak_memory'].get(p, {}).get('mib') is not None)
            lines.append(f"- {r['label']}: {lat}; peak RSS rise {mem}")
        bench_ratio = [b['models'][0]['latency_ms'][p]['median'] / b['models'][1]['latency_ms'][p]['median']
                       for p in precisions]
        lines.append('- latency ratio: ' + '; '.join(f'{p} {r:.2f}' for p, r in zip(precisions, bench_ratio)))
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', nargs=2, default=['MRNet', 'EDSR-baseline'], help='two mrnet bench model specs')
    p.add_argument('--scale', type=int, default=2)
    p.add_argument('--lr-size', nargs=2, type=int, default=[180, 320], metavar=('H', 'W'),
                   help='input size (default 180 320: a 640x360 output at x2)')
    p.add_argument('--precision', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16', 'bf16-cast'])
    p.add_argument('--variants', nargs='+', default=['channels_last'], choices=VARIANTS)
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1: steadier on a shared machine)')
    p.add_argument('--rounds', type=int, default=12, help='interleaved timed rounds')
    p.add_argument('--warmup', type=int, default=1, help='untimed forwards of each configuration first')
    p.add_argument('--bench-repeat', type=int, default=5, help='--repeat of the mrnet bench run (0: no such run)')
    p.add_argument('--output-dir', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    p.add_argument('--name', default=None, help='file name stem (default cpu_<vendor>-<capability>_<date>)')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    features = cpu_features()
    stem = args.name or f"cpu_{machine_slug(features)}_{datetime.datetime.now(datetime.timezone.utc):%Y%m%d}"
    load_before, busy = list(os.getloadavg()), busy_processes()
    machine = machine_info(torch.device('cpu'))
    specs = [parse_model_spec(m, args.scale) for m in args.models]
    labels = [s.label for s in specs]
    nets = {s.label: s.build() for s in specs}
    params = {k: count_params(n) for k, n in nets.items()}
    macs = {k: count_macs(n, lr_size=tuple(args.lr_size), scale=args.scale) for k, n in nets.items()}
    bench = None
    if args.bench_repeat > 0:
        bench = run(['--models', *args.models, '--device', 'cpu', '--precision', *args.precision,
                     '--lr-size', *map(str, args.lr_size), '--scale', str(args.scale), '--repeat',
                     str(args.bench_repeat), '--warmup', '1', '--threads', str(args.threads),
                     '--output-dir', args.output_dir, '--name', f'{stem}_bench'])
    rounds = interleaved_rounds(nets, args.precision, args.variants, args.lr_size, args.rounds, args.warmup)
    load_after = list(os.getloadavg())
    shared, note = load_note(load_before, load_after, busy)
    settings = {'models': labels, 'scale': args.scale, 'lr_size': args.lr_size, 'precisions': args.precision,
                'variants': args.variants, 'threads': args.threads, 'rounds': args.rounds, 'warmup': args.warmup,
                'bench_repeat': args.bench_repeat}
    threading_env = ('OMP_', 'KMP_', 'MKL_', 'ONEDNN_', 'DNNL_')
    settings['env'] = {k: v for k, v in os.environ.items() if k.startswith(threading_env)}
    result = {'machine': machine, 'features': features, 'settings': settings, 'load_before': load_before,
              'load_after': load_after, 'busy_processes_at_start': busy, 'shared_machine': shared, 'load_note': note,
              'params': params, 'macs': macs, 'rounds': rounds,
              'summary': {clock: summarize(rounds, labels, args.precision, args.variants, macs, key)
                          for clock, key in (('wall', 'times_ms'), ('cpu', 'cpu_times_ms'))},
              'bench': None if bench is None else {'paths': bench['paths'], 'models': bench['models']}}
    text = markdown(result)
    write_json(osp.join(args.output_dir, stem + '.json'), result, indent=1, default=str)
    write_text(osp.join(args.output_dir, stem + '.md'), text)
    print(text)


if __name__ == '__main__':
    from mrnet_arch.cli import run_command
    sys.exit(run_command('cpu_bench.py', main, None))
