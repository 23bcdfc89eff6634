"""CPU latency of MRNet vs EDSR-baseline for a 256x256 input, x2, fp32, on this machine's CPU with 2 torch
threads (and 1, for comparison), one process, the same run, through ``mrnet bench``.

    python benchmarks/cpu_bench.py [--repeat 5] [--output-dir benchmarks/results]

Writes ``cpu_<date>.json`` and ``cpu_<date>.md`` with the CPU model, the load average before and after and
the number of other busy processes seen at the start (when the machine was busy, the figures are upper
bounds of what an idle machine gives, and the report says so, with the measured load).
"""
import argparse
import datetime
import os
import os.path as osp
import subprocess

from mrnet_arch.commands.bench.command import run  # noqa: E402
from mrnet_arch.core.files import write_json, write_text  # noqa: E402


def busy_processes(min_cpu=10.0):
    """Commands (first two words) of other processes using >= min_cpu % CPU, from ``ps``."""
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
                    'process(es) using >= 10% CPU at the start), so these are not idle-machine figures.**')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--repeat', type=int, default=5)
    p.add_argument('--threads', type=int, nargs='+', default=[2, 1])
    p.add_argument('--output-dir', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    args = p.parse_args(argv)
    date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d')
    stem = f'cpu_{date}'
    load_before, busy = list(os.getloadavg()), busy_processes()
    runs = {}
    for threads in args.threads:
        runs[threads] = run(['--models', 'MRNet', 'EDSR-baseline', '--device', 'cpu', '--precision', 'fp32',
                             '--lr-size', '256', '256', '--scale', '2', '--repeat', str(args.repeat), '--warmup', '1',
                             '--threads', str(threads), '--output-dir', args.output_dir,
                             '--name', f'{stem}_{threads}threads'])
    load_after = list(os.getloadavg())
    first = runs[args.threads[0]]
    m = first['machine']
    shared, note = load_note(load_before, load_after, busy)
    lines = [
        f'# CPU latency, MRNet vs EDSR-baseline, 256x256 input, x2, fp32 ({m["cpu_model"]})', '',
        f'- Date (UTC): {m["date_utc"]}; CPU {m["cpu_model"]}, {m["cpu_count"]} cores; torch {m["torch"]}; '
        f'basicsr {m["basicsr"]}; batch 1; channels_last; median of {args.repeat} runs after 1 warm-up run',
        f'- Load average (1/5/15 min) before: {[round(v, 2) for v in load_before]}, after: '
        f'{[round(v, 2) for v in load_after]}; other busy processes (>= 10% CPU) at the start: '
        f'{len(busy) if busy is not None else "unknown"}',
        note, '',
        '| torch threads | Model | Params | MACs | median ms | min ms | max ms |', '|---|---|---|---|---|---|---|',
    ]
    summary = {}
    for threads, result in runs.items():
        for r in result['models']:
            lat = r['latency_ms']['fp32']
            summary.setdefault(str(threads), {})[r['label']] = lat['median']
            lines.append(f"| {threads} | {r['label']} | {r['params']:,} | {r['macs'] / 1e9:.1f}G | "
                         f"{lat['median']:.0f} | {lat['min']:.0f} | {lat['max']:.0f} |")
    lines.append('')
    for threads, lat in summary.items():
        lines.append(f"- {threads} thread(s): MRNet / EDSR-baseline latency ratio "
                     f"{lat['MRNet'] / lat['EDSR-baseline']:.2f} (MAC ratio "
                     f"{first['models'][0]['macs'] / first['models'][1]['macs']:.2f})")
    text = '\n'.join(lines) + '\n'
    out = {'machine': m, 'load_before': load_before, 'load_after': load_after, 'busy_processes_at_start': busy,
           'shared_machine': shared, 'median_ms': summary,
           'runs': {t: r['paths'] for t, r in runs.items()}}
    write_json(osp.join(args.output_dir, stem + '.json'), out, indent=1)
    write_text(osp.join(args.output_dir, stem + '.md'), text)
    print(text)


if __name__ == '__main__':
    main()
