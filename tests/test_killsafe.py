"""SIGKILL a real ``mrnet train`` at random moments and resume it with ``--auto_resume``.

Checkpoints are saved every iteration, so many kills land in a save. Each resume must start from the last
iteration whose checkpoint and training state are both complete, and the run must end with exactly the
weights of an uninterrupted run: the setup is deterministic (one training image, the patch is the whole
image, no flips), so that only holds if network, Adam state and LR scheduler are all restored.
"""
import glob
import os
import random
import re
import signal
import subprocess
import sys
import time
from os import path as osp

import torch

import _tiny

TOTAL_ITER = 150
KILLS = 4


def _last_complete(exp):
    """The newest iteration whose ``.state`` and ``net_g_<iter>.pth`` both load, or None."""
    best = None
    for state in glob.glob(osp.join(exp, 'training_states', '*.state')):
        it = int(osp.basename(state)[:-6])
        try:
            torch.load(state, map_location='cpu', weights_only=True)
            torch.load(osp.join(exp, 'models', f'net_g_{it}.pth'), map_location='cpu', weights_only=True)
        except Exception:  # noqa: BLE001  (cut short or missing)
            continue
        best = it if best is None else max(best, it)
    return best


def _wait_for(log, text, proc, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        if text in open(log, errors='replace').read():
            return
        assert proc.poll() is None, open(log, errors='replace').read()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f'{text!r} not printed within {timeout}s')


def _resumed_from(text):
    found = re.findall(r'Resuming training from epoch: \d+, iter: (\d+)\.', text)
    return int(found[-1]) if found else None


def test_sigkill_at_random_moments_then_auto_resume(tmp_path):
    seed = int(os.environ.get('MRNET_KILL_SEED', time.time()))
    rng = random.Random(seed)
    print(f'kill delays seeded with MRNET_KILL_SEED={seed}')
    root, cfg, elsewhere = tmp_path / 'root', tmp_path / 'cfg', tmp_path / 'elsewhere'
    for folder in (root, cfg, elsewhere):
        folder.mkdir()
    train = _tiny.make_pairs(str(tmp_path / 'data'), n=1, size=32)
    common = dict(total_iter=TOTAL_ITER, gt_size=32, batch=1, milestones=(50, 100), augment=False)
    _tiny.write_yml(_tiny.train_options('killed', train, save_freq=1, **common), str(cfg / 'killed.yml'))
    _tiny.write_yml(_tiny.train_options('reference', train, save_freq=TOTAL_ITER, **common), str(cfg / 'ref.yml'))
    exp = str(root / 'experiments' / 'killed')
    command = [sys.executable, '-m', 'mrnet_arch', 'train', '-opt', '../cfg/killed.yml', '--auto_resume']

    complete, temp_files_seen = None, 0
    for k in range(KILLS + 1):
        log = str(tmp_path / f'run{k}.log')
        with open(log, 'w') as out:
            proc = subprocess.Popen(command, cwd=str(elsewhere), env=_tiny.env(str(root)), stdout=out,
                                    stderr=subprocess.STDOUT)
        try:
            if k < KILLS:
                _wait_for(log, 'Start training from', proc)
                time.sleep(rng.uniform(0.05, 1.0))
                proc.send_signal(signal.SIGKILL)
            rc = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = open(log, errors='replace').read()
        assert _resumed_from(text) == complete, text[-3000:]
        if k < KILLS:
            assert rc == -signal.SIGKILL, f'run {k} ended before the kill:\n{text[-2000:]}'
            temp_files_seen += len(glob.glob(osp.join(exp, '*', '.*.tmp')))
            now = _last_complete(exp)
            assert now is not None and (complete is None or now >= complete)
            complete = now
        else:
            assert rc == 0, text[-3000:]
            assert 'End of training' in text
    print(f'kills left {temp_files_seen} unfinished checkpoint file(s) behind; last resume from {complete}')

    assert complete < TOTAL_ITER
    assert _last_complete(exp) == TOTAL_ITER
    assert not glob.glob(osp.join(exp, '*', '.*.tmp'))  # removed on resume, none left by the last run

    ref = _tiny.run_train(str(cfg / 'ref.yml'), str(root))
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = torch.load(osp.join(exp, 'models', 'net_g_latest.pth'), weights_only=True)['params']
    uninterrupted = torch.load(
        str(root / 'experiments' / 'reference' / 'models' / 'net_g_latest.pth'), weights_only=True)['params']
    assert killed.keys() == uninterrupted.keys()
    differing = [k for k in killed if not torch.equal(killed[k], uninterrupted[k])]
    assert not differing, f'weights differ from an uninterrupted run: {differing}'
