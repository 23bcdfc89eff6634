"""One live run per experiment: a second ``mrnet train`` of an experiment that a live process trains stops
before anything is renamed, naming the experiment and the process id; SIGKILL leaves no stale lock."""
import os
import signal
import subprocess
import sys
import time
from os import path as osp

import pytest

import _tiny
from mrnet_arch.commandline import run_lock

LAUNCHER = osp.join(_tiny.REPO, 'tests', 'launch_train.py')
HOLD = ('import sys, time; from mrnet_arch.commandline import run_lock; run_lock.acquire(sys.argv[1], "held"); '
        'print("locked", flush=True); time.sleep(120)')


def _wait_for(path, text, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if osp.isfile(path) and text in open(path, encoding='utf-8', errors='replace').read():
            return
        if proc.poll() is not None:
            raise AssertionError(f'the process ended ({proc.returncode}) before "{text}": '
                                 f'{open(path, encoding="utf-8", errors="replace").read()[-3000:]}')
        time.sleep(0.2)
    raise AssertionError(f'no "{text}" in {path} after {timeout} s')


def _kill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def test_a_second_process_is_refused_and_sigkill_leaves_no_stale_lock(tmp_path):
    exp = str(tmp_path / 'experiments' / 'held')
    out = tmp_path / 'holder.out'
    with open(out, 'w') as log:
        holder = subprocess.Popen([sys.executable, '-c', HOLD, exp], stdout=log, stderr=subprocess.STDOUT,
                                  env=_tiny.env(str(tmp_path)))
    try:
        _wait_for(str(out), 'locked', holder)
        with pytest.raises(run_lock.RunLockError, match=f'experiment held is being trained by another process '
                           f'\\(pid {holder.pid}, lock .*\\.held\\.lock\\)'):
            run_lock.acquire(exp, 'held')
    finally:
        _kill(holder)
    assert osp.isfile(run_lock.lock_path(exp)) and not osp.exists(exp)  # the file stays, the folder is untouched
    lock = run_lock.acquire(exp, 'held')  # the kernel released the killed holder's lock
    try:
        assert run_lock.holder_pid(exp) == os.getpid()
    finally:
        run_lock.release(lock)
    assert not osp.exists(run_lock.lock_path(exp))  # a run that ends removes its lock file


def test_second_mrnet_train_stops_before_renaming_and_auto_resume_continues_after_sigkill(tmp_path):
    root = str(tmp_path)
    train = _tiny.make_pairs(osp.join(root, 'data', 'train'), n=4, size=40)
    opt = _tiny.train_options('locked', train, None, total_iter=6, save_freq=2)
    yml = _tiny.write_yml(opt, osp.join(root, 'locked.yml'))
    exp = osp.join(root, 'experiments', 'locked')
    out = tmp_path / 'first.out'
    with open(out, 'w') as log:
        first = subprocess.Popen([sys.executable, LAUNCHER, '--pause-after-save', '2', '--', '-opt', yml], cwd=root,
                                 env=_tiny.env(root), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(str(out), '[launch_train] paused at 2', first)
        before = sorted(os.listdir(exp))
        for args in ([], ['--auto_resume']):
            second = _tiny.run_train(yml, root, *args, timeout=200)
            assert second.returncode == 1, second.stdout + second.stderr
            assert f'experiment locked is being trained by another process (pid {first.pid}' in second.stderr
            assert 'Traceback' not in second.stderr
            assert sorted(os.listdir(osp.join(root, 'experiments'))) == ['.locked.lock', 'locked']
            assert sorted(os.listdir(exp)) == before
        assert first.poll() is None  # the first run was not disturbed
    finally:
        if first.poll() is None:
            _kill(first)
    resumed = _tiny.run_train(yml, root, '--auto_resume', timeout=300)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert 'Resuming training from epoch' in resumed.stdout + resumed.stderr
    assert osp.isfile(osp.join(exp, 'models', 'net_g_6.pth'))
    assert os.listdir(osp.join(root, 'experiments')) == ['locked']  # nothing archived, the lock file removed
