"""Training throughput of the real ``mrnet train`` loop (BasicSR's train pipeline, data loading included).

Each configuration runs ``python -m mrnet_arch train -opt benchmarks/options/train_throughput_<MODEL>_x2.yml``
in a subprocess with ``--force_yml`` overrides for precision and memory format. The step time is read
from the timestamps (milliseconds) of BasicSR's log lines: (t(last logged iter) - t(first logged iter
>= --skip)) / (iterations between them), so start-up, cuDNN autotuning and the first iterations are
left out, and everything else of the loop (data loader, prefetcher, logging, the loss checks) is in.

    python benchmarks/train_throughput.py --configs MRNet:fp32 MRNet:bf16-cl EDSR-baseline:fp32 \
        --iters 300 --skip 100 --output-dir benchmarks/results/<card>_<date>

A configuration is MODEL:PRECISION with PRECISION one of fp32 (TF32 convolutions as cuDNN defaults),
bf16, fp32-cl, bf16-cl (-cl: channels_last). Each configuration's run is stopped after ``--timeout``
seconds (then reported as failed); the JSON and Markdown files are rewritten after every configuration,
so an interrupted run keeps the results of the configurations done.
"""
import argparse
import datetime
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LOG_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: \[.*?iter:\s*([\d,]+), lr:')


def parse_log(path):
    """[(iteration, unix time)] of BasicSR's periodic training log lines."""
    points = []
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            m = LOG_LINE.match(line)
            if m:
                t = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S,%f').timestamp()
                points.append((int(m.group(2).replace(',', '')), t))
    return points


def step_time(points, skip):
    """Mean seconds per iteration between the first logged iteration >= skip and the last one."""
    kept = [p for p in points if p[0] >= skip]
    if len(kept) < 2:
        raise ValueError(f'need two logged iterations >= {skip}, got {points}')
    (i0, t0), (i1, t1) = kept[0], kept[-1]
    return (t1 - t0) / (i1 - i0), i1 - i0


def run_config(config, args):
    model, _, precision = config.partition(':')
    precision = precision or 'fp32'
    amp, _, cl = precision.partition('-')
    yml = osp.join(ROOT, 'benchmarks', 'options', f'train_throughput_{model}_x2.yml')
    if not osp.isfile(yml):
        raise SystemExit(f'no option file {yml}')
    name = f"throughput_{model}_{precision}_{datetime.datetime.now().strftime('%H%M%S')}"
    force = [f'name={name}', f'train:total_iter={args.iters}', f'logger:print_freq={args.print_freq}',
             f"train:amp={'~' if amp == 'fp32' else amp}", f"train:channels_last={'true' if cl else 'false'}"]
    if args.cpu:
        force += ['datasets:train:prefetch_mode=~', 'datasets:train:pin_memory=false',
                  'datasets:train:persistent_workers=false', f'datasets:train:num_worker_per_gpu={args.workers}',
                  f'datasets:train:batch_size_per_gpu={args.batch}']
    cmd = [sys.executable, '-m', 'mrnet_arch', 'train', '-opt', yml, '--force_yml', *force, *args.force_yml]
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired as err:
        proc, timeout_error = None, f'timed out after {args.timeout} s'
        output = (_text(err.stdout)[-2000:] + _text(err.stderr)[-3000:]).strip()
    wall = time.time() - t0
    logs = sorted(glob.glob(osp.join(ROOT, 'experiments', name, f'train_{name}_*.log')))
    result = {'config': config, 'model': model, 'precision': precision,
              'returncode': None if proc is None else proc.returncode, 'process_wall_s': wall,
              'command': ' '.join(cmd[1:])}
    if proc is None:
        result['error'] = f'{timeout_error}\n{output}'.strip()
        print(f'[throughput] {config}: FAILED ({timeout_error})', flush=True)
        return result
    if proc.returncode != 0 or not logs:
        result['error'] = (proc.stdout[-2000:] + proc.stderr[-3000:]).strip()
        print(f'[throughput] {config}: FAILED\n{result["error"]}', flush=True)
        return result
    sec, n = step_time(parse_log(logs[-1]), args.skip)
    result.update(step_ms=sec * 1000, iters_per_s=1 / sec, measured_iters=n, log=logs[-1])
    print(f'[throughput] {config}: {sec * 1000:.2f} ms/iter ({1 / sec:.1f} it/s) over {n} iterations', flush=True)
    return result


def _text(output):
    """``TimeoutExpired.stdout``/``stderr``: bytes, str or None."""
    if isinstance(output, bytes):
        return output.decode('utf-8', errors='replace')
    return output or ''


def write_report(machine, args, results):
    """Write ``NAME.json`` and ``NAME.md`` for the configurations run so far; returns the Markdown."""
    os.makedirs(args.output_dir, exist_ok=True)
    lines = [f"# Training throughput of `mrnet train`, {machine['device_name']}", '',
             f"- Date (UTC): {machine['date_utc']}; torch {machine['torch']}; CPU {machine['cpu_model']} "
             f"({machine['cpu_count']} cores)",
             f"- {args.iters} iterations per run, timed from logged iteration {args.skip} to the last (BasicSR log "
             f"timestamps, print_freq {args.print_freq}); batch {args.batch if args.cpu else 16} x 48x48 LR, x2; "
             f'data loading, CUDA prefetcher and logging included; each run stopped after {args.timeout} s', '',
             '| Config | ms / iteration | it/s | timed iterations |', '|---|---|---|---|']
    for r in results:
        if 'step_ms' in r:
            lines.append(f"| {r['config']} | {r['step_ms']:.2f} | {r['iters_per_s']:.1f} | {r['measured_iters']} |")
        elif r['returncode'] is None:
            lines.append(f"| {r['config']} | failed (timed out after {args.timeout} s) | | |")
        else:
            lines.append(f"| {r['config']} | failed (rc {r['returncode']}) | | |")
    not_run = args.configs[len(results):]
    if not_run:
        lines += ['', f"Not run (yet): {', '.join(not_run)}"]
    text = '\n'.join(lines) + '\n'
    from mrnet_arch.storage.files import write_json, write_text
    report = {'machine': machine, 'settings': vars(args), 'results': results}
    write_json(osp.join(args.output_dir, args.name + '.json'), report, indent=1)
    write_text(osp.join(args.output_dir, args.name + '.md'), text)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--configs', nargs='+', default=['MRNet:fp32', 'MRNet:bf16-cl', 'EDSR-baseline:fp32'])
    p.add_argument('--iters', type=int, default=300)
    p.add_argument('--skip', type=int, default=100, help='first logged iteration that is timed')
    p.add_argument('--print-freq', type=int, default=50)
    p.add_argument('--timeout', type=int, default=300, help='seconds per configuration (default 300)')
    p.add_argument('--cpu', action='store_true', help='CPU smoke run: no CUDA prefetcher, --workers, --batch')
    p.add_argument('--workers', type=int, default=0)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--force-yml', nargs='+', default=[], help='more --force_yml entries for every run')
    p.add_argument('--output-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--name', default='train_throughput')
    args = p.parse_args(argv)
    from mrnet_arch.inference.device import resolve_device
    from mrnet_arch.measurement.machine import machine_info
    machine = machine_info(resolve_device('cpu' if args.cpu else 'auto'))
    results = []
    for config in args.configs:
        results.append(run_config(config, args))
        text = write_report(machine, args, results)
    print(text)
    return 1 if any('step_ms' not in r for r in results) else 0


if __name__ == '__main__':
    sys.exit(main())
