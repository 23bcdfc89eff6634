"""Files: atomic writes, JSON objects and checksums.

Every write goes through ``mrnet_arch.models.mrnet_checkpoint.atomic_write`` (temporary file in the same folder,
fsync, ``os.replace``): a kill at any moment leaves the old file or the complete new one. A full disk raises
``DiskFullError`` (an ``OSError`` with ``errno.ENOSPC``) naming the folder and the bytes needed; the temporary file
is removed.
"""
import hashlib
import json

from mrnet_arch.models.mrnet_checkpoint import DiskFullError, atomic_write, free_bytes, is_disk_full

__all__ = [
    'DiskFullError', 'atomic_write', 'free_bytes', 'is_disk_full', 'json_object', 'sha256_of', 'write_bytes',
    'write_json', 'write_text'
]


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
