"""LMDBs of image folders as BasicSR's loaders read them: the value codecs (BMP, uncompressed or compressed PNG),
``meta_info.txt``, and ``build_lmdb``, which writes one atomically, with bounded memory, and only when needed.

An LMDB value is the encoded image, which BasicSR's ``imfrombytes`` (``cv2.imdecode``) decodes whatever the
codec, so ``PairedImageDataset`` reads every codec unchanged. ``meta_info.txt`` has BasicSR's format, one line per
image, ``<key>.<ext> (<h>,<w>,<c>) <compression level>`` (``make_lmdb_from_imgs`` writes ``.png`` and its level;
BasicSR's readers take the key up to the first '.').

Codecs (``CODECS``): ``bmp`` (the default: 24-bit BMP, decoded by a copy), ``png0`` (PNG without compression) and
``png`` (PNG at compression level 1, as BasicSR's ``make_lmdb_from_imgs`` writes it, this package's earlier
format). ``benchmarks/results/lmdb_codecs_*.md`` has their decode times and sizes.
"""
import hashlib
import json
import multiprocessing
import os
import shutil
from collections import namedtuple
from os import path as osp

import cv2
import lmdb
import numpy as np

from mrnet_arch.errors import InputError
from mrnet_arch.storage import images
from mrnet_arch.storage.files import DiskFullError, free_bytes, is_disk_full, write_json, write_text

LMDB_DONE = 'mrnet_done.json'
DEFAULT_CODEC = 'bmp'
Codec = namedtuple('Codec', 'ext params level')
CODECS = {
    'bmp': Codec('.bmp', (), 0),
    'png0': Codec('.png', (cv2.IMWRITE_PNG_COMPRESSION, 0), 0),
    'png': Codec('.png', (cv2.IMWRITE_PNG_COMPRESSION, 1), 1),
}
BATCH_BYTES = 256 << 20  # a write transaction holds at most this much
WINDOW = 64  # images in flight per worker process
MIN_IMAGES_PER_WORKER = 128  # fewer images per worker process: read and encode them in this process


class LmdbError(InputError, RuntimeError):
    """A problem with the images or the LMDB path, with a message naming the file or option at fault."""


def codec_of(name):
    """The ``Codec`` called ``name``; ``LmdbError`` naming the choices otherwise."""
    if name not in CODECS:
        raise LmdbError(f'--lmdb-codec {name!r}: expected one of {", ".join(sorted(CODECS))}')
    return CODECS[name]


def encode(img, codec=DEFAULT_CODEC):
    """Encode an image (``(H, W)`` or ``(H, W, C)``, as ``cv2.imread(IMREAD_UNCHANGED)`` gives) as an LMDB value.

    Args:
        img (np.ndarray): The image.
        codec (str): A name of ``CODECS``. Default: ``bmp``.

    Returns:
        bytes: The encoded image.

    Raises:
        LmdbError: The codec cannot hold the image (BMP holds 8-bit images only).
    """
    spec = codec_of(codec)
    if spec.ext == '.bmp' and img.dtype != np.uint8:
        raise LmdbError(f'BMP holds 8-bit images only, got {img.dtype}; use --lmdb-codec png')
    ok, buf = cv2.imencode(spec.ext, img, list(spec.params))
    if not ok:
        raise LmdbError(f'OpenCV could not encode a {img.shape} {img.dtype} image as {codec}')
    return buf.tobytes()


def _read_and_encode(task):
    """(path, codec) -> (value bytes, (h, w, c)), or (None, error text) for an unreadable image."""
    path, codec = task
    try:
        img = images.read_image(path)
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        shape = img.shape if img.ndim == 3 else img.shape + (1, )
        return encode(img, codec), shape
    except (images.ImageError, LmdbError) as err:
        return None, f'{path}: {err}'


def _encoded(paths, codec, workers):
    """Yield (value, shape) for every path, in order, holding at most ``workers * WINDOW`` images at a time (in this
    process when there are fewer than ``MIN_IMAGES_PER_WORKER`` per worker: a spawned process costs more)."""
    tasks = [(p, codec) for p in paths]
    if workers <= 1 or len(tasks) < MIN_IMAGES_PER_WORKER * workers:
        yield from map(_read_and_encode, tasks)
        return
    with multiprocessing.get_context('spawn').Pool(workers, initializer=cv2.setNumThreads, initargs=(1, )) as pool:
        step = workers * WINDOW
        for start in range(0, len(tasks), step):
            yield from pool.imap(_read_and_encode, tasks[start:start + step], chunksize=8)


def _put_all(env, items, full=None):
    """Write ``items`` [(key bytes, value)] in one transaction, growing the map when it is full.

    Args:
        env (lmdb.Environment): The LMDB.
        items (list[tuple[bytes, bytes]]): Keys and values.
        full (callable | None): ``full(err, missing)`` returns the error to raise when the write failed for want
            of disk space (LMDB reports a full disk as ``Input/output error``), else None.
    """
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in items:
                    txn.put(key, value)
            return
        except lmdb.MapFullError:
            env.set_mapsize(2 * env.info()['map_size'] + sum(len(v) for _, v in items))
        except lmdb.Error as err:
            error = full and full(err, sum(len(v) for _, v in items))
            if error:
                raise error from err
            raise


def write_lmdb(folder, names, keys, lmdb_path, codec=DEFAULT_CODEC, workers=1):
    """Write ``folder/names`` into a new LMDB under ``keys``, with ``meta_info.txt``; memory stays bounded.

    Args:
        folder (str): Folder of images.
        names (list[str]): File names in ``folder``.
        keys (list[str]): LMDB keys, one per name.
        lmdb_path (str): The new LMDB folder (must not exist).
        codec (str): A name of ``CODECS``.
        workers (int): Processes reading and encoding.

    Raises:
        LmdbError: An image that cannot be read or encoded, named.
        DiskFullError: The disk is full; the message names the folder and the size of the LMDB (about).
    """
    spec = codec_of(codec)
    raw_guess = sum(os.path.getsize(osp.join(folder, n)) for n in names)
    parent = osp.dirname(osp.abspath(lmdb_path))
    meta, batch, batch_bytes, done_bytes = [], [], 0, 0

    def full(err, missing):
        """The DiskFullError of a failed LMDB write, naming the folder and the size of the whole LMDB (about)."""
        if not is_disk_full(err, parent, missing, (lmdb.Error, OSError)):
            return None
        needed = (done_bytes + batch_bytes) * len(names) // max(len(meta), 1)
        return DiskFullError(parent, f'the LMDB {osp.basename(lmdb_path)}', needed, free_bytes(parent))

    try:
        env = lmdb.open(lmdb_path, map_size=4 * raw_guess + (64 << 20))  # grown by _put_all when needed
    except lmdb.Error as err:
        raise (full(err, 0) or err) from err
    try:
        values = _encoded([osp.join(folder, n) for n in names], codec, workers)
        for key, (value, shape) in zip(keys, values):
            if value is None:
                raise LmdbError(f'Cannot read image {shape}. Replace or remove it and run again.')
            batch.append((key.encode('ascii'), value))
            batch_bytes += len(value)
            meta.append(f'{key}{spec.ext} ({shape[0]},{shape[1]},{shape[2]}) {spec.level}\n')
            if batch_bytes >= BATCH_BYTES:
                _put_all(env, batch, full)
                batch, batch_bytes, done_bytes = [], 0, done_bytes + batch_bytes
        _put_all(env, batch, full)
    finally:
        env.close()
    write_text(osp.join(lmdb_path, 'meta_info.txt'), ''.join(meta))


def _signature(folder, names, codec):
    digest = hashlib.sha1(f'codec={codec}\n'.encode())
    for name in names:
        st = os.stat(osp.join(folder, name))
        digest.update(f'{name}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
    return digest.hexdigest()


def build_lmdb(folder, lmdb_path, workers=1, codec=DEFAULT_CODEC):
    """Pack every image of ``folder`` into ``lmdb_path`` (keys: file names without extension; ``meta_info.txt``
    included), atomically and only when needed.

    The LMDB is written to a temporary sibling folder (``.NAME.tmp.lmdb``), a done marker is written last,
    and only then is the folder renamed to ``lmdb_path``: a kill never leaves a half-written LMDB under
    the final name. If ``lmdb_path`` already holds a complete LMDB of the same files (names, sizes,
    modification times) and codec, nothing is done; otherwise it is rebuilt and replaced.

    Args:
        folder (str): Folder of images.
        lmdb_path (str): Output folder; must end with ``.lmdb``.
        workers (int): Processes reading and encoding images. Default: 1.
        codec (str): Value format, a name of ``CODECS``. Default: ``bmp``.

    Returns:
        bool: True if the LMDB was (re)built, False if it was already up to date.

    Raises:
        LmdbError: Bad ``lmdb_path`` or codec, an existing ``lmdb_path`` not built by this function, or an
            unreadable image (named in the message).
    """
    codec_of(codec)
    lmdb_path = osp.abspath(lmdb_path)
    if not lmdb_path.endswith('.lmdb'):
        raise LmdbError(f"LMDB path must end with '.lmdb': {lmdb_path}")
    try:
        names = images.list_images(folder)
    except NotADirectoryError as err:
        raise LmdbError(str(err)) from err
    if not names:
        raise LmdbError(f'No images ({", ".join(images.IMAGE_EXTENSIONS)}) in {folder}')
    signature = _signature(folder, names, codec)
    marker = osp.join(lmdb_path, LMDB_DONE)
    if osp.exists(lmdb_path):
        if not osp.isfile(marker):
            raise LmdbError(f'{lmdb_path} exists but was not completed by mrnet prepare (no {LMDB_DONE}); '
                            'delete it to rebuild.')
        with open(marker, encoding='utf-8') as f:
            if json.load(f).get('signature') == signature:
                return False
    keys = [osp.splitext(n)[0] for n in names]
    dotted = [n for n, k in zip(names, keys) if '.' in k]
    if dotted:
        raise LmdbError(f"{folder}: file name(s) {dotted[:5]} hold a '.' before the extension; BasicSR's LMDB "
                        "loaders cut the keys in meta_info.txt at the first '.', so they could not be read. "
                        "Rename them (prepare_div2k names its sub-images with '_' instead).")
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise LmdbError(f'{folder}: several files share the LMDB key(s) {dup[:5]} (same name, other extension)')
    parent = osp.dirname(lmdb_path)
    os.makedirs(parent, exist_ok=True)
    tmp = osp.join(parent, f'.{osp.basename(lmdb_path)[:-5]}.tmp.lmdb')
    if osp.exists(tmp):
        shutil.rmtree(tmp)  # left by a killed run
    done = {'source': osp.abspath(folder), 'num_images': len(names), 'codec': codec, 'signature': signature}
    try:
        write_lmdb(folder, names, keys, tmp, codec, workers)
        write_json(osp.join(tmp, LMDB_DONE), done)
    except DiskFullError as err:  # named by the LMDB's final name; the unfinished one goes, a complete one stays
        shutil.rmtree(tmp, ignore_errors=True)
        raise DiskFullError(parent, f'the LMDB {osp.basename(lmdb_path)}', err.needed, free_bytes(parent),
                            'nothing complete was lost') from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if osp.exists(lmdb_path):  # an out-of-date complete LMDB: replace it
        old = osp.join(parent, f'.{osp.basename(lmdb_path)}.old')
        shutil.rmtree(old, ignore_errors=True)
        os.replace(lmdb_path, old)
        os.replace(tmp, lmdb_path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, lmdb_path)
    return True
