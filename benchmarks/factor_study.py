"""One factor at a time: why MRNet learns slower early than EDSR-baseline.

Each factor is one ``benchmarks/equal_budget.py`` run that changes one thing from the paper's setting (MRNet x2,
Adam 1e-4, batch 16, 48x48 LR patches, no warm-up, no clipping, basicsr's init), trained for the same number of
iterations on the same photos, with held-out Y-PSNR every ``--eval-every-iters``. Runs compared at equal
iterations do not compete for anything that changes their result, so they run as concurrent processes
(``--parallel``): on one large GPU a batch-16 step leaves most of it idle. Their iterations per second are then
not comparable, and the report says so; the equal-wall-time comparison is ``equal_budget.py`` on its own.

    mrnet prepare photos --output datasets/photos_bench
    python benchmarks/factor_study.py --data datasets/photos_bench --iters 2000 --eval-every-iters 400 \\
        --parallel 9 --device cuda --workers 1

Writes ``OUTPUT_DIR/NAME.json`` and ``NAME.md`` (one row per factor: held-out PSNR at each evaluated iteration,
and the difference from the paper's setting at the last iteration every run reached) and each run's own
results and log in ``OUTPUT_DIR/NAME/``. A run that fails or is cut by ``--timeout`` is reported with what it
wrote before (``equal_budget.py`` rewrites its JSON after every evaluation).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

from mrnet_arch.storage.files import write_json, write_text  # noqa: E402

PROG = 'factor_study.py'
EQUAL_BUDGET = osp.join(ROOT, 'benchmarks', 'equal_budget.py')

# name: (what changes from the paper's setting, model spec, equal_budget.py arguments). '{warmup}' is a tenth of
# --iters, '{batch2}' twice --batch. The label of each run's model is the factor's name.
FACTORS = {
    'paper': ("the paper's setting", 'MRNet', []),
    'lr_2e-4': ('learning rate 2e-4', 'MRNet', ['--lr', '2e-4']),
    'lr_5e-4_warmup': ('learning rate 5e-4, linear warm-up over the first tenth', 'MRNet',
                       ['--lr', '5e-4', '--warmup-iter', '{warmup}']),
    'grad_clip_0.1': ('gradient norm clipped at 0.1', 'MRNet', ['--grad-clip', '0.1']),
    'zero_init': ("last conv of the ConvBlock zero-initialised (each recursion starts as x_i = x_0)", 'MRNet',
                  ['--zero-init', 'zero_init']),
    'batch_x2': ('twice the batch (twice the samples per iteration)', 'MRNet', ['--batch', '{batch2}']),
    'skip_bicubic': ('bicubic global skip added to the output', 'MRNet:global_skip=bicubic', []),
    'skip_learned': ('learned one-layer global skip added to the output', 'MRNet:global_skip=learned', []),
    'reference': ("EDSR-baseline (or --reference) in the paper's setting", 'EDSR-baseline', []),
}


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data', required=True, help='folder written by mrnet prepare photos')
    p.add_argument('--factors', nargs='+', default=list(FACTORS), choices=list(FACTORS))
    p.add_argument('--model', default=None, metavar='SPEC',
                   help="replace 'MRNet' in every MRNet factor's spec (e.g. a smaller MRNet for a smoke run)")
    p.add_argument('--reference', default=None, metavar='SPEC', help="replace 'EDSR-baseline' in the reference run")
    p.add_argument('--batch', type=int, default=16, help="the paper's batch (the batch factor doubles it)")
    p.add_argument('--iters', type=int, default=2000)
    p.add_argument('--eval-every-iters', type=int, default=400)
    p.add_argument('--parallel', type=int, default=len(FACTORS), help='runs at once')
    p.add_argument('--timeout', type=float, default=None, help='seconds after which a run is stopped')
    p.add_argument('--output-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--name', default='factors')
    return p


def run_args(name, args, extra):
    """The equal_budget.py command line of factor ``name``."""
    _, spec, factor_args = FACTORS[name]
    if args.reference and spec == 'EDSR-baseline':
        spec = args.reference
    if args.model and spec.split(':')[0] == 'MRNet':
        kwargs = spec.partition(':')[2]
        spec = args.model + ((',' if ':' in args.model else ':') + kwargs if kwargs else '')
    warmup = str(max(1, args.iters // 10))
    factor_args = [a.replace('{warmup}', warmup).replace('{batch2}', str(2 * args.batch)) for a in factor_args]
    return [sys.executable, EQUAL_BUDGET, '--data', args.data, '--models', f'{name}={spec}', '--batch', str(args.batch),
            '--budget-iters', str(args.iters), '--eval-every-iters', str(args.eval_every_iters),
            '--output-dir', osp.join(args.output_dir, args.name), '--name', name] + extra + factor_args


def run_all(names, args, extra):
    """Run the factors, at most ``--parallel`` at once; returns {name: (return code or 'timeout', seconds)}."""
    folder = osp.join(args.output_dir, args.name)
    os.makedirs(folder, exist_ok=True)
    waiting, running, ended = list(names), {}, {}
    while waiting or running:
        while waiting and len(running) < args.parallel:
            name = waiting.pop(0)
            log = open(osp.join(folder, f'{name}.log'), 'w', encoding='utf-8')
            cmd = run_args(name, args, extra)
            log.write(' '.join(cmd) + '\n')
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            running[name] = (proc, log, time.monotonic())
            print(f'[{PROG}] started {name}', flush=True)
        time.sleep(0.5)
        for name, (proc, log, t0) in list(running.items()):
            status = proc.poll()
            if status is None and args.timeout and time.monotonic() - t0 > args.timeout:
                proc.kill()
                proc.wait()
                status = 'timeout'
            if status is not None:
                log.close()
                ended[name] = (status, time.monotonic() - t0)
                del running[name]
                print(f'[{PROG}] {name}: {status} after {ended[name][1]:.0f} s', flush=True)
    return ended


def _read(folder, name):
    path = osp.join(folder, f'{name}.json')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def summarise(names, ended, args):
    """The study's result dict: per factor its curve, the PSNR at the common iteration and the difference from
    'paper' (None where a run has no point there)."""
    folder = osp.join(args.output_dir, args.name)
    rows, machine, bicubic, settings = [], None, None, None
    for name in names:
        res = _read(folder, name)
        status, seconds = ended.get(name, (None, None))
        row = {'factor': name, 'changes': FACTORS[name][0], 'status': status, 'seconds': seconds,
               'complete': bool(res and res.get('complete')), 'curve': [], 'params': None, 'arch': None}
        if res and res['models']:
            model = res['models'][0]
            row.update(curve=model['curve'], params=model['params'], arch=model['arch'], kwargs=model['kwargs'],
                       iters_per_s=model['iters_per_s'])
            machine, bicubic, settings = res['machine'], res['bicubic'], res['settings']
        rows.append(row)
    reached = [max(p['iter'] for p in r['curve']) for r in rows if r['curve']]
    common = min(reached) if reached else None
    at = {}
    for row in rows:
        points = {p['iter']: p for p in row['curve']}
        at[row['factor']] = points.get(common)
        row['psnr_at_common'] = at[row['factor']]['psnr'] if at[row['factor']] else None
    ref = at.get('paper')
    for row in rows:
        row['delta_vs_paper'] = (round(row['psnr_at_common'] - ref['psnr'], 4)
                                 if ref and row['psnr_at_common'] is not None else None)
    return {'common_iter': common, 'iters': args.iters, 'parallel': args.parallel, 'machine': machine,
            'bicubic': bicubic, 'settings': settings, 'factors': rows}


def markdown(result):
    m, s = result['machine'] or {}, result['settings'] or {}
    lines = [f"# One factor at a time, x{s.get('scale', '?')}, {m.get('device_name', '?')}", '',
             f"- Date (UTC): {m.get('date_utc')}; torch {m.get('torch')}; CPU {m.get('cpu_model')} "
             f"({m.get('cpu_count')} cores)",
             f"- {result['iters']} iterations per run, {result['parallel']} runs at once (their it/s share one "
             f"device and are not comparable); base setting: batch {s.get('batch')} x {s.get('patch')}x"
             f"{s.get('patch')} LR patches, Adam, amp {s.get('amp')}, seed {s.get('seed')}",
             f"- Data: {len(s.get('train_photos') or [])} training photos ({s.get('tiles')} tiles), held out "
             f"{len(s.get('holdout_photos') or [])}; bicubic on the held-out photos: "
             f"{(result['bicubic'] or {}).get('psnr', float('nan')):.2f} dB",
             f"- Compared at iteration {result['common_iter']}, the last that every run reached.", '',
             '| Factor | Changes | Params | Held-out PSNR (dB) | vs paper (dB) | Run |', '|---|---|---|---|---|---|']
    for r in result['factors']:
        psnr = f"{r['psnr_at_common']:.2f}" if r['psnr_at_common'] is not None else '-'
        delta = f"{r['delta_vs_paper']:+.2f}" if r['delta_vs_paper'] is not None else '-'
        run = 'complete' if r['complete'] else f"cut ({r['status']})"
        params = f"{r['params']:,}" if r['params'] else '-'
        lines.append(f"| {r['factor']} | {r['changes']} | {params} | {psnr} | {delta} | {run} |")
    lines += ['', '## Learning curves (held-out PSNR, dB, at iterations)', '']
    for r in result['factors']:
        points = ', '.join(f"{p['iter']}: {p['psnr']:.2f}" for p in r['curve']) or 'no point'
        lines.append(f"- {r['factor']}: {points}")
    return '\n'.join(lines) + '\n'


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if '--' in argv:  # everything after -- goes to every equal_budget.py run
        cut = argv.index('--')
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if '--batch' in extra:
        raise SystemExit(f"{PROG}: give the base batch as {PROG}'s own --batch (the batch factor doubles it), "
                         "not after --")
    if not osp.isfile(osp.join(args.data, 'paths.json')):
        raise SystemExit(f'{PROG}: {args.data}: no paths.json; build it with mrnet prepare photos')
    ended = run_all(args.factors, args, extra)
    result = summarise(args.factors, ended, args)
    text = markdown(result)
    write_json(osp.join(args.output_dir, f'{args.name}.json'), result, indent=1)
    write_text(osp.join(args.output_dir, f'{args.name}.md'), text)
    print(text)
    failed = [n for n, (status, _) in ended.items() if status != 0]
    if failed:
        print(f'[{PROG}] runs that failed or were cut: {failed} (logs in {osp.join(args.output_dir, args.name)})',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
