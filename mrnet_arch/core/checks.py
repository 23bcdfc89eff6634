"""Checks of a parsed BasicSR option dict, run by ``mrnet train`` / ``mrnet test`` before BasicSR builds
anything, so that a bad option or a bad file stops the run at once with a message that names the option or
the file and says what was expected, instead of a traceback from a DataLoader worker hours later.

What is checked (``check_options``):

- option types: ``scale``, iteration counts and frequencies, learning rates, dataset sizes (a common trap:
  PyYAML reads ``2e-4`` as the *string* '2e-4'; write ``2.0e-4`` or ``!!float 2e-4``);
- ``network_g`` (and any other ``network_*``): the ``type`` is registered, every argument is one the arch
  accepts (the error lists the valid ones, from ``inspect.signature``), values have the type of the
  argument's default, and the arch can be built;
- ``path: pretrain_network_*``: the file exists, loads, and its tensors fit the configured arch (names the
  file and the expected vs found shapes: weights of another scale or arch are caught here);
- datasets (``PairedImageDataset``, ``SingleImageDataset``, ``MultiScalePairedImageDataset`` and subclasses;
  a multi-scale set is checked as one paired set per scale, its LQ roots named ``dataroots_lq[i]``,
  with the LR patch ``lq_size``): the folders, LMDBs
  (``data.mdb``, ``meta_info.txt``, every key present) and ``meta_info_file`` exist; a folder is not empty
  and holds only images; every GT image has its LQ partner (``filename_tmpl``); images open and are not
  cut short (PNG ``IEND`` / JPEG end marker); GT size is ``scale`` times the LQ size (exactly for training,
  at most ``scale - 1`` pixels more for validation and test, where BasicSR crops GT), and LQ images are at
  least ``gt_size / scale`` for training. Sizes come from image headers (disk; upright: EXIF orientations
  5-8 swap width and height, as the loaders turn such images) or ``meta_info.txt`` (LMDB), so no image is
  decoded. ``check_files: false`` in a dataset's options skips the per-file part.
"""
import difflib
import inspect
import os
import re
from os import path as osp

from mrnet_arch.core.images import IMAGE_EXTENSIONS, image_size
from mrnet_arch.models.mrnet_model import train_option_problems

MAX_LISTED = 5


class CheckError(ValueError):
    """An option or an input file is not what the pipeline expects; the message says which and why."""


def _listed(items):
    """At most ``MAX_LISTED`` items as text, with a count of the rest."""
    items = list(items)
    text = '\n  '.join(str(i) for i in items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        text += f'\n  ... and {len(items) - MAX_LISTED} more'
    return '\n  ' + text


def _raise_problems(title, problems):
    """Raise a ``CheckError`` listing ``problems`` under ``title`` if there are any."""
    if problems:
        raise CheckError(f'{title}:{_listed(problems)}')


# ----------------------------------------------------------------------------------------------- types


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value):
    return _is_number(value) and float(value).is_integer()


def _type_problem(where, value, kind):
    """A message if ``value`` is not of ``kind`` ('int' or 'number'), else None."""
    ok = _is_int(value) if kind == 'int' else _is_number(value)
    if ok:
        return None
    hint = ''
    if isinstance(value, str):
        try:
            float(value)
            hint = f' (YAML read it as text: write it with a decimal point, like 2.0e-4, or as !!float {value})'
        except ValueError:
            pass
    expected = 'an integer' if kind == 'int' else 'a number'
    return f'{where} must be {expected}, got {value!r} ({type(value).__name__}){hint}'


def _get(opt, keys):
    for key in keys:
        if not isinstance(opt, dict) or key not in opt:
            return None
        opt = opt[key]
    return opt


_TYPED_OPTIONS = [
    (('scale', ), 'int'),
    (('train', 'total_iter'), 'int'),
    (('train', 'warmup_iter'), 'int'),
    (('train', 'ema_decay'), 'number'),
    (('logger', 'print_freq'), 'int'),
    (('logger', 'save_checkpoint_freq'), 'int'),
    (('val', 'val_freq'), 'int'),
]
_TYPED_DATASET_OPTIONS = [('batch_size_per_gpu', 'int'), ('num_worker_per_gpu', 'int'), ('gt_size', 'int'),
                          ('lq_size', 'int'), ('dataset_enlarge_ratio', 'int')]


def check_types(opt):
    """Check the types of the numeric options BasicSR uses.

    Args:
        opt (dict): Parsed options.

    Raises:
        CheckError: Listing every option of the wrong type.
    """
    problems = []
    for keys, kind in _TYPED_OPTIONS:
        value = _get(opt, keys)
        if value is not None:
            problems.append(_type_problem(':'.join(keys), value, kind))
    num_gpu = opt.get('num_gpu')
    if num_gpu is not None and num_gpu != 'auto':
        problems.append(_type_problem('num_gpu', num_gpu, 'int'))
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        for key, kind in _TYPED_DATASET_OPTIONS:
            if isinstance(dataset_opt, dict) and dataset_opt.get(key) is not None:
                problems.append(_type_problem(f'datasets:{phase}:{key}', dataset_opt[key], kind))
        scales = dataset_opt.get('scales') if isinstance(dataset_opt, dict) else None
        if scales is not None and not isinstance(scales, list):
            problems.append(f'datasets:{phase}:scales must be a list of integers like [2, 3, 4], got {scales!r}')
        for i, value in enumerate(scales if isinstance(scales, list) else []):
            problems.append(_type_problem(f'datasets:{phase}:scales[{i}]', value, 'int'))
    problems += train_option_problems(opt.get('train') or {})  # MRNetModel's own rules, checked early
    for name, sub in (opt.get('train') or {}).items():
        if isinstance(sub, dict) and 'lr' in sub and (name.startswith('optim_')):
            problems.append(_type_problem(f'train:{name}:lr', sub['lr'], 'number'))
        if isinstance(sub, dict) and name == 'scheduler':
            for key in ('milestones', 'periods'):
                for i, value in enumerate(sub.get(key) or []):
                    problems.append(_type_problem(f'train:scheduler:{key}[{i}]', value, 'int'))
    _raise_problems('Options of the wrong type', [p for p in problems if p])


# ---------------------------------------------------------------------------------------------- network


def _registered(registry, name, what):
    """The object registered as ``name``, or a ``CheckError`` listing close names."""
    names = sorted(registry._obj_map)  # noqa: SLF001  (basicsr's Registry has no public listing)
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=3)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        raise CheckError(f'{what} {name!r} is not registered in BasicSR.{hint} Registered: {", ".join(names)}')
    return registry.get(name)


def _default_type_ok(value, default):
    """Whether ``value`` has the type of ``default`` (ints pass for floats, lists for tuples)."""
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return _is_int(value) and isinstance(value, int)
    if isinstance(default, float):
        return _is_number(value)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def check_network(opt, key='network_g'):
    """Check ``opt[key]`` against the signature of its registered arch and build it.

    Args:
        opt (dict): Parsed options.
        key (str): The network option, e.g. 'network_g'.

    Returns:
        torch.nn.Module: The built network (CPU), for ``check_pretrained``.

    Raises:
        CheckError: For an unknown type, an unknown or missing argument (listing the valid ones), a value
            of the wrong type, or an arch that fails to build.
    """
    from basicsr.utils.registry import ARCH_REGISTRY
    net_opt = opt.get(key)
    if not isinstance(net_opt, dict) or 'type' not in net_opt:
        raise CheckError(f'{key} must be a mapping with a "type" (an arch name), got {net_opt!r}')
    arch_type = net_opt['type']
    cls = _registered(ARCH_REGISTRY, arch_type, f'{key}:type')
    params = inspect.signature(cls).parameters
    named = {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
    valid = ', '.join(n if p.default is p.empty else f'{n}={p.default!r}' for n, p in named.items())
    args = {k: v for k, v in net_opt.items() if k != 'type'}
    unknown = [k for k in args if k not in named]
    if unknown and not takes_kwargs:
        raise CheckError(f'{key}: {arch_type} has no argument {", ".join(map(repr, unknown))}. '
                         f'Valid arguments: {valid}')
    missing = [n for n, p in named.items() if p.default is p.empty and n not in args]
    if missing:
        raise CheckError(f'{key}: {arch_type} needs {", ".join(missing)}. Valid arguments: {valid}')
    wrong = [
        f'{key}:{n} must be {type(named[n].default).__name__} like its default {named[n].default!r}, '
        f'got {v!r} ({type(v).__name__})' for n, v in args.items()
        if n in named and not _default_type_ok(v, named[n].default)
    ]
    _raise_problems(f'{key}: arguments of the wrong type for {arch_type}', wrong)
    try:
        return cls(**args)
    except Exception as e:  # noqa: BLE001  (any failure to build is a configuration error)
        raise CheckError(f'{key}: building {arch_type}({", ".join(f"{k}={v!r}" for k, v in args.items())}) '
                         f'failed: {type(e).__name__}: {e}') from e


# ------------------------------------------------------------------------------------------- pretrained


def check_pretrained(opt, nets):
    """Check every ``path: pretrain_network_*`` file against its built network.

    Args:
        opt (dict): Parsed options.
        nets (dict): Built networks by option key ('network_g': module), from ``check_network``.

    Raises:
        CheckError: For a missing or unreadable file (or one holding code), tensors whose shapes differ
            from the configured arch (expected vs found), or, with ``strict_load_*`` (default true),
            missing or unexpected tensors.
    """
    from mrnet_arch.core.weights import WeightsError, read_state_dict
    for option, weights in (opt.get('path') or {}).items():
        if not option.startswith('pretrain_network_') or not weights:
            continue
        net_key = option[len('pretrain_'):]
        suffix = net_key[len('network_'):]
        where = f'path:{option}'
        if not osp.isfile(weights):
            raise CheckError(f'{where}: weight file not found: {weights}')
        param_key = opt['path'].get(f'param_key_{suffix}', 'params')
        try:  # the same reader as MRNetModel.load_network: BasicSR checkpoints, plain state dicts, safetensors
            loaded, _ = read_state_dict(weights, prefer_ema=param_key == 'params_ema')
        except WeightsError as e:
            raise CheckError(f'{where}: {e}') from e
        if net_key not in nets:
            continue
        expected = nets[net_key].state_dict()
        arch = f"{opt[net_key]['type']}({', '.join(f'{k}={v}' for k, v in opt[net_key].items() if k != 'type')})"
        shapes = [
            f'{k}: expected {tuple(expected[k].shape)}, found {tuple(v.shape)}' for k, v in loaded.items()
            if k in expected and tuple(v.shape) != tuple(expected[k].shape)
        ]
        _raise_problems(
            f'{where}: {weights} does not fit {net_key} = {arch} (weights of another scale or arch?); '
            f'{len(shapes)} tensor(s) differ', shapes)
        if opt['path'].get(f'strict_load_{suffix}', True):
            missing = [k for k in expected if k not in loaded]
            unexpected = [k for k in loaded if k not in expected]
            _raise_problems(
                f'{where}: {weights} does not fit {net_key} = {arch} (another arch?): {len(missing)} tensor(s) '
                f'missing, {len(unexpected)} unexpected (set path:strict_load_{suffix}: false to load '
                'the rest)', [f'missing {k}' for k in missing] + [f'unexpected {k}' for k in unexpected])


# --------------------------------------------------------------------------------------------- datasets


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
    _raise_problems(f'{where}: {folder} holds files that are not images (move them out)', [
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
                bad.append(f'line {n}: {line.strip()!r} (expected "<key>.png (h,w,c) <level>")')
                continue
            sizes[line.split('.')[0]] = (int(m.group(1)), int(m.group(2)))
    _raise_problems(f'{where}: {osp.join(root, "meta_info.txt")} has lines basicsr cannot use', bad)
    if not sizes:
        raise CheckError(f'{where}: {osp.join(root, "meta_info.txt")} lists no images')
    env = lmdb.open(root, readonly=True, lock=False, readahead=False)
    try:
        with env.begin(write=False) as txn, txn.cursor() as cursor:
            absent = [k for k in sizes if not cursor.set_key(k.encode('ascii'))]
    finally:
        env.close()
    _raise_problems(f'{where}: keys listed in meta_info.txt but missing from {root}/data.mdb', absent)
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
    _raise_problems(f'{where}: unreadable images', problems)
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


def _check_image_dataset(phase_key, dataset_opt, scale, paired, lq_key='dataroot_lq'):
    """Check the files of a (Paired|Single)ImageDataset; see the module docstring. ``lq_key`` names the LQ
    root's option in messages (``dataroots_lq[1]`` for a scale of a multi-scale dataset)."""
    where = f'datasets:{phase_key}'
    phase = phase_key.split('_')[0]
    backend = (dataset_opt.get('io_backend') or {}).get('type')
    if backend not in ('disk', 'lmdb'):
        if backend is None:
            raise CheckError(f'{where}:io_backend:type is missing (expected disk or lmdb)')
        return  # memcached and other backends: nothing to look at here
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
            return
        gt = _lmdb_sizes(dataset_opt['dataroot_gt'], f'{where}:dataroot_gt')
        _raise_problems(f'{where}: the LQ and GT LMDBs list different keys', [
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
                _disk_sizes(lq_root, names, f'{where}:{lq_key}')
            return
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
            _raise_problems(f'{where}: files listed in {meta} but not in {gt_root}', missing)
            missing_lq = [p for p in partner.values() if not osp.isfile(osp.join(lq_root, p))]
        else:
            missing_lq = [p for p in partner.values() if p not in set(lq_names)]
        extra_lq = sorted(set(lq_names) - set(partner.values())) if meta is None else []
        if missing_lq or extra_lq:
            raise CheckError(
                f'{where}: the LQ folder {lq_root} and the GT folder {gt_root} do not pair up by name '
                f"(filename_tmpl {tmpl!r}): {len(missing_lq)} GT image(s) have no LQ file, {len(extra_lq)} LQ "
                f'file(s) no GT image.{_pair_hint(missing_lq, extra_lq)}'
                f'{_listed([f"missing LQ {p}" for p in missing_lq] + [f"extra LQ {p}" for p in extra_lq])}')
        if not check_files:
            return
        gt = _disk_sizes(gt_root, gt_names, f'{where}:dataroot_gt')
        lq = _disk_sizes(lq_root, list(partner.values()), f'{where}:{lq_key}')
        pairs = [((osp.join(gt_root, g), gt[g]), (osp.join(lq_root, partner[g]), lq[partner[g]])) for g in gt_names]
    gt_size = dataset_opt.get('gt_size') if phase == 'train' else None
    _raise_problems(f'{where}:{lq_key}: GT/LQ sizes do not match scale {scale}',
                    [p for p in (_size_problem(phase, scale, gt_size, g, q) for g, q in pairs) if p])


def _check_multiscale_dataset(phase_key, dataset_opt):
    """Check a ``MultiScalePairedImageDataset``: ``scales``, one LQ root per scale (``dataroots_lq``, or
    ``dataroot_lq`` for one scale), and each scale's files as a ``PairedImageDataset`` of that scale (the
    training patch of scale s is ``lq_size * s`` GT pixels)."""
    where = f'datasets:{phase_key}'
    scales = dataset_opt.get('scales')
    if not isinstance(scales, list) or not scales or not all(_is_int(s) and s >= 1 for s in scales) \
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
    for scale, root, key in zip(scales, roots, keys):
        sub = dict(dataset_opt, dataroot_lq=root, scale=int(scale))
        if dataset_opt.get('lq_size') is not None:
            sub['gt_size'] = int(dataset_opt['lq_size']) * int(scale)
        _check_image_dataset(phase_key, sub, int(scale), paired=True, lq_key=key)


def check_datasets(opt):
    """Check every dataset of ``opt['datasets']``: type registered, folders/LMDBs and files usable.

    Args:
        opt (dict): Parsed options (``scale`` already copied into each dataset by ``parse_options``).

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
    for phase_key, dataset_opt in datasets.items():
        if not isinstance(dataset_opt, dict):
            raise CheckError(f'datasets:{phase_key} must be a mapping, got {dataset_opt!r}')
        cls = _registered(DATASET_REGISTRY, dataset_opt.get('type'), f'datasets:{phase_key}:type')
        scale = dataset_opt.get('scale', opt.get('scale', 1))
        if isinstance(cls, type) and issubclass(cls, (PairedImageDataset, SingleImageDataset)):
            _check_image_dataset(phase_key, dataset_opt, scale, paired=issubclass(cls, PairedImageDataset))
        elif isinstance(cls, type) and issubclass(cls, MultiScalePairedImageDataset):
            _check_multiscale_dataset(phase_key, dataset_opt)
        else:
            for key, value in dataset_opt.items():
                if key.startswith('dataroot') and isinstance(value, str) and not osp.exists(value):
                    raise CheckError(f'datasets:{phase_key}:{key}: not found: {value}')


def check_options(opt):
    """All checks, in order: types, networks, pretrained weights, datasets.

    Args:
        opt (dict): Options as returned by ``basicsr.utils.options.parse_options``.

    Raises:
        CheckError: The first problem found, naming the option or file and what was expected.
    """
    check_types(opt)
    nets = {key: check_network(opt, key) for key in opt if key.startswith('network_')}
    check_pretrained(opt, nets)
    check_datasets(opt)
