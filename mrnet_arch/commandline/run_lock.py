"""One live training run per experiment: an OS file lock (``fcntl.flock``) on ``experiments/.<name>.lock``,
beside the experiment folder, taken before BasicSR archives (renames) or creates that folder.

The kernel drops the lock when the process ends in any way, SIGKILL included, so no stale lock is ever left:
after a kill the lock file stays behind, but it locks nothing. A run that ends (normally or by an exception)
removes its lock file. The file holds the process id of the run that holds it, for the message a second run
gets.
"""
import fcntl
import os
from os import path as osp

from mrnet_arch.errors import RunError


class RunLockError(RunError, RuntimeError):
    """Another live process trains the same experiment."""


class RunLock:
    """A held lock: the open file descriptor and the lock file's path."""

    def __init__(self, fd, path):
        self.fd, self.path = fd, path


def lock_path(experiments_root):
    """The lock file of the experiment folder ``experiments_root`` (``<parent>/.<name>.lock``)."""
    root = osp.abspath(experiments_root)
    return osp.join(osp.dirname(root), f'.{osp.basename(root)}.lock')


def holder_pid(experiments_root):
    """The process id written in the lock file, or None (no file, or no number in it)."""
    try:
        with open(lock_path(experiments_root), encoding='utf-8') as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def acquire(experiments_root, name=None):
    """Take the lock of an experiment without waiting.

    Args:
        experiments_root (str): The experiment folder (``opt['path']['experiments_root']``); its parent is
            created if missing, the folder itself is not touched.
        name (str | None): The experiment name, for the message. Default: the folder's name.

    Returns:
        RunLock: The held lock; ``release`` it (or let the process end).

    Raises:
        RunLockError: Another process holds the lock; the message names the experiment and its process id.
    """
    path = lock_path(experiments_root)
    os.makedirs(osp.dirname(path), exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = holder_pid(experiments_root)
            raise RunLockError(
                f'experiment {name or osp.basename(experiments_root)} is being trained by another process '
                f'(pid {pid if pid is not None else "unknown"}, lock {path}). Nothing was changed. Wait for it to '
                'end, stop it, or give this run another name.') from None
        held = os.fstat(fd)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the holder before us removed the file between our open and our lock: take the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
    return RunLock(fd, path)


def release(lock):
    """Remove the lock file and release a lock that ``acquire`` returned."""
    if lock is None:
        return
    try:
        os.unlink(lock.path)
    except FileNotFoundError:
        pass
    os.close(lock.fd)
