"""Data preparation, the library behind ``mrnet prepare``: DIV2K and benchmark folders into what BasicSR's
loaders read, in Python. The command (``mrnet_arch.commands.prepare``) adds only the argument parsing; the demo and
the benchmarks call ``prepare_div2k`` and ``prepare_benchmark`` directly.

``prepare_div2k`` cuts 480 px HR sub-images with step 240 (BasicSR's ``extract_subimages.py`` with
``thresh_size`` 0), the matching LR sub-images (from DIV2K's official ``DIV2K_train_LR_bicubic/X{s}``
folders with ``--lr-root``, else MATLAB bicubic of the HR), and one LMDB per folder with
``meta_info.txt`` (written by ``mrnet_arch.dataprep.lmdb_store``; values stored as BMP by default, which BasicSR's
loaders read unchanged and which decodes far faster than BasicSR's PNG level 1:
``benchmarks/results/lmdb_codecs_cpu_20261202.md``)::

    OUTPUT/DIV2K_train_HR_sub/0001_s001.png ...             OUTPUT/DIV2K_train_HR_sub.lmdb
    OUTPUT/DIV2K_train_LR_bicubic/X2_sub/0001_s001.png ...  OUTPUT/DIV2K_train_LR_bicubic_X2_sub.lmdb

Tile names (and so LMDB keys) replace every '.' of the image name with '_' (``tile_stem``): BasicSR's LMDB loaders
read the keys from ``meta_info.txt`` up to the first '.', so a key such as ``wallpapers-16.04__sea_s001`` would be
looked up as ``wallpapers-16``.

Tile positions are computed on the HR cropped to a multiple of every scale (12 for 2, 3, 4), so every
tile starts on a multiple of each scale, the LR tile of scale s is exactly the HR tile downscaled by s,
and all LMDBs share the same keys.

``prepare_benchmark`` writes BasicSR's Set5 layout: ``OUTPUT/GTmod12/NAME.png`` (HR cropped to a multiple of
12) and ``OUTPUT/LRbicx{s}/NAME.png`` (MATLAB bicubic of GTmod12). Grayscale images stay one-channel
PNGs; BasicSR's ``PairedImageDataset`` decodes them as three equal channels, so its Y-channel PSNR/SSIM
is that of the gray image replicated to RGB, the convention of the published tables (EDSR's and the
MATLAB evaluation scripts), not PSNR on the raw gray values (which would be 20*log10(255/219) = 1.32 dB
lower).

Re-running skips finished work: each source image is logged in ``OUTPUT/.mrnet_prepare/`` once all
its tiles are written, every file is written atomically (``mrnet_arch.storage.files``), and an LMDB is built in
a temporary folder that is renamed only once complete (``lmdb_store.build_lmdb``).

The helpers ``read_image``, ``mod_crop``, ``bicubic_downscale`` and ``build_lmdb`` are public. Images are
read and written with ``mrnet_arch.storage.images`` (8-bit only: a 16-bit image is refused by name).
"""
import json
import math
import multiprocessing
import os
from os import path as osp

import cv2
import numpy as np
from tqdm import tqdm

import mrnet_arch  # noqa: F401  (compat fixes before basicsr)
from basicsr.utils.matlab_functions import imresize
from mrnet_arch.dataprep import lmdb_store
from mrnet_arch.dataprep.lmdb_store import DEFAULT_CODEC, LMDB_DONE  # noqa: F401  (LMDB_DONE: public here too)
from mrnet_arch.errors import InputError
from mrnet_arch.storage import images
from mrnet_arch.storage.files import write_json
from mrnet_arch.storage.images import IMAGE_EXTENSIONS

PNG_COMPRESSION = 3
MIN_TASKS_PER_WORKER = 4  # fewer source images per worker process: cut them in this process
STATE_DIR = '.mrnet_prepare'


class PrepareError(InputError, RuntimeError):
    """A problem with the input data, with a message naming the file or option at fault."""


# ----------------------------------------------------------------------------------------------------
# Helpers (public).
# ----------------------------------------------------------------------------------------------------
def read_image(path, dtypes=images.PIXEL_TYPES):
    """Read an image as stored (BGR(A) or gray, its bit depth) with ``mrnet_arch.storage.images.read_image``.

    Args:
        path (str): Image file.
        dtypes (tuple): Accepted pixel types. Default: uint8 and uint16.

    Returns:
        np.ndarray: ``(H, W)`` or ``(H, W, C)`` array.

    Raises:
        PrepareError: The file is missing, empty, not a decodable image or of another pixel type; the
            message names it.
    """
    try:
        return images.read_image(path, dtypes=dtypes)
    except images.ImageError as err:
        raise PrepareError(f'{err}. Replace or remove it and run again.') from err


def mod_crop(img, m):
    """Crop the bottom and right border so that height and width are multiples of ``m``.

    Args:
        img (np.ndarray): ``(H, W)`` or ``(H, W, C)`` image.
        m (int): Modulus (e.g. the scale, or 12 for BasicSR's GTmod12).

    Returns:
        np.ndarray: A view of ``img`` of size ``(H - H % m, W - W % m)``.
    """
    h, w = img.shape[:2]
    return img[:h - h % m, :w - w % m, ...]


def bicubic_downscale(img_uint8, scale):
    """MATLAB ``imresize(img, 1/scale, 'bicubic')`` of a uint8 image (antialiased), as BasicSR's
    ``generate_bicubic_img.m``: basicsr's ``matlab_functions.imresize`` on float [0, 1], then rounded.

    Args:
        img_uint8 (np.ndarray): uint8 ``(H, W)`` or ``(H, W, C)`` image, H and W multiples of ``scale``
            (use ``mod_crop`` first).
        scale (int): Downscaling factor.

    Returns:
        np.ndarray: uint8 image of size ``(H / scale, W / scale)`` with the input's channel layout.

    Raises:
        ValueError: Not uint8, or a size that is no multiple of ``scale``.
    """
    if img_uint8.dtype != np.uint8:
        raise ValueError(f'bicubic_downscale expects a uint8 image, got {img_uint8.dtype}')
    h, w = img_uint8.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f'image size {h}x{w} is not a multiple of scale {scale}; mod_crop it first')
    lr = imresize(img_uint8.astype(np.float32) / 255., 1 / scale)
    return np.clip(np.round(lr * 255.), 0, 255).astype(np.uint8)


def list_images(folder):
    """Image files (``IMAGE_EXTENSIONS``) directly in ``folder``, sorted by name.

    Raises:
        PrepareError: ``folder`` is no directory or holds no image.
    """
    try:
        names = images.list_images(folder)
    except NotADirectoryError as err:
        raise PrepareError(str(err)) from err
    if not names:
        raise PrepareError(f'No images ({", ".join(IMAGE_EXTENSIONS)}) in {folder}')
    return names


def _images_with_unique_stems(folder, output_stem=None):
    """``list_images(folder)``, refusing two files that differ only in extension (outputs are ``<stem>...png``)
    and, with ``output_stem`` (e.g. ``tile_stem``), two files whose stems it maps to the same output name."""
    names = list_images(folder)
    stems = [osp.splitext(n)[0] for n in names]
    if len(set(stems)) != len(stems):
        dup = sorted({k for k in stems if stems.count(k) > 1})
        raise PrepareError(f'{folder}: several files share the name(s) {dup[:5]} (other extension); '
                           'outputs are named <name>...png')
    if output_stem is not None:
        by_output = {}
        for name, stem in zip(names, stems):
            by_output.setdefault(output_stem(stem), []).append(name)
        clashes = [sorted(v) for v in by_output.values() if len(v) > 1]
        if clashes:
            raise PrepareError(f"{folder}: {clashes[:3]} would give sub-images of the same name (a '.' in a name "
                               "becomes '_'); rename one of each")
    return names


def tile_stem(stem):
    """The name that the sub-images of image ``stem`` start with: ``stem`` with every '.' replaced by '_'.

    BasicSR's ``paired_paths_from_lmdb`` takes the key of each ``meta_info.txt`` line up to its first '.'.
    """
    return stem.replace('.', '_')


def build_lmdb(folder, lmdb_path, workers=1, codec=DEFAULT_CODEC):
    """``mrnet_arch.dataprep.lmdb_store.build_lmdb`` (an LMDB of every image of ``folder``, atomically and only when
    needed; its docstring has the details), with its errors raised as ``PrepareError``.

    Args:
        folder (str): Folder of images.
        lmdb_path (str): Output folder; must end with ``.lmdb``.
        workers (int): Processes reading and encoding images. Default: 1.
        codec (str): LMDB value format, a name of ``lmdb_store.CODECS``. Default: ``bmp``.

    Returns:
        bool: True if the LMDB was (re)built, False if it was already up to date.
    """
    try:
        return lmdb_store.build_lmdb(folder, lmdb_path, workers=workers, codec=codec)
    except lmdb_store.LmdbError as err:
        raise PrepareError(str(err)) from err


def _read_uint8(path):
    """An 8-bit image (16-bit ones refused by name) without its alpha channel, gray as ``(H, W)``."""
    img = read_image(path, dtypes=(np.uint8, ))
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    return img


def _write_png(path, img):
    """Write ``img`` as PNG atomically (``mrnet_arch.storage.images.write_image``): an existing file is complete."""
    try:
        images.write_image(path, img, png_compression=PNG_COMPRESSION)
    except images.ImageError as err:
        raise PrepareError(str(err)) from err


def _tile_starts(length, crop_size, step, thresh_size):
    """Tile offsets along one axis, as in BasicSR's ``extract_subimages.py``."""
    starts = list(range(0, length - crop_size + 1, step))
    if length - (starts[-1] + crop_size) > thresh_size:
        starts.append(length - crop_size)
    return starts


def _lcm(values):
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def _run_tasks(func, tasks, workers, desc):
    """Yield ``func(task)`` for every task (any order), with a progress bar, in ``workers`` processes (in this one
    when there are fewer than ``MIN_TASKS_PER_WORKER`` tasks per worker: starting a spawned process, which imports
    torch and basicsr, costs more than a few images)."""
    bar = tqdm(total=len(tasks), unit='image', desc=desc)
    try:
        if workers <= 1 or len(tasks) < MIN_TASKS_PER_WORKER * workers:
            for task in tasks:
                yield func(task)
                bar.update(1)
            return
        # spawn: torch (used by imresize) is not fork-safe once its thread pool has started
        with multiprocessing.get_context('spawn').Pool(workers, initializer=_init_worker) as pool:
            for result in pool.imap_unordered(func, tasks):
                yield result
                bar.update(1)
    finally:
        bar.close()


def _init_worker():
    import torch
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


# ----------------------------------------------------------------------------------------------------
# DIV2K: sub-images and LMDBs.
# ----------------------------------------------------------------------------------------------------
def _refuse_writing_into_inputs(inputs, outputs):
    """Raise ``PrepareError`` when a folder the command writes (``outputs``) is an input folder, whose images it
    would replace (``--input datasets/Set5/GTmod12 --output datasets/Set5``)."""
    for option, folder in inputs:
        for out in outputs:
            if osp.realpath(folder) == osp.realpath(out):
                raise PrepareError(f'{option} {folder} is a folder this command writes ({out}): choose another '
                                   '--output, inputs are never overwritten')


def div2k_paths(output, scales):
    """Folders and LMDBs written by ``prepare div2k`` (the names ``options/train_MRNet_x*.yml`` read).

    Returns:
        dict: ``'hr'`` -> (sub-image folder, LMDB) and ``s`` -> (folder, LMDB) for each scale.
    """
    paths = {'hr': (osp.join(output, 'DIV2K_train_HR_sub'), osp.join(output, 'DIV2K_train_HR_sub.lmdb'))}
    for s in scales:
        paths[s] = (osp.join(output, 'DIV2K_train_LR_bicubic', f'X{s}_sub'),
                    osp.join(output, f'DIV2K_train_LR_bicubic_X{s}_sub.lmdb'))
    return paths


def _official_lr_dirs(lr_root, scales):
    dirs = {}
    for s in scales:
        candidates = [osp.join(lr_root, 'DIV2K_train_LR_bicubic', f'X{s}'), osp.join(lr_root, f'X{s}')]
        found = [d for d in candidates if osp.isdir(d)]
        if not found:
            raise PrepareError(f'--lr-root {lr_root}: no x{s} folder (looked for {" and ".join(candidates)})')
        dirs[s] = found[0]
    return dirs


def _div2k_image(task):
    """Cut one HR image and its LR versions into tiles; returns (name, number of tiles)."""
    hr_path, cfg = task
    stem = osp.splitext(osp.basename(hr_path))[0]
    scales, crop, step = cfg['scales'], cfg['crop_size'], cfg['step']
    hr = _read_uint8(hr_path)
    h, w = mod_crop(hr, cfg['mod']).shape[:2]
    if min(h, w) < crop:
        return stem, 0
    tops = _tile_starts(h, crop, step, cfg['thresh_size'])
    lefts = _tile_starts(w, crop, step, cfg['thresh_size'])
    lrs = {}
    for s in scales:
        if cfg['lr_dirs']:
            lr_path = osp.join(cfg['lr_dirs'][s], f'{stem}x{s}.png')
            lr = _read_uint8(lr_path)
            expected = (hr.shape[0] // s, hr.shape[1] // s)
            if lr.shape[:2] != expected:
                raise PrepareError(f'{lr_path}: size {lr.shape[1]}x{lr.shape[0]}, expected {expected[1]}x{expected[0]} '
                                   f'(HR {hr_path} divided by {s})')
        else:
            lr = bicubic_downscale(mod_crop(hr, s), s)
        lrs[s] = lr
    paths = cfg['paths']
    index = 0
    for top in tops:
        for left in lefts:
            index += 1
            name = f'{tile_stem(stem)}_s{index:03d}.png'
            _write_png(osp.join(paths['hr'][0], name), np.ascontiguousarray(hr[top:top + crop, left:left + crop]))
            for s, lr in lrs.items():
                t, l, c = top // s, left // s, crop // s
                _write_png(osp.join(paths[s][0], name), np.ascontiguousarray(lr[t:t + c, l:l + c]))
    return stem, index


def _load_state(state_dir, kind, config):
    """Check the settings of an earlier run into the same output and return the finished image names."""
    os.makedirs(state_dir, exist_ok=True)
    cfg_file = osp.join(state_dir, f'{kind}_config.json')
    if osp.isfile(cfg_file):
        try:
            with open(cfg_file, encoding='utf-8') as f:
                previous = json.load(f)
        except ValueError as e:
            raise PrepareError(f'{cfg_file} is damaged ({e}); delete it to prepare into this --output again') from e
        if previous != config:
            changed = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
            raise PrepareError(f'{osp.dirname(state_dir)} was prepared with other settings ({", ".join(changed)}: '
                               f'{[previous.get(k) for k in changed]}); use another --output or delete it.')
    else:
        write_json(cfg_file, config, indent=1)
    log = osp.join(state_dir, f'{kind}_done.txt')
    done = set()
    if osp.isfile(log):
        with open(log, encoding='utf-8') as f:
            done = {line[:-1] for line in f if line.endswith('\n')}  # a cut-short last line is not done
    return log, done


def prepare_div2k(hr_dir, output, scales=(2, 3, 4), lr_root=None, workers=1, crop_size=480, step=240,
                  thresh_size=0, lmdb_codec=DEFAULT_CODEC):
    """Sub-images and LMDBs of DIV2K (or any folder of HR images) for ``options/train_MRNet_x*.yml``.

    Args:
        hr_dir (str): Folder of HR images (e.g. ``DIV2K_train_HR``).
        output (str): Output folder (e.g. ``datasets/DIV2K``).
        scales (list[int]): LR scales. Default: (2, 3, 4).
        lr_root (str | None): Folder holding DIV2K's official ``DIV2K_train_LR_bicubic/X{s}`` (or the
            ``X{s}`` folders themselves); None generates the LR with MATLAB bicubic. Default: None.
        workers (int): Worker processes. Default: 1.
        crop_size (int): HR tile size. Default: 480.
        step (int): HR tile step. Default: 240.
        thresh_size (int): A last tile is added when more than this many pixels remain. Default: 0.
        lmdb_codec (str): Format of the LMDB values, a name of ``lmdb_store.CODECS``: ``bmp`` (decoded by a
            copy), ``png0`` (uncompressed PNG) or ``png`` (PNG level 1, BasicSR's ``make_lmdb_from_imgs``).
            Changing it rebuilds the LMDBs only. Default: ``bmp``.

    Returns:
        dict: As ``div2k_paths``.
    """
    try:
        lmdb_store.codec_of(lmdb_codec)
    except lmdb_store.LmdbError as err:
        raise PrepareError(str(err)) from err
    scales = sorted({int(s) for s in scales})
    mod = _lcm(scales)
    for name, value in (('--crop-size', crop_size), ('--step', step)):
        if value <= 0 or value % mod:
            raise PrepareError(f'{name} {value} must be a positive multiple of {mod} (every scale of {scales})')
    output = osp.abspath(output)
    paths = div2k_paths(output, scales)
    lr_dirs = _official_lr_dirs(lr_root, scales) if lr_root else None
    _refuse_writing_into_inputs([('--hr', hr_dir)] + [('--lr-root', d) for d in (lr_dirs or {}).values()],
                                [p for pair in paths.values() for p in pair])
    names = _images_with_unique_stems(hr_dir, output_stem=tile_stem)
    config = {'hr': osp.abspath(hr_dir), 'lr_root': osp.abspath(lr_root) if lr_root else None, 'scales': scales,
              'crop_size': crop_size, 'step': step, 'thresh_size': thresh_size}
    log, done = _load_state(osp.join(output, STATE_DIR), 'div2k', config)
    for folder, _ in paths.values():
        os.makedirs(folder, exist_ok=True)
    cfg = dict(config, mod=mod, lr_dirs=lr_dirs, paths=paths)
    todo = [(osp.join(hr_dir, n), cfg) for n in names if osp.splitext(n)[0] not in done]
    if len(todo) < len(names):
        print(f'[prepare div2k] {len(names) - len(todo)} of {len(names)} images already cut, skipping them')
    small = []
    with open(log, 'a', encoding='utf-8') as f:
        for stem, count in _run_tasks(_div2k_image, todo, workers, 'sub-images'):
            if count == 0:
                small.append(stem)
            f.write(stem + '\n')
            f.flush()
    if small:
        print(f'[prepare div2k] skipped {len(small)} image(s) smaller than {crop_size} px: {small[:10]}')
    for folder, lmdb_path in paths.values():
        if not build_lmdb(folder, lmdb_path, workers=workers, codec=lmdb_codec):
            print(f'[prepare div2k] {lmdb_path} is up to date')
    return paths


# ----------------------------------------------------------------------------------------------------
# Benchmarks: GTmod12 and LRbicx{s}.
# ----------------------------------------------------------------------------------------------------
def _benchmark_image(task):
    """Write GTmod and LRbicx{s} of one image (skipped when all exist); returns the image name."""
    path, output, scales, mod = task
    stem = osp.splitext(osp.basename(path))[0]
    gt_path = osp.join(output, f'GTmod{mod}', f'{stem}.png')
    lr_paths = {s: osp.join(output, f'LRbicx{s}', f'{stem}.png') for s in scales}
    if osp.isfile(gt_path) and all(osp.isfile(p) for p in lr_paths.values()):
        return stem
    gt = mod_crop(_read_uint8(path), mod)
    if gt.shape[0] == 0 or gt.shape[1] == 0:
        raise PrepareError(f'{path}: smaller than {mod} px, nothing left after cropping to a multiple of {mod}')
    gt = np.ascontiguousarray(gt)
    for s, lr_path in lr_paths.items():
        _write_png(lr_path, bicubic_downscale(gt, s))
    _write_png(gt_path, gt)  # last: its presence marks the image done
    return stem


def prepare_benchmark(input_dir, output, scales=(2, 3, 4), workers=1):
    """BasicSR's Set5 layout from any folder of HR images: ``GTmod12/`` and ``LRbicx{s}/`` (PNG, same names).

    Args:
        input_dir (str): Folder of HR images.
        output (str): Output folder (e.g. ``datasets/Set5``).
        scales (list[int]): Scales. Default: (2, 3, 4).
        workers (int): Worker processes. Default: 1.

    Returns:
        dict: ``'gt'`` -> GT folder and ``s`` -> LR folder of each scale.
    """
    scales = sorted({int(s) for s in scales})
    mod = _lcm([12] + scales)
    output = osp.abspath(output)
    folders = {'gt': osp.join(output, f'GTmod{mod}')}
    folders.update({s: osp.join(output, f'LRbicx{s}') for s in scales})
    _refuse_writing_into_inputs([('--input', input_dir)], folders.values())
    names = _images_with_unique_stems(input_dir)
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    tasks = [(osp.join(input_dir, n), output, scales, mod) for n in names]
    for _ in _run_tasks(_benchmark_image, tasks, workers, osp.basename(output) or 'benchmark'):
        pass
    return folders
