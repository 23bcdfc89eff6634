"""Check a whole image store, an LMDB or a folder of images, and list every bad key or file (``mrnet prepare verify``).

The option checks of ``mrnet train`` read headers and ``meta_info.txt`` only, so that they stay fast; this module
reads every value:

- an LMDB (``<name>.lmdb`` with ``data.mdb`` and ``meta_info.txt``): every line of ``meta_info.txt`` must name a
  key and its size (``<key>.<ext> (h,w,c) <level>``); every key must have a value in ``data.mdb`` that decodes as
  an image of that size; pages that LMDB finds damaged (``MDB_CORRUPTED``, ``MDB_PAGE_NOTFOUND``) are named by the
  key whose read met them;
- a folder: every file must be an image (by extension) that is not cut short (PNG ``IEND``, JPEG end marker) and
  decodes whole.
"""
import os
import re
from collections import namedtuple
from os import path as osp

import cv2
import numpy as np

from mrnet_arch.storage import images

META_LINE = re.compile(r'^(?P<key>[^.\s]+)\.\w+\s+\((?P<h>\d+),\s*(?P<w>\d+),\s*(?P<c>\d+)\)(\s+\d+)?\s*$')

Report = namedtuple('Report', 'path kind checked problems')
Report.__doc__ = """What ``verify`` found: ``kind`` 'lmdb' or 'folder', ``checked`` the number of keys or files read,
``problems`` one line per bad key or file (empty when the store is clean)."""


def is_lmdb(path):
    """Whether ``path`` is (meant as) an LMDB: a ``.lmdb`` folder, or a folder holding ``data.mdb``."""
    return path.rstrip('/').endswith('.lmdb') or osp.isfile(osp.join(path, 'data.mdb'))


def _meta_keys(meta_path, problems):
    """``[(key, (h, w, c))]`` of the lines of ``meta_info.txt``; a line without a key and size is a problem."""
    keys = []
    with open(meta_path, encoding='utf-8', errors='replace') as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            m = META_LINE.match(text)
            if not m:
                key = text.split()[0].split('.')[0]
                problems.append(f'{key}: {meta_path} line {n} {text!r} has no size behind the key (expected '
                                '"<key>.png (h,w,c) <level>")')
                continue
            keys.append((m['key'], (int(m['h']), int(m['w']), int(m['c']))))
    return keys


def _decode_problem(value, shape):
    """Why the LMDB ``value`` is not an image of ``shape`` (h, w, c), or None."""
    if not value:
        return 'its value is empty'
    img = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        return f'its value ({len(value)} bytes, starting {bytes(value[:8])!r}) does not decode as an image'
    found = img.shape if img.ndim == 3 else img.shape + (1, )
    if tuple(found) != shape:
        return (f'its value decodes to {found[0]}x{found[1]}x{found[2]}, but meta_info.txt says '
                f'{shape[0]}x{shape[1]}x{shape[2]}')
    return None


def verify_lmdb(path):
    """Read every key of an LMDB as BasicSR's loaders do.

    Args:
        path (str): The LMDB folder.

    Returns:
        Report: ``problems`` lines ``'<key>: <what is wrong>'`` (or naming a missing file).
    """
    import lmdb
    problems = []
    for name in ('data.mdb', 'meta_info.txt'):
        if not osp.isfile(osp.join(path, name)):
            return Report(path, 'lmdb', 0, [f'{osp.join(path, name)} not found: not an LMDB of BasicSR\'s format'])
    keys = _meta_keys(osp.join(path, 'meta_info.txt'), problems)
    data = osp.join(path, 'data.mdb')
    try:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False)
    except lmdb.Error as err:
        return Report(path, 'lmdb', 0, problems + [f'{data}: LMDB cannot open it ({err})'])
    try:
        for key, shape in keys:
            try:
                with env.begin(write=False) as txn:
                    value = txn.get(key.encode('ascii', 'replace'))
                    problem = 'listed in meta_info.txt but not in data.mdb' if value is None else _decode_problem(
                        value, shape)
            except lmdb.Error as err:
                problem = f'{data} is damaged where this key is stored ({type(err).__name__}: {err})'
            if problem:
                problems.append(f'{key}: {problem}')
    finally:
        env.close()
    return Report(path, 'lmdb', len(keys), problems)


def verify_folder(path):
    """Read every file of an image folder whole.

    Args:
        path (str): The folder (its hidden files are left out, as BasicSR's ``scandir`` does).

    Returns:
        Report: ``problems`` lines ``'<file>: <what is wrong>'``.
    """
    names = sorted(e.name for e in os.scandir(path) if e.is_file() and not e.name.startswith('.'))
    problems = []
    for name in names:
        file = osp.join(path, name)
        _, problem = images.image_size(file)
        if problem is None:
            try:
                images.read_image(file, max_pixels=1 << 40)  # as large as the loaders read
            except images.ImageError as err:
                problem = str(err)
        if problem:
            problems.append(f'{name}: {problem.replace(file + ": ", "")}')
    if not names:
        problems.append(f'{path}: no images (the folder is empty)')
    return Report(path, 'folder', len(names), problems)


def verify(path):
    """``verify_lmdb`` or ``verify_folder`` by what ``path`` is.

    Raises:
        FileNotFoundError: ``path`` is not a folder.
    """
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path}: no such folder (expected an LMDB folder or a folder of images)')
    return verify_lmdb(path) if is_lmdb(path) else verify_folder(path)
