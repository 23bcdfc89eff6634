"""The dataset checks of ``mrnet train`` / ``mrnet test``: folders, LMDBs and image files of every dataset of a
parsed option dict (``check_datasets``), read from image headers and ``meta_info.txt`` so no image is decoded.

Checked for ``PairedImageDataset``, ``SingleImageDataset``, ``MultiScalePairedImageDataset`` and subclasses (a
multi-scale set as one paired set per scale, its LQ roots named ``dataroots_lq[i]``, with the LR patch
``lq_size``): the folders, LMDBs (``data.mdb``, ``meta_info.txt``, every key present) and ``meta_info_file``
exist; a folder is not empty and holds only images; every GT image has its LQ partner (``filename_tmpl``);
images open and are not cut short (PNG ``IEND`` / JPEG end marker); GT size is ``scale`` times the LQ size
(exactly for training, at most ``scale - 1`` pixels more for validation and test, where BasicSR crops GT), and
LQ images are at least ``gt_size / scale`` for training. Sizes are upright (EXIF orientations 5-8 swap width
and height, as the loaders turn such images). ``check_files: false`` in a dataset's options skips the per-file
part.

``check_datasets`` returns, for each validation and test dataset whose sizes it read, its largest image at the
output size (GT, or LQ times ``scale`` without GT), which the memory check of the evaluation uses
(``pipeline_memory.check_evaluation_memory``).
"""
import os
import re
from os import path as osp

from mrnet_arch.preflight.check_report import CheckError, is_int, listed, raise_problems, registered
from mrnet_arch.storage.images import IMAGE_EXTENSIONS, image_size


def _size_problem(phase, scale, gt_size, gt, lq):
    """A message if the GT/LQ sizes (``(name, (h, w))``) do not fit ``scale`` for ``phase``, else None."""
    (gt_name, (gh, gw)), (lq_name, (lh, lw)) = gt, lq
    if phase == 'train':
        if (gh, gw) != (lh * scale, lw * scale):
            return (f'{gt_name} is {gh}x{gw} but {lq_name} is {lh}x{lw}: for scale {scale} GT must be exactly '
                    f'{lh * scale}x{lw * scale} (LQ x {scale})')
        if gt_size and (lh * scale < gt_size or lw * scale < gt_size):
            return f'{lq_name} is {lh}x{lw}, smaller than gt_size {gt_size} / scale {scale}'
        return None
    if not (lh * scale <= gh < (lh + 1) * scale and lw * scale <= gw < (lw + 1) * scale):
        return (f'{gt_name} is {gh}x{gw} but {lq_name} is {lh}x{lw}: for scale {scale} GT must be '
                f'{lh * scale}x{lw * scale} (up to {scale - 1} more pixels, which are cropped)')
    return None


def _folder_images(folder, where):
    """Sorted non-hidden file names of ``folder`` (as basicsr's ``scandir``); all must be images."""
    if not osp.isdir(folder):
        raise CheckError(f'{where}: folder not found: {folder}')
    names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith('.') and e.is_file())
    if not names:
        raise CheckError(f'{where}: no images in {folder} (the folder is empty)')
    raise_problems(f'{where}: {folder} holds files that are not images (move them out)', [
        f'{n} (expected one of {" ".join(IMAGE_EXTENSIONS)})' for n in names
        if osp.splitext(n)[1].lower() not in IMAGE_EXTENSIONS
    ])
    return names


def _lmdb_sizes(root, where):
    """``{key: (h, w)}`` of a basicsr LMDB from its ``meta_info.txt``, checking every key is in ``data.mdb``."""
    import lmdb
    if not root.endswith('.lmdb'):
        raise CheckError(f'{where}: {root} must be an LMDB folder ending in .lmdb (io_backend type is lmdb)')
    for name in ('data.mdb', 'meta_info.txt'):
        if not osp.isfile(osp.join(root, name)):
            raise CheckError(f'{where}: {osp.join(root, name)} not found: is {root} an LMDB made by '
                             'basicsr.utils.lmdb_util.make_lmdb_from_imgs (or mrnet prepare)?')
    sizes, bad = {}, []
    with open(osp.join(root, 'meta_info.txt'), encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            m = re.match(r'^\S+\s+\((\d+),\s*(\d+)', line)
            if not m:
                bad.append(f'line {n}: {line.strip()!r} (key {line.split()[0].split(".")[0]}: no size behind it; '
                           'expected "<key>.png (h,w,c) <level>")')
                continue
            sizes[line.split('.')[0]] = (int(m.group(1)), int(m.group(2)))
    raise_problems(f'{where}: {osp.join(root, "meta_info.txt")} has lines basicsr cannot use', bad)
    if not sizes:
        raise CheckError(f'{where}: {osp.join(root, "meta_info.txt")} lists no images')
    verify = f'`mrnet prepare verify {root}` lists every bad key'
    try:
        env = lmdb.open(root, readonly=True, lock=False, readahead=False)
    except lmdb.Error as err:
        raise CheckError(f'{where}: {root}/data.mdb cannot be opened as an LMDB ({err}); rebuild or copy it again')
    absent, damaged = [], []
    try:
        with env.begin(write=False) as txn, txn.cursor() as cursor:
            for k in sizes:
                try:
                    if not cursor.set_key(k.encode('ascii')):
                        absent.append(k)
                except lmdb.Error as err:  # MDB_CORRUPTED, MDB_PAGE_NOTFOUND: pages overwritten or cut off
                    damaged.append(f'{k} ({err})')
    finally:
        env.close()
    raise_problems(f'{where}: {root}/data.mdb is damaged (rebuild it or copy it again; {verify}); '
                   'reading these keys failed', damaged)
    raise_problems(f'{where}: keys listed in meta_info.txt but missing from {root}/data.mdb', absent)
    return sizes


def _disk_sizes(folder, names, where):
    """``{name: (h, w)}`` for image files ``names`` in ``folder``, raising for unreadable or cut-short ones."""
    sizes, problems = {}, []
    for name in names:
        size, problem = image_size(osp.join(folder, name))
        if problem:
            problems.append(problem)
        else:
            sizes[name] = size
    raise_problems(f'{where}: unreadable images', problems)
    return sizes


def _pair_hint(missing_lq, lq_names):
    """A ``filename_tmpl`` suggestion when LQ names are GT names with a suffix (e.g. ``0001x2.png``)."""
    if not missing_lq or not lq_names:
        return ''
    stem = osp.splitext(missing_lq[0])[0]
    for lq in lq_names:
        lq_stem = osp.splitext(lq)[0]
        if lq_stem.startswith(stem) and lq_stem != stem:
            return f" LQ files look like {lq!r}: set filename_tmpl: '{{}}{lq_stem[len(stem):]}'."
    return ''


def _largest(sizes, scale=1):
    """``(name, h * scale, w * scale)`` of the image of ``{name: (h, w)}`` with the most pixels, or None."""
    if not sizes:
        return None
    name, (h, w) = max(sizes.items(), key=lambda item: item[1][0] * item[1][1])
    return name, h * scale, w * scale


def _check_image_dataset(phase_key, dataset_opt, scale, paired, lq_key='dataroot_lq'):
    """Check the files of a (Paired|Single)ImageDataset; see the module docstring. ``lq_key`` names the LQ
    root's option in messages (``dataroots_lq[1]`` for a scale of a multi-scale dataset).

    Returns:
        tuple | None: ``(name, h, w)`` of the largest image at the output size, or None when no size was read.
    """
    where = f'datasets:{phase_key}'
    phase = phase_key.split('_')[0]
    backend = (dataset_opt.get('io_backend') or {}).get('type')
    if backend not in ('disk', 'lmdb'):
        if backend is None:
            raise CheckError(f'{where}:io_backend:type is missing (expected disk or lmdb)')
        return None  # memcached and other backends: nothing to look at here
    roots = ['dataroot_lq', 'dataroot_gt'] if paired else ['dataroot_lq']
    for key in roots:
        if not isinstance(dataset_opt.get(key), str):
            raise CheckError(f'{where}:{lq_key if key == "dataroot_lq" else key} must be a folder path, '
                             f'got {dataset_opt.get(key)!r}')
    check_files = dataset_opt.get('check_files', True)
    tmpl = dataset_opt.get('filename_tmpl', '{}')
    if backend == 'lmdb':
        lq = _lmdb_sizes(dataset_opt['dataroot_lq'], f'{where}:{lq_key}')
        if not paired:
            return _largest(lq, scale)
        gt = _lmdb_sizes(dataset_opt['dataroot_gt'], f'{where}:dataroot_gt')
        raise_problems(f'{where}: the LQ and GT LMDBs list different keys', [
            f'{k} only in {dataset_opt["dataroot_gt"]}' for k in sorted(set(gt) - set(lq))
        ] + [f'{k} only in {dataset_opt["dataroot_lq"]}' for k in sorted(set(lq) - set(gt))])
        pairs = [((k, gt[k]), (k, lq[k])) for k in sorted(gt)]
    else:
        lq_root = dataset_opt['dataroot_lq']
        meta = dataset_opt.get('meta_info_file')
        if meta is not None and not osp.isfile(meta):
            raise CheckError(f'{where}:meta_info_file not found: {meta}')
        if not paired:
            names = _folder_images(lq_root, f'{where}:{lq_key}')
            if check_files:
                return _largest(_disk_sizes(lq_root, names, f'{where}:{lq_key}'), scale)
            return None
        gt_root = dataset_opt['dataroot_gt']
        if meta is not None:
            with open(meta, encoding='utf-8') as f:
                gt_names = [line.strip().split(' ')[0] for line in f if line.strip()]
            if not gt_names:
                raise CheckError(f'{where}:meta_info_file {meta} lists no images')
            for key, root in ((lq_key, lq_root), ('dataroot_gt', gt_root)):
                if not osp.isdir(root):
                    raise CheckError(f'{where}:{key}: folder not found: {root}')
            lq_names = []
        else:
            lq_names = _folder_images(lq_root, f'{where}:{lq_key}')
            gt_names = _folder_images(gt_root, f'{where}:dataroot_gt')
        partner = {g: f'{tmpl.format(osp.splitext(osp.basename(g))[0])}{osp.splitext(g)[1]}' for g in gt_names}
        if meta is not None:
            missing = [g for g in gt_names if not osp.isfile(osp.join(gt_root, g))]
            raise_problems(f'{where}: files listed in {meta} but not in {gt_root}', missing)
            missing_lq = [p for p in partner.values() if not osp.isfile(osp.join(lq_root, p))]
        else:
            missing_lq = [p for p in partner.values() if p not in set(lq_names)]
        extra_lq = sorted(set(lq_names) - set(partner.values())) if meta is None else []
        if missing_lq or extra_lq:
            raise CheckError(
                f'{where}: the LQ folder {lq_root} and the GT folder {gt_root} do not pair up by name '
                f"(filename_tmpl {tmpl!r}): {len(missing_lq)} GT image(s) have no LQ file, {len(extra_lq)} LQ "
                f'file(s) no GT image.{_pair_hint(missing_lq, extra_lq)}'
                f'{listed([f"missing LQ {p}" for p in missing_lq] + [f"extra LQ {p}" for p in extra_lq])}')
        if not check_files:
            return None
        gt = _disk_sizes(gt_root, gt_names, f'{where}:dataroot_gt')
        lq = _disk_sizes(lq_root, list(partner.values()), f'{where}:{lq_key}')
        pairs = [((osp.join(gt_root, g), gt[g]), (osp.join(lq_root, partner[g]), lq[partner[g]])) for g in gt_names]
    gt_size = dataset_opt.get('gt_size') if phase == 'train' else None
    raise_problems(f'{where}:{lq_key}: GT/LQ sizes do not match scale {scale}',
                   [p for p in (_size_problem(phase, scale, gt_size, g, q) for g, q in pairs) if p])
    return _largest(dict(g for g, _ in pairs))


def _check_multiscale_dataset(phase_key, dataset_opt):
    """Check a ``MultiScalePairedImageDataset``: ``scales``, one LQ root per scale (``dataroots_lq``, or
    ``dataroot_lq`` for one scale), and each scale's files as a ``PairedImageDataset`` of that scale (the
    training patch of scale s is ``lq_size * s`` GT pixels)."""
    where = f'datasets:{phase_key}'
    scales = dataset_opt.get('scales')
    if not isinstance(scales, list) or not scales or not all(is_int(s) and s >= 1 for s in scales) \
            or len(set(scales)) != len(scales):
        raise CheckError(f'{where}:scales must be a list of distinct positive integers like [2, 3, 4], got {scales!r}')
    if dataset_opt.get('dataroots_lq') is not None:
        roots = dataset_opt['dataroots_lq']
        if not isinstance(roots, list) or len(roots) != len(scales):
            raise CheckError(f'{where}:dataroots_lq must list one LR folder or LMDB per scale of {scales}, '
                             f'got {roots!r}')
        keys = [f'dataroots_lq[{i}]' for i in range(len(roots))]
    elif len(scales) == 1 and isinstance(dataset_opt.get('dataroot_lq'), str):
        roots, keys = [dataset_opt['dataroot_lq']], ['dataroot_lq']
    else:
        raise CheckError(f'{where}: give dataroots_lq (one LR folder or LMDB per scale of {scales}), or '
                         'dataroot_lq for a single scale')
    if phase_key.split('_')[0] == 'train':
        if 'gt_size' in dataset_opt:
            raise CheckError(f'{where}:gt_size: use lq_size (the LR patch size) with several scales')
        if dataset_opt.get('lq_size') is None:
            raise CheckError(f'{where}:lq_size (the LR patch size, e.g. 48) is required for training')
    largest = []
    for scale, root, key in zip(scales, roots, keys):
        sub = dict(dataset_opt, dataroot_lq=root, scale=int(scale))
        if dataset_opt.get('lq_size') is not None:
            sub['gt_size'] = int(dataset_opt['lq_size']) * int(scale)
        largest.append(_check_image_dataset(phase_key, sub, int(scale), paired=True, lq_key=key))
    return max((x for x in largest if x), key=lambda x: x[1] * x[2], default=None)


def check_datasets(opt):
    """Check every dataset of ``opt['datasets']``: type registered, folders/LMDBs and files usable.

    Args:
        opt (dict): Parsed options (``scale`` already copied into each dataset by ``parse_options``).

    Returns:
        dict: ``{phase key: (name, h, w)}``, the largest image at the output size of each validation and test
        dataset whose image sizes were read.

    Raises:
        CheckError: Naming the option or file and what was expected.
    """
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.data.single_image_dataset import SingleImageDataset
    from basicsr.utils.registry import DATASET_REGISTRY
    from mrnet_arch.data.multiscale_dataset import MultiScalePairedImageDataset
    datasets = opt.get('datasets')
    if not isinstance(datasets, dict) or not datasets:
        raise CheckError(f'datasets must be a mapping of phases (train, val_1, test_1, ...), got {datasets!r}')
    largest = {}
    for phase_key, dataset_opt in datasets.items():
        if not isinstance(dataset_opt, dict):
            raise CheckError(f'datasets:{phase_key} must be a mapping, got {dataset_opt!r}')
        cls = registered(DATASET_REGISTRY, dataset_opt.get('type'), f'datasets:{phase_key}:type')
        scale = dataset_opt.get('scale', opt.get('scale', 1))
        found = None
        if isinstance(cls, type) and issubclass(cls, (PairedImageDataset, SingleImageDataset)):
            found = _check_image_dataset(phase_key, dataset_opt, scale, paired=issubclass(cls, PairedImageDataset))
        elif isinstance(cls, type) and issubclass(cls, MultiScalePairedImageDataset):
            found = _check_multiscale_dataset(phase_key, dataset_opt)
        else:
            for key, value in dataset_opt.items():
                if key.startswith('dataroot') and isinstance(value, str) and not osp.exists(value):
                    raise CheckError(f'datasets:{phase_key}:{key}: not found: {value}')
        if found and phase_key.split('_')[0] != 'train':
            largest[phase_key] = found
    return largest
