"""Files: atomic writes, a full disk named in one line, JSON objects and checksums.

Every write of the plugin goes through ``atomic_write`` (temporary file in the same folder, fsync, ``os.replace``):
a kill at any moment leaves the old file or the complete new one. A full disk raises ``DiskFullError`` (an
``OSError`` with ``errno.ENOSPC``, and a ``RunError``) naming the folder and the bytes needed; the temporary file is
removed.

The BasicSR drop-in ``models/mrnet_checkpoint.py`` writes checkpoints the same way with its own private copy of
these few functions, because a drop-in imports only torch and basicsr; ``tests/test_disk_full.py`` checks that both
name a full disk in the same words.
"""
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile

from mrnet_arch.errors import RunError

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_MIB = 1 << 20


class DiskFullError(RunError, OSError):
    """A write failed because the file system holding it is full (or the user's quota is used up): a failed run
    (exit status 1).

    ``errno`` is ``ENOSPC``; ``str()`` is a one-line message naming the folder, the file, the bytes needed where
    known and the bytes free. ``folder``, ``needed`` (or None) and ``free`` hold them.
    """

    def __init__(self, folder, name, needed=None, free=None, what='nothing complete was lost'):
        self.folder, self.needed, self.free = folder, needed, free
        need = f'; it needs about {size_text(needed)}' if needed else ''
        has = f', {size_text(free)} free' if free is not None else ''
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


def size_text(n):
    """``n`` bytes as text: '12.3 MiB (12901234 bytes)'."""
    for unit, factor in (('GiB', 1 << 30), ('MiB', _MIB), ('KiB', 1 << 10)):
        if n >= factor:
            return f'{n / factor:.1f} {unit} ({n} bytes)'
    return f'{n} bytes'


def free_bytes(folder):
    """Bytes free for this user on the file system of ``folder`` (its nearest existing parent), or None."""
    folder = os.path.abspath(folder)
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def is_disk_full(err, folder, missing=None, kinds=(OSError, RuntimeError)):
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
        if isinstance(chained, OSError) and chained.errno in DISK_FULL_ERRNOS:
            return True
        chained = chained.__cause__ or chained.__context__
    if not isinstance(err, kinds):
        return False
    free = free_bytes(folder)
    return free is not None and free < max(missing or 0, _MIB)


def atomic_write(path, write, binary=True, size=None):
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
        if err.errno in DISK_FULL_ERRNOS:
            raise DiskFullError(folder, name, size, free_bytes(folder), _kept(path)) from err
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
        full = isinstance(err, Exception) and is_disk_full(err, folder, size - written if size else None)
        if os.path.exists(tmp):
            os.remove(tmp)
        if full and not isinstance(err, DiskFullError):
            raise DiskFullError(folder, name, size, free_bytes(folder), _kept(path)) from err
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


def sha256_of(path, chunk=1 << 20):
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(data), size=len(data))


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    atomic_write(path, lambda f: f.write(text), binary=False, size=len(text.encode('utf-8')))


def write_json(path, data, **kwargs):
    """Write ``data`` as JSON to ``path`` atomically.

    Args:
        path (str): Output file.
        data: JSON-serialisable data.
        **kwargs: Passed to ``json.dump`` (e.g. ``indent``, ``default``).
    """
    write_text(path, json.dumps(data, **kwargs))


def json_object(text, source, error=ValueError):
    """Parse JSON text that must hold an object (a dict).

    Args:
        text (str): The JSON text.
        source (str): What the text is, for error messages (e.g. ``'--results r.json'``).
        error (type): The exception class raised on a problem. Default: ValueError.

    Returns:
        dict: The object.

    Raises:
        error: Invalid JSON, or not an object.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f'{source} is not valid JSON: {err}') from err
    if not isinstance(data, dict):
        raise error(f'{source} must be a JSON object, found {type(data).__name__}')
    return data
