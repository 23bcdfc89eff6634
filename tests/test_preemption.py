"""SIGTERM and SIGUSR1 during ``mrnet train``: finish the iteration, save a complete state, exit with status 75.

Runs are real subprocesses (``tests/launch_train.py`` sends the signal to its own process at the start of a chosen
iteration, or the test sends it from outside). With three images and batch 1, an epoch is three iterations, so the
stops fall in the middle of an epoch and at its end; ``--auto_resume`` must then go on from the saved iteration and
end bit-equal to an uninterrupted run (sampler position, random crops and flips, Adam, LR milestones).
"""
import os
import signal
import subprocess
import sys
from os import path as osp

import torch
from test_killsafe import LAUNCHER, _assert_same_weights, _complete, _resumed_from, _temp_files

import _tiny
from mrnet_arch.models.mrnet_model import REQUEUE_EXIT_CODE


def _options(tmp_path, name, save_freq):
    train = _tiny.make_pairs(str(tmp_path / 'data'), n=3, size=40)
    opt = _tiny.train_options(name, train, total_iter=14, save_freq=save_freq, gt_size=32, batch=1,
                              milestones=(4, 8, 11))
    return _tiny.write_yml(opt, str(tmp_path / f'{name}.yml'))


def _launch(yml, root, *hooks):
    proc = subprocess.run([sys.executable, LAUNCHER, *hooks, '--', '-opt', yml, '--auto_resume'], cwd=root,
                          env=_tiny.env(root), capture_output=True, text=True, timeout=400)
    return proc.returncode, proc.stdout + proc.stderr


def test_signals_save_the_iteration_exit_75_and_resume_bit_equal(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    yml = _options(tmp_path, 'stopped', save_freq=100)  # no regular save before the end: only the stops save
    exp = str(root / 'experiments' / 'stopped')

    rc, log = _launch(yml, str(root), '--signal-at', '5', 'TERM')  # iteration 5: the middle of epoch 1
    assert rc == REQUEUE_EXIT_CODE == 75, log[-3000:]
    assert 'SIGTERM received: finishing the current iteration' in log
    assert 'stopped by SIGTERM after iteration 5: checkpoint and training state saved' in log
    assert 'Traceback' not in log
    assert _complete(exp) == [5] and not _temp_files(exp)
    state = torch.load(osp.join(exp, 'training_states', '5.state'), weights_only=False)
    assert (state['epoch'], state['iter']) == (1, 5)

    rc, log = _launch(yml, str(root), '--signal-at', '9', 'USR1')  # iteration 9: the last of epoch 2
    assert rc == 75, log[-3000:]
    assert _resumed_from(log) == 5
    assert 'stopped by SIGUSR1 after iteration 9' in log
    assert _complete(exp) == [5, 9]

    rc, log = _launch(yml, str(root))
    assert rc == 0, log[-3000:]
    assert _resumed_from(log) == 9 and 'End of training' in log

    reference = _options(tmp_path, 'reference', save_freq=100)
    ref = _tiny.run_train(reference, str(root))
    assert ref.returncode == 0, ref.stderr[-3000:]
    _assert_same_weights(osp.join(exp, 'models', 'net_g_latest.pth'),
                         str(root / 'experiments' / 'reference' / 'models' / 'net_g_latest.pth'))


def test_without_the_sampler_position_the_resumed_run_would_differ(tmp_path):
    """The comparison above can fail: resumed at the start of the saved epoch (BasicSR's rule), as a state whose
    epoch is one less says, the run trains other samples and ends with other weights."""
    root = tmp_path / 'root'
    root.mkdir()
    yml = _options(tmp_path, 'stopped', save_freq=100)
    exp = str(root / 'experiments' / 'stopped')
    rc, log = _launch(yml, str(root), '--signal-at', '5', 'TERM')
    assert rc == 75, log[-3000:]
    path = osp.join(exp, 'training_states', '5.state')
    state = torch.load(path, weights_only=False)
    state['epoch'] = 0  # does not fit iteration 5 (3 batches per epoch): BasicSR's rule, from the epoch's start
    torch.save(state, path)
    rc, log = _launch(yml, str(root))
    assert rc == 0, log[-3000:]
    ref = _tiny.run_train(_options(tmp_path, 'reference', save_freq=100), str(root))
    assert ref.returncode == 0, ref.stderr[-3000:]
    a = torch.load(osp.join(exp, 'models', 'net_g_latest.pth'), weights_only=True)['params']
    b = torch.load(root / 'experiments' / 'reference' / 'models' / 'net_g_latest.pth', weights_only=True)['params']
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_sigterm_from_outside_stops_mrnet_train_cleanly(tmp_path):
    """As a campaign driver or a scheduler does it: SIGTERM to the running process, at no chosen iteration."""
    root = tmp_path / 'root'
    root.mkdir()
    yml = _options(tmp_path, 'outside', save_freq=100)
    proc = subprocess.Popen([sys.executable, LAUNCHER, '--announce-iterations', '--', '-opt', yml], cwd=root,
                            env=_tiny.env(str(root)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith('[launch_train] iteration 3'):
            os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 75, ''.join(lines)[-3000:]
    log = ''.join(lines)
    stopped = [int(line.split('after iteration ')[1].split(':')[0]) for line in lines if 'stopped by SIGTERM' in line]
    assert len(stopped) == 1 and 3 <= stopped[0] < 14, log[-3000:]
    exp = str(root / 'experiments' / 'outside')
    assert _complete(exp) == stopped and 'Traceback' not in log
    assert not osp.exists(osp.join(root, 'experiments', '.outside.lock'))  # the run lock is released


def test_the_slurm_job_script_passes_the_signal_on_and_requeues(tmp_path):
    """``tools/slurm_train.sbatch`` run by bash as Slurm runs it: SIGUSR1 to the script (``--signal=B:USR1``) reaches
    the training, which saves and exits 75, and the script calls ``scontrol requeue <job id>`` (a stand-in records
    the call; Slurm itself is not installed here)."""
    root = tmp_path / 'root'
    bin_dir = tmp_path / 'bin'
    for folder in (root, bin_dir):
        folder.mkdir()
    shim = f'#!/bin/sh\nshift\nexec {sys.executable} {LAUNCHER} --announce-iterations -- "$@"\n'  # drops 'train'
    (bin_dir / 'mrnet').write_text(shim)
    (bin_dir / 'scontrol').write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/scontrol.txt\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    yml = _options(tmp_path, 'slurm', save_freq=100)
    env = _tiny.env(str(root), SLURM_JOB_ID='4242')
    env['PATH'] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    job = subprocess.Popen(['bash', osp.join(_tiny.REPO, 'tools', 'slurm_train.sbatch'), yml], cwd=root, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in job.stdout:
        lines.append(line)
        if line.startswith('[launch_train] iteration 3'):
            os.kill(job.pid, signal.SIGUSR1)
    assert job.wait(timeout=120) == REQUEUE_EXIT_CODE, ''.join(lines)[-3000:]
    assert any('stopped by SIGUSR1 after iteration' in line for line in lines)
    assert (tmp_path / 'scontrol.txt').read_text().split() == ['requeue', '4242']
    assert _complete(str(root / 'experiments' / 'slurm'))
