"""Checkpoint files of MRNetModel: atomic writes, reading a state dict without running code from the file, and
the random number generators' states kept in a training state.

The atomic write and the full-disk error are a private copy of those of ``mrnet_arch/storage/files.py`` (the
plugin's writer of every other file), kept here because this file must not import the plugin;
``tests/test_disk_full.py`` checks that both name a full disk in the same words.

This file imports only torch, numpy and the standard library (safetensors when a ``.safetensors`` file is read). The
model file imports it with a relative import, so both work in the plugin and when copied together into a
BasicSR checkout's ``basicsr/models/``.
"""
import errno
import numpy as np
import os
import pickle
import random
import shutil
import stat
import tempfile
import torch
import zipfile
from collections import OrderedDict

_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_MIB = 1 << 20


class DiskFullError(OSError):
    """A write failed because the file system holding it is full (or the user's quota is used up).

    ``errno`` is ``ENOSPC``; ``str()`` is a one-line message naming the folder, the file, the bytes needed where
    known and the bytes free. ``folder``, ``needed`` (or None) and ``free`` hold them.
    """

    def __init__(self, folder, name, needed=None, free=None, what='nothing complete was lost'):
        self.folder, self.needed, self.free = folder, needed, free
        need = f'; it needs about {_size_text(needed)}' if needed else ''
        has = f', {_size_text(free)} free' if free is not None else ''
        super().__init__(
            errno.ENOSPC, f'{folder}: the disk is full (No space left on device) while writing {name}'
            f'{need}{has}. The unfinished file was removed and {what}: free some space, then run '
            'again.')

    def __str__(self):
        return self.strerror

    def __reduce__(self):  # picklable (errors cross process pools)
        return (_disk_full_error, (self.strerror, self.folder, self.needed, self.free))


def _disk_full_error(message, folder, needed, free):
    err = DiskFullError(folder, '', needed, free)
    err.strerror = message
    return err


def _size_text(n):
    """``n`` bytes as text: '12.3 MiB (12901234 bytes)'."""
    for unit, factor in (('GiB', 1 << 30), ('MiB', _MIB), ('KiB', 1 << 10)):
        if n >= factor:
            return f'{n / factor:.1f} {unit} ({n} bytes)'
    return f'{n} bytes'


def _free_bytes(folder):
    """Bytes free for this user on the file system of ``folder`` (its nearest existing parent), or None."""
    folder = os.path.abspath(folder)
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _is_disk_full(err, folder, missing=None, kinds=(OSError, RuntimeError)):
    """Whether the failed write ``err`` in ``folder`` failed for want of space.

    True when ``ENOSPC``/``EDQUOT`` is in the exception's chain (torch's serializer turns a failed write into
    ``RuntimeError: [enforce fail at inline_container.cc] ... unexpected pos``, the ``OSError`` in its context),
    or, for an error of ``kinds`` without one, when the file system has less room left than the ``missing`` bytes
    of the write (1 MiB when unknown).

    Args:
        err (BaseException): The error of the write.
        folder (str): Where the file was written.
        missing (int | None): Bytes the write still needed, when known.
        kinds (tuple[type]): Errors that a full disk may raise without ``ENOSPC`` (LMDB: ``lmdb.Error``,
            'Input/output error'). Default: OSError, RuntimeError (torch's serializer).

    Returns:
        bool
    """
    seen, chained = set(), err
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        if isinstance(chained, OSError) and chained.errno in _DISK_FULL_ERRNOS:
            return True
        chained = chained.__cause__ or chained.__context__
    if not isinstance(err, kinds):
        return False
    free = _free_bytes(folder)
    return free is not None and free < max(missing or 0, _MIB)


def _atomic_write(path, write, binary=True, size=None):
    """Write ``path`` through a temporary file in the same folder, fsync, then ``os.replace``: a kill or a
    full disk at any moment leaves either the old file or the complete new one, never a cut-short file.

    Args:
        path (str): The file to write.
        write (callable): ``write(f)`` writes the contents to the open file object ``f``.
        binary (bool): Open the temporary file in binary mode (else text, UTF-8). Default: True.
        size (int | None): The size of the contents in bytes, when known (for the message of a full disk).

    Raises:
        DiskFullError: The file system is full (``ENOSPC``/``EDQUOT``, or torch's serialization error with no
            room left); the temporary file is removed, an existing ``path`` is unchanged.
    """
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=folder)
    except OSError as err:
        if err.errno in _DISK_FULL_ERRNOS:
            raise DiskFullError(folder, name, size, _free_bytes(folder), _kept(path)) from err
        raise
    try:
        with (os.fdopen(fd, 'wb') if binary else os.fdopen(fd, 'w', encoding='utf-8')) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException as err:
        written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
        full = isinstance(err, Exception) and _is_disk_full(err, folder, size - written if size else None)
        if os.path.exists(tmp):
            os.remove(tmp)
        if full and not isinstance(err, DiskFullError):
            raise DiskFullError(folder, name, size, _free_bytes(folder), _kept(path)) from err
        raise


def _file_mode(path):
    """The permission bits of the written file: those of the file it replaces, else what ``open`` gives a new file
    (0o666 less the umask) rather than the 0o600 of ``tempfile.mkstemp``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _kept(path):
    return f'the previous {os.path.basename(path)} is unchanged' if os.path.exists(path) else 'nothing was lost'


def _tensor_bytes(obj):
    """Bytes of the tensors in ``obj`` (nested dicts, lists and tuples), about the size ``torch.save`` writes."""
    if torch.is_tensor(obj):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def atomic_torch_save(obj, path):
    """``torch.save`` through ``_atomic_write``."""
    _atomic_write(path, lambda f: torch.save(obj, f), size=_tensor_bytes(obj) + 4096)


class WeightsError(ValueError):
    """A weight file that cannot be read, is not MRNet weights, or does not fit what was asked."""


def _unwrap(obj, path, prefer_ema):
    """The state dict inside a loaded checkpoint (``params_ema``/``params``/``state_dict`` or plain)."""
    if not isinstance(obj, dict):
        raise WeightsError(f'{path}: expected a state dict or a BasicSR checkpoint dict, found {type(obj).__name__}')
    order = ('params_ema', 'params') if prefer_ema else ('params', 'params_ema')
    for key in order + ('state_dict', ):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if obj and all(k.startswith('module.') for k in obj):
        obj = OrderedDict((k[len('module.'):], v) for k, v in obj.items())
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise WeightsError(f'{path}: not a state dict: entries {not_tensors[:5]} are not tensors '
                           f'(top-level keys: {list(obj)[:10]})')
    return obj


NOT_TORCH = 'not a PyTorch checkpoint (truncated or another format)'
_PICKLE_START = b'\x80'  # a legacy (pre-1.6) torch file is a pickle: protocol 2+ opens with 0x80
_ZIP_START = b'PK\x03\x04'


def torch_file_problem(path):
    """Why ``path`` cannot be a file written by ``torch.save``, from its first bytes and zip directory, or None.

    torch.save writes a zip archive whose entries lie in one folder and include ``<folder>/data.pkl`` (or, before
    torch 1.6, a pickle). A file cut short loses the zip directory at its end; a text file or another archive
    has neither. ``torch.load`` reports these as ``OSError: [Errno 22] Invalid argument``, ``KeyError`` or an
    ``inline_container.cc`` error that name no file.

    Args:
        path (str): The file.

    Returns:
        str | None: The problem, starting with ``NOT_TORCH``; None when the file looks like a torch file.
    """
    with open(path, 'rb') as f:
        start = f.read(4)
    if not start:
        return f'{NOT_TORCH}: the file is empty'
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            return f'{NOT_TORCH}: a damaged zip archive ({err})'
        if not any(n.endswith('/data.pkl') and n.count('/') == 1 for n in names):
            return f'{NOT_TORCH}: a zip archive without the data.pkl of torch.save (holds {", ".join(names[:5])})'
        return None
    if start == _ZIP_START:
        return f'{NOT_TORCH}: a zip archive without its end (cut short while copied or written?)'
    if start[:1] == _PICKLE_START:
        return None
    return f'{NOT_TORCH}: it starts with {start!r}, not a zip archive or a pickle'


def load_torch_file(path, map_location='cpu', what='weights', safe_globals=()):
    """``torch.load(path, weights_only=True)`` with errors that name the file.

    Args:
        path (str): A file written by ``torch.save``.
        map_location: As for ``torch.load``. Default: 'cpu'.
        what (str): What the file should hold, for messages ('weights', 'training state').
        safe_globals (iterable): Classes the file may hold besides tensors and plain containers.

    Returns:
        The loaded object.

    Raises:
        WeightsError: The file is missing, is not a torch file (truncated, text, another archive), holds
            objects that could run code, or does not load.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f'{what} file not found: {path}')
    problem = torch_file_problem(path)
    if problem:
        raise WeightsError(f'{path}: {problem}')
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if 'weights_only' not in str(err) and 'Unsupported global' not in str(err):
            raise WeightsError(f'{path}: {NOT_TORCH}: {err}') from err
        raise WeightsError(
            f'refusing to load {path}: it holds Python objects other than tensors, which could run code when '
            f'unpickled (loaded with weights_only=True). Only load it if you trust it, then re-save its state '
            f'dict. Details: {err}') from err
    except Exception as err:  # corrupt files raise OSError, RuntimeError, EOFError, KeyError, ...
        raise WeightsError(f'{path}: {NOT_TORCH}: {type(err).__name__}: {err}') from err


def read_state_dict(path, prefer_ema=True):
    """Read a state dict without running any code from the file.

    Args:
        path (str): A ``.safetensors`` file, a BasicSR checkpoint or a plain state dict (``.pth``).
        prefer_ema (bool): Use ``params_ema`` over ``params`` when a checkpoint has both. Default: True.

    Returns:
        tuple[dict, dict]: The state dict (tensors on the CPU) and the file's metadata (safetensors
        metadata; ``{}`` for pickle files).

    Raises:
        WeightsError: The file is missing, not a torch or safetensors file (truncated or another format),
            holds code or objects other than tensors, or is no state dict.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f'weight file not found: {path}')
    if path.lower().endswith('.safetensors'):
        from safetensors import safe_open
        try:
            with safe_open(path, framework='pt', device='cpu') as f:
                metadata = dict(f.metadata() or {})
                state_dict = OrderedDict((k, f.get_tensor(k)) for k in f.keys())
        except Exception as err:  # safetensors raises its own error types
            raise WeightsError(f'{path}: cannot read as safetensors: {err}') from err
        return state_dict, metadata
    return _unwrap(load_torch_file(path), path, prefer_ema), {}


def rng_state():
    """The states of Python's, NumPy's and torch's (CPU and CUDA) random number generators, as tensors and
    plain containers that ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()
    state = {
        'python': random.getstate(),
        'numpy': (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        'torch': torch.get_rng_state()
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore what ``rng_state`` returned (its tensors may have been loaded onto a GPU)."""
    random.setstate(state['python'])
    name, key, *rest = state['numpy']
    np.random.set_state((name, key.cpu().numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state['torch'].cpu())
    if state.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])
