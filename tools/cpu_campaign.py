"""The CPU training campaign: paper-size MRNet-S x2 trained in the background of every maintainer session, its
state carried in the repository from one session (and machine) to the next.

    python tools/cpu_campaign.py pilot     # the recipe pilot (once): candidate recipes, held-out dB per CPU-hour
    python tools/cpu_campaign.py start     # data set if missing, carried state restored, training at nice 19
    python tools/cpu_campaign.py status    # running or not, iterations, CPU-hours, the last curve row
    python tools/cpu_campaign.py pause     # SIGSTOP the training (before timing anything) ...
    python tools/cpu_campaign.py resume    # ... and SIGCONT it
    python tools/cpu_campaign.py stop      # newest complete state kept, carried state written: commit it
    python tools/cpu_campaign.py ship      # when the shipping rule holds: weights, card, provenance into the package

``start`` builds ``datasets/campaign_x2`` with ``mrnet prepare photos --source all`` (the Debian photos and
scikit-image's; the held-out photos are those of ``mrnet_arch/photo_data/holdout.txt``) when it is missing, then
starts a driver in the background (its own process group, nice 19). The driver trains in chunks with
``mrnet train -opt tools/campaign/train_MRNet_S_x2_campaign.yml``: each chunk ends at a multiple of
``save_checkpoint_freq``, set from the CPU kind so that a chunk takes about 8 minutes, where the model class
writes its atomic checkpoint and training state; a chunk still running after 10 minutes (a busy machine) gets
SIGUSR1, on which ``MRNetModel`` saves the iteration it finishes and exits with status 75. The next chunk continues
with ``--auto_resume``; ``stop`` sends SIGTERM, which saves the same way. After each
chunk the driver evaluates the newest weights on the held-out photos (fp32, Y channel, crop border 2, BasicSR's
metrics through the shared evaluation) beside bicubic and the demo weights, appends a row to
``benchmarks/results/campaign_x2/curve.tsv`` (iteration, CPU-seconds, wall-seconds, CPU kind, scores) and redraws
``curve.png``.

The carried state (``tools/campaign/state/``): the weights as fp16 safetensors (1.8 MB) and ``state.json``
(iterations, CPU-seconds and wall-seconds per CPU kind, the chunks). The optimizer state (7 MB) is not
carried: a session that starts from the carried weights restarts Adam with a linear warm-up of ``WARMUP_ITERS``.
A session that stops and starts again on the same machine resumes its own training state instead.

``ship`` puts the weights of the newest curve row into ``mrnet_arch/pretrained/`` (float32 safetensors, their
``PROVENANCE.md`` and ``MODEL_CARD.md``) once ``shipping_decision`` says the shipping rule holds.
"""
import argparse
import csv
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # the checkout's package, installed or not

from mrnet_arch.project import PRETRAINED_WEIGHTS  # noqa: E402

OPTION_FILE = osp.join(ROOT, 'tools', 'campaign', 'train_MRNet_S_x2_campaign.yml')
NAME = 'MRNet_S_x2_campaign'
DATA = osp.join(ROOT, 'datasets', 'campaign_x2')
EXP = osp.join(ROOT, 'experiments', NAME)
STATE_DIR = osp.join(ROOT, 'tools', 'campaign', 'state')
CARRIED_WEIGHTS = osp.join(STATE_DIR, 'weights_fp16.safetensors')
CARRIED_STATE = osp.join(STATE_DIR, 'state.json')
CURVE_DIR = osp.join(ROOT, 'benchmarks', 'results', 'campaign_x2')
CURVE = osp.join(CURVE_DIR, 'curve.tsv')
BASELINES = osp.join(CURVE_DIR, 'baselines.json')
# the driver's own files, beside the experiment (BasicSR moves an experiment folder aside when a run starts anew)
DRIVER_DIR = osp.join(ROOT, 'experiments', f'{NAME}_driver')
DRIVER_PID = osp.join(DRIVER_DIR, 'driver.pid')
DRIVER_LOG = osp.join(DRIVER_DIR, 'driver.log')
SESSION = osp.join(DRIVER_DIR, 'session.json')
DEMO_WEIGHTS = osp.join(ROOT, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')
CHUNK_SECONDS = 480  # target length of a chunk (the checkpoint interval) on an idle machine
CHUNK_MAX_SECONDS = 600  # a longer chunk (a busy machine) is asked to save where it is: SIGUSR1, exit status 75
# an idle 2-core Intel Xeon; an idle 2-core AMD EPYC (6.0-6.8 s a step in benchmarks/cpu_train_step.py)
SECONDS_PER_ITER = {'avx512': 4.0, 'other': 7.0}
WARMUP_ITERS = 20
GROUPS = {'skimage': ('chelsea', 'coffee')}  # the held-out photos scored apart; the rest are the Debian ones
CURVE_COLUMNS = ('iteration', 'cpu_seconds', 'wall_seconds', 'cpu_kind', 'date_utc', 'psnr_debian', 'ssim_debian',
                 'gain_debian', 'psnr_skimage', 'ssim_skimage', 'gain_skimage')
PRETRAINED = osp.join(ROOT, 'mrnet_arch', 'pretrained')  # where ``ship`` writes the weights, card and provenance
PLATEAU_CPU_SECONDS = 4 * 3600  # the shipping rule's window: the last 4 CPU-hours of training ...
PLATEAU_DB = 0.05  # ... that added less than this on both held-out sets
GROUP_NAMES = {'skimage': 'chelsea+coffee', 'debian': 'Debian held-out'}


def log(message):
    print(f"[campaign {time.strftime('%H:%M:%S')}] {message}", flush=True)


def cpu_kind():
    """The CPU model and the features that matter here, e.g. 'AMD EPYC (avx2)'."""
    from mrnet_arch.measurement.machine import cpu_features, cpu_model
    return f"{cpu_model()} ({', '.join(cpu_features()) or 'no AVX2'})"


def read_json(path, default=None):
    if not osp.isfile(path):
        return default
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def carried_state():
    """The carried state.json (a fresh campaign's when there is none)."""
    return read_json(CARRIED_STATE, {'iterations': 0, 'cpu_seconds': {}, 'wall_seconds': {}, 'chunks': 0,
                                     'weights_sha256': None})


# ------------------------------------------------------------------------------------------------ data
def ensure_data():
    """``datasets/campaign_x2`` (built with ``mrnet prepare photos --source all`` when missing); its paths.json."""
    paths = read_json(osp.join(DATA, 'paths.json'))
    if paths is None or paths.get('source') != 'all':
        log(f'building the data set in {DATA} (mrnet prepare photos --source all)')
        start = time.time()
        subprocess.run(['nice', '-n', '19', sys.executable, '-m', 'mrnet_arch', 'prepare', 'photos', '--source',
                        'all', '--scale', '2', '--output', DATA], check=True, cwd=ROOT)
        log(f'data set built in {time.time() - start:.0f} s')
        paths = read_json(osp.join(DATA, 'paths.json'))
    return paths


# ------------------------------------------------------------------------------------------------ evaluation
def holdout_pairs():
    """The held-out (GT, LR) pairs by group: 'skimage' (chelsea, coffee) and 'debian' (the others)."""
    from mrnet_arch.measurement.evaluation import find_pairs
    pairs = find_pairs(osp.join(DATA, 'holdout'), 2)
    groups = {'skimage': [], 'debian': []}
    for gt, lr in pairs:
        stem = osp.splitext(osp.basename(gt))[0]
        groups['skimage' if stem in GROUPS['skimage'] else 'debian'].append((gt, lr))
    return groups


def score(net):
    """Mean Y-PSNR/SSIM of ``net`` (fp32, whole images or tiles within the memory budget) per held-out group."""
    import torch

    from mrnet_arch.inference.upscaler import Upscaler
    from mrnet_arch.measurement.evaluation import evaluate
    torch.set_num_threads(os.cpu_count() or 1)
    up = Upscaler(net.eval(), None, 'cpu', 'fp32', scale=2)
    with torch.no_grad():
        return {group: evaluate(up, pairs, 2) for group, pairs in holdout_pairs().items()}


def baselines():
    """Held-out scores of bicubic (basicsr's MATLAB-compatible imresize) and of the demo weights, computed once."""
    cached = read_json(BASELINES)
    if cached is not None:
        return cached
    from mrnet_arch.archs.bicubic_arch import Bicubic
    from mrnet_arch.storage.files import sha256_of, write_json
    from mrnet_arch.storage.weights import load_model
    demo, _ = load_model(DEMO_WEIGHTS)
    result = {'bicubic': score(Bicubic(upscale=2)), 'demo_weights': score(demo),
              'demo_weights_sha256': sha256_of(DEMO_WEIGHTS)}
    os.makedirs(CURVE_DIR, exist_ok=True)
    write_json(BASELINES, result, indent=1)
    return result


def append_curve_row(iteration, weights, totals):
    """Score ``weights``, append a curve row and redraw the plot; returns the row."""
    import datetime

    from mrnet_arch.storage.weights import load_model
    net, _ = load_model(weights)
    scores, base = score(net), baselines()
    row = {'iteration': iteration, 'cpu_seconds': round(sum(totals['cpu_seconds'].values()), 1),
           'wall_seconds': round(sum(totals['wall_seconds'].values()), 1), 'cpu_kind': cpu_kind(),
           'date_utc': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S')}
    for group in ('debian', 'skimage'):
        row[f'psnr_{group}'] = round(scores[group]['psnr'], 4)
        row[f'ssim_{group}'] = round(scores[group]['ssim'], 4)
        row[f'gain_{group}'] = round(scores[group]['psnr'] - base['bicubic'][group]['psnr'], 4)
    os.makedirs(CURVE_DIR, exist_ok=True)
    new = not osp.isfile(CURVE)
    with open(CURVE, 'a', encoding='utf-8', newline='') as f:
        writer = csv.DictWriter(f, CURVE_COLUMNS, delimiter='\t', lineterminator='\n')
        if new:
            writer.writeheader()
        writer.writerow(row)
    plot_curve()
    return row


def read_curve():
    if not osp.isfile(CURVE):
        return []
    with open(CURVE, encoding='utf-8', newline='') as f:
        return list(csv.DictReader(f, delimiter='\t'))


def shipped_iteration():
    """The iteration of the weights ``ship`` wrote into the package (their provenance), or None."""
    from mrnet_arch.publishing.provenance import read_provenance
    weights = osp.join(PRETRAINED, PRETRAINED_WEIGHTS)
    return read_provenance(weights, 2).get('iterations') if osp.isfile(weights) else None


def plot_curve():
    """``curve.png``: held-out gain over bicubic against training CPU-hours, the demo weights' gain for scale."""
    try:
        import matplotlib
    except ImportError:
        log('matplotlib is missing (pip install "mrnet_arch[bench]"): curve.png not redrawn')
        return
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows, base = read_curve(), baselines()
    fig, ax = plt.subplots(figsize=(7, 4))
    hours = [float(r['cpu_seconds']) / 3600 for r in rows]
    for group, colour in (('debian', 'tab:blue'), ('skimage', 'tab:orange')):
        ax.plot(hours, [float(r[f'gain_{group}']) for r in rows], 'o-', color=colour,
                label=f'MRNet-S campaign, held-out {group} photos')
        demo = demo_gain(base, group)
        bar = gain_bar(base, group)
        ax.axhline(demo, color=colour, ls=':', label=f'demo weights ({demo:+.2f} dB)')
        ax.axhline(bar, color=colour, ls='--', lw=0.8, label=f'shipping bar ({bar:+.2f} dB)')
    ax.axhline(0, color='gray', lw=0.8)
    shipped = shipped_iteration()
    at = [h for h, r in zip(hours, rows) if int(r['iteration']) == shipped]
    if at:
        ax.axvline(at[0], color='gray', ls='-.', lw=0.8, label=f'shipped: iteration {shipped}')
    ax.set_xlabel('training CPU-hours (all CPU kinds)')
    ax.set_ylabel('Y-PSNR gain over bicubic (dB)')
    ax.set_title('MRNet-S x2 CPU campaign: held-out gain over bicubic')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(osp.join(CURVE_DIR, 'curve.png'), dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ the pilot
# Candidate recipes for the paper-size MRNet-S x2, batch 16 x 48x48 LR: (model spec, equal_budget.py arguments).
PILOT = {
    'paper': ('MRNet', ['--lr', '1e-4']),
    'skip_bicubic_lr1e-4': ('MRNet:global_skip=bicubic', ['--lr', '1e-4']),
    'skip_bicubic_lr2e-4': ('MRNet:global_skip=bicubic', ['--lr', '2e-4', '--warmup-iter', '{warmup}']),
    'skip_bicubic_lr5e-4': ('MRNet:global_skip=bicubic', ['--lr', '5e-4', '--warmup-iter', '{warmup}']),
}


def pilot(args):
    """Train each candidate recipe for ``--iters`` iterations from the same seed and data order with
    ``benchmarks/equal_budget.py`` (held-out: chelsea and coffee, scored every ``--iters // 2``), one after the
    other at nice 19, each run's CPU-seconds measured; writes ``pilot.json`` and ``pilot.md`` in the curve folder."""
    import datetime

    from mrnet_arch.storage.files import write_json, write_text
    paths = ensure_data()
    folder = osp.join(ROOT, 'datasets', 'campaign_pilot')  # the training LMDBs, held-out chelsea and coffee
    for sub in ('GTmod12', 'LRbicx2'):
        os.makedirs(osp.join(folder, 'holdout', sub), exist_ok=True)
        for name in GROUPS['skimage']:
            link = osp.join(folder, 'holdout', sub, f'{name}.png')
            if not osp.lexists(link):
                os.symlink(osp.join(paths['holdout'], sub, f'{name}.png'), link)
    write_json(osp.join(folder, 'paths.json'), dict(paths, holdout=osp.join(folder, 'holdout'),
                                                    holdout_photos=list(GROUPS['skimage'])), indent=1)
    out_dir = osp.join(CURVE_DIR, 'pilot')
    rows = []
    for name in args.recipes:
        spec, extra = PILOT[name]
        extra = [a.format(warmup=max(1, args.iters // 10)) for a in extra]
        cmd = ['nice', '-n', '19', sys.executable, osp.join(ROOT, 'benchmarks', 'equal_budget.py'), '--data', folder,
               '--models', f'{name}={spec}', '--budget-iters', str(args.iters), '--eval-every-iters',
               str(args.iters // 2), '--device', 'cpu', '--workers', '1', '--output-dir', out_dir, '--name', name,
               *extra]
        log(' '.join(cmd[3:]))
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f'cpu_campaign pilot: {name} failed; see {out_dir}')
        result = read_json(osp.join(out_dir, f'{name}.json'))
        curve, bicubic = result['models'][0]['curve'], result['bicubic']['psnr']
        cpu_s = usage.ru_utime + usage.ru_stime
        rows.append({'recipe': name, 'spec': spec, 'args': extra, 'iters': curve[-1]['iter'],
                     'cpu_seconds': round(cpu_s, 1), 'wall_seconds': round(time.time() - start, 1),
                     'psnr': [round(c['psnr'], 3) for c in curve], 'gain_end': round(curve[-1]['psnr'] - bicubic, 3),
                     'db_per_cpu_hour': round((curve[-1]['psnr'] - bicubic) / (cpu_s / 3600), 3)})
        log(f"{name}: {rows[-1]['psnr']} dB (bicubic {bicubic:.2f}), {cpu_s:.0f} CPU-s")
    report = {'date_utc': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S'),
              'cpu_kind': cpu_kind(), 'bicubic_psnr': bicubic, 'iters': args.iters, 'recipes': rows,
              'load_average_end': list(os.getloadavg())}
    write_json(osp.join(CURVE_DIR, 'pilot.json'), report, indent=1)
    lines = [f"# Recipe pilot: paper-size MRNet-S x2, {args.iters} iterations each, batch 16 x 48x48 LR", '',
             f"- {report['date_utc']} UTC, {report['cpu_kind']}, CPU only, nice 19 (the machine was shared with "
             f"other work: CPU-seconds, not wall time, are the budget); load average at the end "
             f"{report['load_average_end'][0]:.1f}",
             f"- Data: the campaign's training LMDBs; held out chelsea and coffee (bicubic {bicubic:.2f} dB Y-PSNR)",
             '', '| recipe | model | arguments | held-out Y-PSNR at 0 / mid / end (dB) | gain over bicubic at the '
             'end | CPU-s | gain per CPU-hour (dB) |', '|---|---|---|---|---|---|---|']
    lines += [f"| {r['recipe']} | {r['spec']} | {' '.join(r['args'])} | {' / '.join(f'{p:.2f}' for p in r['psnr'])} "
              f"| {r['gain_end']:+.2f} | {r['cpu_seconds']:.0f} | {r['db_per_cpu_hour']:+.2f} |" for r in rows]
    write_text(osp.join(CURVE_DIR, 'pilot.md'), '\n'.join(lines) + '\n')
    print('\n'.join(lines))


# ------------------------------------------------------------------------------------------------ the experiment
def newest_state():
    """The iteration of the newest complete training state of the session's experiment (0: none)."""
    folder = osp.join(EXP, 'training_states')
    iters = [int(m.group(1)) for f in (os.listdir(folder) if osp.isdir(folder) else ())
             if (m := re.fullmatch(r'(\d+)\.state', f))]
    return max(iters, default=0)


def prune(keep=2):
    """Remove all but the newest ``keep`` training states and numbered weights of the experiment."""
    for sub, pattern in (('training_states', r'(\d+)\.state'), ('models', r'net_g_(\d+)\.pth')):
        folder = osp.join(EXP, sub)
        found = sorted((int(m.group(1)), f) for f in (os.listdir(folder) if osp.isdir(folder) else ())
                       if (m := re.fullmatch(pattern, f)))
        for _, f in found[:-keep]:
            os.remove(osp.join(folder, f))


def session_matches(carried):
    """Whether the experiment on disk continues from the carried state (then it resumes with its optimizer)."""
    session = read_json(SESSION)
    return (session is not None and newest_state() > 0
            and carried.get('weights_sha256') in (session.get('carried_sha256'), session.get('packed_sha256')))


def chunk_iters():
    from mrnet_arch.measurement.machine import cpu_flags
    per_iter = SECONDS_PER_ITER['avx512' if 'avx512f' in cpu_flags() else 'other']
    return max(5, round(CHUNK_SECONDS / per_iter))


def run_chunk(session, stop):
    """One ``mrnet train`` chunk to the next multiple of the checkpoint frequency; returns (rc, CPU-s, wall-s)."""
    freq, resume = session['checkpoint_freq'], newest_state() > 0
    end = (newest_state() // freq + 1) * freq
    args = [sys.executable, '-m', 'mrnet_arch', 'train', '-opt', OPTION_FILE, '--force_yml',
            f'train:total_iter={end}', f'logger:save_checkpoint_freq={freq}']
    if resume:
        args.insert(-3, '--auto_resume')
    elif session.get('pretrain'):
        args += [f"path:pretrain_network_g={session['pretrain']}", f'train:warmup_iter={WARMUP_ITERS}']
    log(f"chunk: iterations {newest_state()} -> {end} ({'resume' if resume else 'start'})")
    start = time.time()
    # this checkout's code and project root, wherever an editable install of mrnet_arch points
    env = dict(os.environ, MRNET_ROOT=ROOT,
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get('PYTHONPATH')) if p))
    with open(DRIVER_LOG + '.train', 'a') as err:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env=env)
    asked = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if stop['now'] and not stop.get('sent'):
            proc.send_signal(signal.SIGTERM)  # MRNetModel finishes the iteration, saves it and exits with 75
            stop['sent'] = True
        elif not asked and time.time() - start > CHUNK_MAX_SECONDS:
            proc.send_signal(signal.SIGUSR1)  # the same: a checkpoint at least every CHUNK_MAX_SECONDS
            asked = True
        time.sleep(2)
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    return rc, usage.ru_utime + usage.ru_stime, time.time() - start


def drive():
    """The background loop: chunks, each followed by the held-out evaluation, until SIGTERM."""
    stop = {'now': False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    session = read_json(SESSION)
    kind = cpu_kind()
    while not stop['now']:
        before = newest_state()
        rc, cpu_s, wall_s = run_chunk(session, stop)
        after = newest_state()
        session['cpu_seconds'] = session.get('cpu_seconds', 0) + cpu_s
        session['wall_seconds'] = session.get('wall_seconds', 0) + wall_s
        session['chunks'] = session.get('chunks', 0) + 1
        write_session(session)
        if after == before:
            if stop['now']:
                break
            log(f'chunk ended with rc {rc} and no new training state: see {DRIVER_LOG}.train; stopping')
            break
        totals = session_totals(session, kind)
        row = append_curve_row(session['base_iteration'] + after, osp.join(EXP, 'models', f'net_g_{after}.pth'),
                               totals)
        log(f"iteration {row['iteration']}: gain over bicubic {row['gain_debian']:+.3f} dB (Debian held-out), "
            f"{row['gain_skimage']:+.3f} dB (chelsea, coffee); {row['cpu_seconds'] / 3600:.2f} CPU-hours")
        prune()


def write_session(session):
    from mrnet_arch.storage.files import write_json
    write_json(SESSION, session, indent=1)


def packed_counts(session):
    """What of this session the carried state already holds: its CPU- and wall-seconds and chunks at the last
    ``stop`` (zero before the first). A session that goes on after a ``stop`` (same machine, same experiment)
    must add only what came after it."""
    packed = session.get('packed')
    if packed is None and session.get('packed_sha256'):  # packed before these counts were kept: the carried entry
        last = (carried_state().get('sessions') or [{}])[-1]
        packed = {'cpu_seconds': last.get('cpu_seconds', 0), 'wall_seconds': last.get('wall_seconds', 0),
                  'chunks': carried_state().get('chunks', 0)}
    return packed or {'cpu_seconds': 0, 'wall_seconds': 0, 'chunks': 0}


def session_totals(session, kind):
    """The carried totals plus this session's CPU- and wall-seconds since its last ``stop``, under this CPU kind."""
    carried, packed = carried_state(), packed_counts(session)
    totals = {'cpu_seconds': dict(carried['cpu_seconds']), 'wall_seconds': dict(carried['wall_seconds'])}
    for key in ('cpu_seconds', 'wall_seconds'):
        totals[key][kind] = totals[key].get(kind, 0) + session.get(key, 0) - packed[key]
    return totals


# ------------------------------------------------------------------------------------------------ shipping
class ShipError(ValueError):
    """``ship`` cannot go on: the message says what is missing or wrong (nothing has been written)."""


def demo_gain(base, group):
    """The demo weights' held-out gain over bicubic on ``group`` ('debian' or 'skimage'), from baselines.json."""
    return base['demo_weights'][group]['psnr'] - base['bicubic'][group]['psnr']


def gain_bar(base, group):
    """The shipping rule's gain bar on ``group``: twice the demo weights' gain, and at least 0 dB."""
    return 2 * max(demo_gain(base, group), 0.0)


def shipping_decision(rows, base):
    """Whether the campaign's newest weights are ready to ship, by the project's rule (whichever holds first).

    1. The gain bar: on both held-out sets (chelsea+coffee, and the Debian photos) the newest row's gain over
       bicubic is at least twice the demo weights' gain there. Where the demo weights' gain is negative (on the
       Debian held-out photos they score below bicubic), twice it would be a bar below bicubic; the bar is
       ``2 * max(demo gain, 0)``, so there any gain of at least 0 dB meets it.
    2. The plateau: the last ``PLATEAU_CPU_SECONDS`` (4 CPU-hours) of training added less than ``PLATEAU_DB``
       (0.05 dB) on both sets: the newest row's gain minus that of the newest row at least 4 CPU-hours older
       (``cpu_seconds`` is cumulative over all sessions and CPU kinds). Not met while no row is that much older.

    Args:
        rows (list[dict]): The curve rows as ``read_curve`` returns them (values as strings), oldest first.
        base (dict): baselines.json's dict: ``bicubic`` and ``demo_weights``, each ``{group: {'psnr': ...}}``.

    Returns:
        tuple[bool, str]: Ready or not, and the reason in one line with the figures that decided it.
    """
    if not rows:
        return False, f'no curve rows yet ({osp.relpath(CURVE, ROOT)} is empty or missing)'
    groups = ('skimage', 'debian')
    newest = rows[-1]
    gains = {g: float(newest[f'gain_{g}']) for g in groups}
    bars = {g: gain_bar(base, g) for g in groups}
    at = f"iteration {int(newest['iteration'])} ({float(newest['cpu_seconds']) / 3600:.2f} CPU-hours)"
    bar_text = ', '.join(f'{GROUP_NAMES[g]} {gains[g]:+.3f} dB against {bars[g]:+.3f} dB '
                         f'(2 x max(demo {demo_gain(base, g):+.3f}, 0))' for g in groups)
    if all(gains[g] >= bars[g] for g in groups):
        return True, f'{at}: the gain bar is met: {bar_text}'
    cut = float(newest['cpu_seconds']) - PLATEAU_CPU_SECONDS
    older = [r for r in rows[:-1] if float(r['cpu_seconds']) <= cut]
    window = f'{PLATEAU_CPU_SECONDS / 3600:g} CPU-hours'
    if not older:
        first = float(rows[0]['cpu_seconds'])
        return False, (f'{at}: not ready: gain bar not met ({bar_text}); the curve spans '
                       f"{(float(newest['cpu_seconds']) - first) / 3600:.2f} CPU-hours, under the plateau's {window}")
    ref = older[-1]
    added = {g: gains[g] - float(ref[f'gain_{g}']) for g in groups}
    added_text = ', '.join(f'{added[g]:+.3f} dB on {GROUP_NAMES[g]}' for g in groups)
    since = (f"the last {(float(newest['cpu_seconds']) - float(ref['cpu_seconds'])) / 3600:.2f} CPU-hours "
             f"(since iteration {int(ref['iteration'])}) added {added_text}")
    if all(added[g] < PLATEAU_DB for g in groups):
        return True, f'{at}: plateau: {since}, under {PLATEAU_DB} dB on both'
    return False, f'{at}: not ready: gain bar not met ({bar_text}); {since}, not under {PLATEAU_DB} dB on both'


def shown(path):
    """``path`` relative to the project root when inside it (for the provenance), else as it is."""
    rel = osp.relpath(path, ROOT)
    return path if rel.startswith('..') else rel


def shipped_source(iteration, row_cpu_seconds):
    """The weights of curve iteration ``iteration`` and the CPU-seconds per CPU kind that trained them.

    The session's fp32 checkpoint ``experiments/<NAME>/models/net_g_<N>.pth`` when it is there (N counts from the
    session's start), else the carried fp16 weights when the carried state is at that iteration (and its sha256 is
    state.json's). The session may have trained on past the checkpoint: what its totals hold beyond the curve
    row's ``row_cpu_seconds`` is taken off the session's CPU kind, so that the kinds add up to the row.

    Returns:
        tuple[str, str, dict]: The file, its description for the provenance, ``{cpu kind: CPU-seconds}``.

    Raises:
        ShipError: Neither holds the weights of that iteration.
    """
    from mrnet_arch.storage.files import sha256_of
    session, carried = read_json(SESSION), carried_state()
    tried = []
    if session is not None:
        local = iteration - session['base_iteration']
        fp32 = osp.join(EXP, 'models', f'net_g_{local}.pth')
        if local > 0 and osp.isfile(fp32):
            kind = session['cpu_kind']
            totals = session_totals(session, kind)['cpu_seconds']
            beyond = sum(totals.values()) - row_cpu_seconds
            if beyond > 0:
                totals[kind] = max(totals[kind] - beyond, 0.0)
            return fp32, f'`{shown(fp32)}`: fp32, the checkpoint the curve row scored', totals
        tried.append(shown(fp32))
    if osp.isfile(CARRIED_WEIGHTS) and carried['iterations'] == iteration:
        if sha256_of(CARRIED_WEIGHTS) != carried.get('weights_sha256'):
            raise ShipError(f'{CARRIED_WEIGHTS}: its sha256 is not the one {CARRIED_STATE} records; '
                            'the carried state is inconsistent')
        return (CARRIED_WEIGHTS, f'`{shown(CARRIED_WEIGHTS)}`: the carried fp16 weights (the curve row scored '
                'them in fp32 before they were halved), widened to fp32', dict(carried['cpu_seconds']))
    tried.append(f"{shown(CARRIED_WEIGHTS)} (carried state at iteration {carried['iterations']})")
    raise ShipError(f'no weights of iteration {iteration}, the newest curve row: tried {", ".join(tried)}')


def dataset_text():
    """The provenance's ``dataset`` and ``dataset size`` rows, from the data set's ``paths.json`` when present."""
    paths = read_json(osp.join(DATA, 'paths.json'))
    if paths is None:
        return ('the Debian photos and scikit-image\'s, built by `mrnet prepare photos --source all` (no '
                f'{shown(osp.join(DATA, "paths.json"))} here to count them)'), 'not counted here'
    return (f"CampaignPhotos: the Debian photos and scikit-image's (`mrnet prepare photos --source all`), "
            f"{len(paths['train_photos'])} training photos cut into {paths['tiles']:,} tiles of 192 px; the "
            f"{len(paths['holdout_photos'])} held-out photos of `mrnet_arch/photo_data/holdout.txt` never trained "
            'on'), f"{len(paths['train_photos'])} images"


def provenance_text(row, base, reason, source, cpu_seconds, sha, opt, config, params):
    """``PROVENANCE.md`` of the shipped weights (the rows ``mrnet_arch.publishing.provenance`` reads, and more)."""
    import datetime
    data, train = opt['datasets']['train'], opt['train']
    iteration = int(row['iteration'])
    dataset, size = dataset_text()
    per_kind = '; '.join(f'{kind}: {s / 3600:.2f}' for kind, s in sorted(cpu_seconds.items()))
    scores = ['| held-out set | photos | these weights: Y-PSNR / SSIM | gain over bicubic | bicubic: Y-PSNR / SSIM '
              '| demo weights: Y-PSNR / SSIM (gain) |', '|---|---|---|---|---|---|']
    for group in ('skimage', 'debian'):
        b, d = base['bicubic'][group], base['demo_weights'][group]
        scores.append(f"| {GROUP_NAMES[group]} | {b.get('images', '?')} | {float(row[f'psnr_{group}']):.4f} dB / "
                      f"{float(row[f'ssim_{group}']):.4f} | {float(row[f'gain_{group}']):+.4f} dB | "
                      f"{b['psnr']:.4f} dB / {b['ssim']:.4f} | {d['psnr']:.4f} dB / {d['ssim']:.4f} "
                      f"({demo_gain(base, group):+.4f} dB) |")
    lr, loss = train['optim_g']['lr'], train['pixel_opt']['type']
    skip = config.get('global_skip')
    table = [
        ('model', f"{config['type']} x{config['upscale']}, num_feat {config['num_feat']}, num_block "
                  f"{config['num_block']}, T = {config['num_recursion']}, global skip {skip} ({params:,} parameters)"),
        ('architecture', f'the paper\'s MRNet plus a bicubic global skip (`global_skip: {skip}`): not the paper\'s '
                         'architecture'),
        ('recipe', f'`{shown(OPTION_FILE)}`: bicubic global skip, Adam lr {lr} constant after a {WARMUP_ITERS}-'
                   f'iteration linear warm-up at each restart from the carried weights, {loss}'),
        ('training', f"{iteration} iterations, batch {data['batch_size_per_gpu']}, LR patch "
                     f"{data['gt_size'] // opt['scale']}, Adam lr {lr}, {loss}, bicubic global skip"),
        ('dataset', dataset),
        ('dataset size', size),
        ('CPU-hours per CPU kind', per_kind),
        ('CPU-hours in all', f"{float(row['cpu_seconds']) / 3600:.2f} (the curve row's, all sessions and CPU kinds)"),
        ('weights from', source),
        ('shipping rule', reason),
        ('held-out scores', f"fp32, Y channel, crop border 2, BasicSR's metrics; the curve row of {row['date_utc']} "
                            f"UTC on {row['cpu_kind']} (table below)"),
        ("photos' licences", 'Debian photos: mixed (GPL-2+, BSD-2-clause, CC-BY(-SA), CC0, public domain), per photo '
                             'in `mrnet_arch/photo_data/debian_manifest.tsv`, see `mrnet_arch/photo_data/'
                             "DEBIAN_PHOTOS.md`; scikit-image's photos: scikit-image's licence (BSD-3-Clause) and "
                             'the credits in its `skimage/data/README.txt`'),
        ('file', f'`{PRETRAINED_WEIGHTS}`: float32 safetensors, the arch config in the `mrnet_config` metadata'),
        ('sha256', f'`{sha}`'),
        ('licence', "MIT (the plugin's `LICENSE`); the training photos keep their own licences (above)"),
        ('written', f'{datetime.date.today().isoformat()} by `tools/cpu_campaign.py ship`'),
    ]
    lines = [f'# Provenance of {PRETRAINED_WEIGHTS}', '',
             'MRNet-S x2 trained by the CPU campaign (`tools/cpu_campaign.py`, `tools/campaign/README.md`) with a '
             "**bicubic global skip**: an addition to the paper's architecture. The network learns the residual to "
             "a bicubic upscale of its input, which the paper's MRNet does not have; the parameter count is the "
             "paper's. Shipped by `python tools/cpu_campaign.py ship`.", '', '| | |', '|---|---|']
    lines += [f'| {key} | {value} |' for key, value in table]
    lines += ['', 'Held-out scores (`benchmarks/results/campaign_x2/curve.tsv`, `baselines.json`):', ''] + scores
    return '\n'.join(lines) + '\n'


def card_text(weights, row, base, opt_text, folder):
    """``MODEL_CARD.md``: ``make_card`` with the held-out scores as results and the option file at the shipped
    iteration, plus the architecture change in words and the comparison with bicubic and the demo weights."""
    from mrnet_arch.publishing.model_card import make_card
    from mrnet_arch.storage.files import write_json, write_text
    results = osp.join(folder, 'holdout_results.json')
    write_json(results, {f"{GROUP_NAMES[g]} ({base['bicubic'][g].get('images', '?')} photos)":
                         {'psnr': float(row[f'psnr_{g}']), 'ssim': float(row[f'ssim_{g}'])}
                         for g in ('skimage', 'debian')})
    options = osp.join(folder, osp.basename(OPTION_FILE))
    write_text(options, re.sub(r'(?m)^(\s*total_iter:\s*)\d+.*$',
                               rf"\g<1>{int(row['iteration'])}  # the iterations of the shipped weights", opt_text))
    card = make_card(weights, results=results, options=options)
    note = ('The training recipe changes the paper\'s architecture: a **bicubic global skip** (`global_skip: '
            'bicubic`) adds a bicubic upscale of the input to the output, so the network learns the residual to '
            'bicubic. The paper\'s MRNet has no such skip; the parameter count is the same. Trained on CPUs by '
            '`tools/cpu_campaign.py` (see `PROVENANCE.md` beside the weights).\n\n')
    compare = ['## Held-out comparison', '', 'Y-PSNR gain over bicubic (fp32, Y channel, crop border 2) on the '
               'held-out photos, never trained on:', '', '| held-out set | these weights | demo weights |',
               '|---|---|---|']
    compare += [f"| {GROUP_NAMES[g]} | {float(row[f'gain_{g}']):+.4f} dB | {demo_gain(base, g):+.4f} dB |"
                for g in ('skimage', 'debian')]
    card = card.replace('## Architecture', note + '## Architecture', 1)
    return card.replace('## Weights', '\n'.join(compare) + '\n\n## Weights', 1)


def ship(args):
    """Write the newest curve row's weights, their provenance and card into ``PRETRAINED`` (see ``main``)."""
    import tempfile

    import yaml

    from mrnet_arch.measurement.complexity import count_params
    from mrnet_arch.storage.files import sha256_of, write_bytes, write_text
    from mrnet_arch.storage.weights import WeightsError, load_model, save_safetensors
    base, rows = read_json(BASELINES), read_curve()
    if base is None:
        raise ShipError(f'{BASELINES} is missing: run start once (it scores bicubic and the demo weights)')
    ready, reason = shipping_decision(rows, base)
    if not ready and not args.force:
        raise ShipError(f'{reason} (--force ships anyway)')
    if not ready:
        reason = f'shipped with --force before the rule held: {reason}'
    row = rows[-1]
    source, described, cpu_seconds = shipped_source(int(row['iteration']), float(row['cpu_seconds']))
    with open(OPTION_FILE, encoding='utf-8') as f:
        opt_text = f.read()
    opt = yaml.safe_load(opt_text)
    network = opt['network_g']
    try:
        net, config = load_model(source, overrides=network)
    except WeightsError as err:
        raise ShipError(str(err)) from err
    net = net.float()
    params = count_params(net)
    with tempfile.TemporaryDirectory() as folder:
        weights = osp.join(folder, PRETRAINED_WEIGHTS)
        save_safetensors(net, config, weights)
        sha = sha256_of(weights)
        provenance = provenance_text(row, base, reason, described, cpu_seconds, sha, opt, config, params)
        card = card_text(weights, row, base, opt_text, folder)
        with open(weights, 'rb') as f:
            data = f.read()
    os.makedirs(PRETRAINED, exist_ok=True)
    write_bytes(osp.join(PRETRAINED, PRETRAINED_WEIGHTS), data)
    write_text(osp.join(PRETRAINED, 'PROVENANCE.md'), provenance)
    write_text(osp.join(PRETRAINED, 'MODEL_CARD.md'), card)
    log(f"shipped iteration {row['iteration']} into {shown(PRETRAINED)}/ ({PRETRAINED_WEIGHTS}, PROVENANCE.md, "
        f'MODEL_CARD.md): {reason}')


# ------------------------------------------------------------------------------------------------ commands
def driver_pid():
    try:
        with open(DRIVER_PID, encoding='utf-8') as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start(args):
    if driver_pid():
        sys.exit(f'cpu_campaign: already running (driver pid {driver_pid()}); see {DRIVER_LOG}')
    ensure_data()
    carried = carried_state()
    os.makedirs(DRIVER_DIR, exist_ok=True)
    if not session_matches(carried):
        if osp.isdir(EXP):  # another run than the carried state's: kept, out of the way
            aside = f"{EXP}_archived_{time.strftime('%Y%m%d_%H%M%S')}"
            os.rename(EXP, aside)
            log(f'{EXP} held another run than the carried state: moved to {aside}')
        pretrain = None
        if osp.isfile(CARRIED_WEIGHTS):
            pretrain = CARRIED_WEIGHTS
        write_session({'base_iteration': carried['iterations'], 'carried_sha256': carried.get('weights_sha256'),
                       'pretrain': pretrain, 'checkpoint_freq': chunk_iters(), 'cpu_kind': cpu_kind()})
        log(f"new session from iteration {carried['iterations']}" + (' (carried weights)' if pretrain else ''))
    baselines()
    if args.foreground:
        drive()
        return
    with open(DRIVER_LOG, 'a') as out:
        proc = subprocess.Popen(['nice', '-n', '19', sys.executable, osp.abspath(__file__), 'drive'], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    with open(DRIVER_PID, 'w', encoding='utf-8') as f:
        f.write(str(proc.pid))
    log(f'started: driver pid {proc.pid} at nice 19, log {DRIVER_LOG}')


def signal_group(sig):
    pid = driver_pid()
    if pid is None:
        sys.exit('cpu_campaign: not running')
    os.killpg(os.getpgid(pid), sig)
    return pid


def stop(args):
    pid = driver_pid()
    if pid is not None:
        os.killpg(os.getpgid(pid), signal.SIGCONT)  # a paused campaign must run to stop
        os.kill(pid, signal.SIGTERM)
        log(f'stopping the driver (pid {pid}); the current chunk ends at its next complete state or is cut')
        deadline = time.time() + args.timeout
        while driver_pid() and time.time() < deadline:
            time.sleep(2)
        if driver_pid():
            os.killpg(os.getpgid(pid), signal.SIGKILL)  # the newest complete state is kept (atomic writes)
            log('killed after the timeout')
    pack()


def pack():
    """Write the newest complete state of the session into ``tools/campaign/state/`` (fp16 weights, state.json)."""
    import torch
    from safetensors.torch import save_file

    from mrnet_arch.storage.files import sha256_of, write_json
    session, after = read_json(SESSION), newest_state()
    if session is None or after == 0:
        log('nothing to carry: no training state in this session')
        return
    carried = carried_state()
    weights = torch.load(osp.join(EXP, 'models', f'net_g_{after}.pth'), map_location='cpu', weights_only=True)
    params = {k: v.half().contiguous() if v.is_floating_point() else v for k, v in weights['params'].items()}
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(OPTION_FILE, encoding='utf-8') as f:
        import yaml
        network = yaml.safe_load(f)['network_g']
    save_file(params, CARRIED_WEIGHTS + '.tmp', metadata={'format': 'pt', 'mrnet_config': json.dumps(network)})
    os.replace(CARRIED_WEIGHTS + '.tmp', CARRIED_WEIGHTS)
    totals, packed = session_totals(session, session['cpu_kind']), packed_counts(session)
    sha = sha256_of(CARRIED_WEIGHTS)
    entry = {'cpu_kind': session['cpu_kind'], 'from_iteration': session['base_iteration'],
             'to_iteration': session['base_iteration'] + after, 'cpu_seconds': round(session['cpu_seconds'], 1),
             'wall_seconds': round(session['wall_seconds'], 1)}
    earlier = carried.get('sessions', [])
    if session.get('packed_sha256'):  # this session was carried before: its entry is the last one, brought up to date
        earlier = earlier[:-1]
    state = {'iterations': session['base_iteration'] + after, 'cpu_seconds': totals['cpu_seconds'],
             'wall_seconds': totals['wall_seconds'],
             'chunks': carried.get('chunks', 0) + session.get('chunks', 0) - packed['chunks'],
             'sessions': earlier + [entry],
             'weights_sha256': sha, 'option_file': osp.relpath(OPTION_FILE, ROOT), 'warmup_iters': WARMUP_ITERS}
    write_json(CARRIED_STATE, state, indent=1)
    session.update(packed_sha256=sha, packed_iteration=after,
                   packed={key: session.get(key, 0) for key in ('cpu_seconds', 'wall_seconds', 'chunks')})
    write_session(session)
    log(f"carried state written: iteration {state['iterations']}, {sum(state['cpu_seconds'].values()) / 3600:.2f} "
        f'CPU-hours, {osp.relpath(STATE_DIR, ROOT)}/ (commit it)')


def status(args):
    pid, carried, rows = driver_pid(), carried_state(), read_curve()
    session = read_json(SESSION) or {}
    print(f"driver: {f'running (pid {pid})' if pid else 'not running'}")
    print(f"carried: iteration {carried['iterations']}, {sum(carried['cpu_seconds'].values()) / 3600:.2f} CPU-hours")
    if session:
        print(f"this session: from iteration {session['base_iteration']}, newest state at "
              f"{session['base_iteration'] + newest_state()}, checkpoint every {session['checkpoint_freq']} "
              f"iterations, {session.get('cpu_seconds', 0) / 3600:.2f} CPU-hours")
    if rows:
        print('last curve row: ' + ', '.join(f'{k} {v}' for k, v in rows[-1].items()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='command', required=True)
    s = sub.add_parser('start', help='build the data if missing, restore the carried state, train in the background')
    s.add_argument('--foreground', action='store_true', help='run the driver in this process')
    t = sub.add_parser('stop', help='stop training and write the carried state')
    t.add_argument('--timeout', type=float, default=900, help='seconds to wait for the chunk to end (default 900)')
    q = sub.add_parser('pilot', help='train each candidate recipe briefly and compare held-out dB per CPU-hour')
    q.add_argument('--recipes', nargs='+', default=list(PILOT), choices=list(PILOT))
    q.add_argument('--iters', type=int, default=30)
    sub.add_parser('status')
    sub.add_parser('pause', help='SIGSTOP the training (before timing benchmarks)')
    sub.add_parser('resume', help='SIGCONT it')
    h = sub.add_parser('ship', help='when the shipping rule holds: the newest weights, their provenance and card into '
                       'mrnet_arch/pretrained/')
    h.add_argument('--force', action='store_true',
                   help='ship even when the rule does not hold (the provenance says so)')
    sub.add_parser('drive', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.command == 'start':
        start(args)
    elif args.command == 'stop':
        stop(args)
    elif args.command == 'status':
        status(args)
    elif args.command == 'pilot':
        pilot(args)
    elif args.command == 'ship':
        try:
            ship(args)
        except ShipError as err:
            print(f'cpu_campaign ship: {err}', file=sys.stderr)
            sys.exit(2)
    elif args.command == 'pause':
        log(f'paused (driver pid {signal_group(signal.SIGSTOP)})')
    elif args.command == 'resume':
        log(f'resumed (driver pid {signal_group(signal.SIGCONT)})')
    else:
        drive()


if __name__ == '__main__':
    main()
