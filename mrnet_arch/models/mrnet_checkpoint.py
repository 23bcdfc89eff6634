"""Checkpoint files of MRNetModel: atomic writes, reading a state dict without running code from the file, and
the random number generators' states kept in a training state.

This file imports only torch, numpy and the standard library (safetensors when a ``.safetensors`` file is read). The
model file imports it with a relative import, so both work in the plugin and when copied together into a
BasicSR checkout's ``basicsr/models/``.
"""
import numpy as np
import os
import pickle
import random
import tempfile
import torch
import zipfile
from collections import OrderedDict


def atomic_write(path, write, binary=True):
    """Write ``path`` through a temporary file in the same folder, fsync, then ``os.replace``: a kill or a
    full disk at any moment leaves either the old file or the complete new one, never a cut-short file.

    Args:
        path (str): The file to write.
        write (callable): ``write(f)`` writes the contents to the open file object ``f``.
        binary (bool): Open the temporary file in binary mode (else text, UTF-8). Default: True.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with (os.fdopen(fd, 'wb') if binary else os.fdopen(fd, 'w', encoding='utf-8')) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_torch_save(obj, path):
    """``torch.save`` through ``atomic_write``."""
    atomic_write(path, lambda f: torch.save(obj, f))


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
