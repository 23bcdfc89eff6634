"""The option keys that BasicSR 1.4.2 and the plugin read, by section and by the class that reads them, and
``unknown_options``, which names every key of an option dict that nothing reads, with the closest known key.

BasicSR ignores a key it does not read, so a typo silently turns a setting off; under ``path:`` it is worse:
``make_exp_dirs`` creates a folder for every ``path`` key it does not know (``pretrain_netwrok_g: x.pth``
becomes a folder ``x.pth``). The tables below are read from the installed basicsr's source; each names its
source. Dataset and model keys are found by class, joining the keys of every class in the MRO: a class counts
as known when its name is in the table or it has an ``option_keys`` attribute (for a dataset, the set of keys it
adds; for a model, ``{'train': ..., 'val': ...}``). A dataset that subclasses a known one is checked with its
bases' keys (plus its ``option_keys``), so a new paired dataset needs no table entry; a dataset with no known
class in its MRO (another plugin's) is not checked, and a note says so. A model is checked only when every class
in its MRO is known (the GAN models of BasicSR read more keys than their base ``SRModel``).

This file imports only the standard library, and torch and basicsr inside functions, so it also works copied
beside ``mrnet_model.py`` into a BasicSR checkout's ``basicsr/models/``.
"""
import difflib
import inspect
import re

# basicsr/utils/options.py parse_options (read, then the keys it adds: dist, rank, world_size, auto_resume,
# is_train), basicsr/train.py (root_path, logger, val), basicsr/models/base_model.py (num_gpu, dist,
# find_unused_parameters), basicsr/models/__init__.py build_model (model_type), basicsr/models/sr_model.py
# (network_g; ``network_*`` of other models match the pattern); allow_unknown_options: this plugin.
TOP_LEVEL = {
    'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'path', 'train', 'val', 'logger',
    'dist_params', 'find_unused_parameters', 'dist', 'rank', 'world_size', 'auto_resume', 'is_train', 'root_path',
    'allow_unknown_options'
}
TOP_LEVEL_PATTERNS = (r'network_\w+', )
# basicsr/models/sr_model.py and base_model.py (pretrain_network_*, strict_load_*, param_key_*), basicsr/train.py
# load_resume_state (resume_state), and what parse_options adds (experiments_root, models, training_states, log,
# visualization, results_root). basicsr/utils/misc.py make_exp_dirs creates a folder for every other key.
PATH = {
    'pretrain_network_g', 'strict_load_g', 'param_key_g', 'resume_state', 'experiments_root', 'models',
    'training_states', 'log', 'visualization', 'results_root'
}
PATH_PATTERNS = (r'pretrain_network_\w+', r'strict_load_\w+', r'param_key_\w+')
# Every dataset: basicsr/data/__init__.py build_dataset (type, name) and build_dataloader (batch_size_per_gpu,
# num_worker_per_gpu, pin_memory, persistent_workers, prefetch_mode, num_prefetch_queue), basicsr/train.py
# (dataset_enlarge_ratio, prefetch_mode, pin_memory), parse_options (phase, scale); check_files: this plugin's
# checks (mrnet_arch/core).
DATASET_LOADER = {
    'type', 'name', 'phase', 'scale', 'batch_size_per_gpu', 'num_worker_per_gpu', 'pin_memory', 'persistent_workers',
    'prefetch_mode', 'num_prefetch_queue', 'dataset_enlarge_ratio', 'check_files'
}
_PAIRED = {
    'dataroot_gt', 'dataroot_lq', 'meta_info_file', 'io_backend', 'filename_tmpl', 'gt_size', 'use_hflip', 'use_rot',
    'mean', 'std', 'color'
}
DATASET_KEYS = {
    # basicsr/data/paired_image_dataset.py
    'PairedImageDataset': _PAIRED,
    # basicsr/data/single_image_dataset.py
    'SingleImageDataset': {'dataroot_lq', 'meta_info_file', 'io_backend', 'mean', 'std', 'color'},
    # mrnet_arch/data/multiscale_dataset.py: PairedImageDataset's keys for each scale, and its own
    'MultiScalePairedImageDataset': _PAIRED | {'scales', 'dataroots_lq', 'lq_size'},
}
# train: basicsr/models/sr_model.py init_training_settings and setup_optimizers, basicsr/train.py (total_iter,
# warmup_iter); MRNetModel and MultiScaleMRNetModel (mrnet_model.py) add theirs. val: sr_model.py
# nondist_validation (metrics, pbar, suffix), basicsr/train.py (val_freq, save_img); MRNetModel.test() reads tile
# (its keys are checked by mrnet_tiling.tile_option).
MODEL_KEYS = {
    'BaseModel': {
        'train': set(),
        'val': set()
    },
    'SRModel': {
        'train': {'ema_decay', 'pixel_opt', 'perceptual_opt', 'optim_g', 'scheduler', 'total_iter', 'warmup_iter'},
        'val': {'val_freq', 'save_img', 'suffix', 'pbar', 'metrics'}
    },
    'MRNetModel': {
        'train': {'amp', 'channels_last', 'compile', 'grad_clip', 'finite_check_freq'},
        'val': {'tile'}
    },
    'MultiScaleMRNetModel': {
        'train': {'scale_seed'},
        'val': set()
    },
}
# basicsr/train.py init_tb_loggers and basicsr/utils/logger.py MessageLogger, init_wandb_logger.
LOGGER = {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb'}
WANDB = {'project', 'resume_id'}
# basicsr/utils/dist_util.py init_dist / _init_dist_slurm (with --launcher slurm).
DIST_PARAMS = {'backend', 'port'}
# basicsr/models/base_model.py setup_schedulers: the names it accepts and the class each builds.
SCHEDULERS = {
    'MultiStepLR': 'MultiStepRestartLR',
    'MultiStepRestartLR': 'MultiStepRestartLR',
    'CosineAnnealingRestartLR': 'CosineAnnealingRestartLR'
}
# basicsr/models/base_model.py get_optimizer passes these to the torch optimizer itself.
_OPTIMIZER_POSITIONAL = ('params', )
DATASET_PHASE = re.compile(r'^(train|val|test)(_.*)?$')
ALLOW_HINT = 'pass --allow-unknown-options (or set allow_unknown_options: true) to go on with a warning'


def _registry_names(registry):
    return sorted(registry._obj_map)  # noqa: SLF001  (basicsr's Registry has no public listing)


def dataset_keys(cls, stop):
    """The option keys a dataset class reads: those of every class in its MRO (up to ``stop``) that is in
    ``DATASET_KEYS`` or has an ``option_keys`` attribute; None when no class is (another plugin's dataset). A
    subclass of a known dataset is taken to read its base's keys plus its own ``option_keys``."""
    keys, known = set(), False
    for klass in inspect.getmro(cls):
        if klass in stop or klass is object:
            break
        if klass.__name__ in DATASET_KEYS:
            keys |= DATASET_KEYS[klass.__name__]
            known = True
        if klass.__dict__.get('option_keys') is not None:
            keys |= set(klass.__dict__['option_keys'])
            known = True
    return keys if known else None


def _model_keys(cls, section):
    """The ``section`` ('train' or 'val') keys a model class reads; None when a class in its MRO is neither in
    ``MODEL_KEYS`` nor has an ``option_keys`` dict (a model subclass may read keys its bases do not, as the GAN
    models do)."""
    keys = set()
    for klass in inspect.getmro(cls):
        if klass is object:
            break
        if klass.__name__ in MODEL_KEYS:
            keys |= MODEL_KEYS[klass.__name__][section]
        elif isinstance(klass.__dict__.get('option_keys'), dict):
            keys |= set(klass.__dict__['option_keys'].get(section, ()))
        else:
            return None
    return keys


def _signature_keys(obj, skip=()):
    """``(keyword names, takes **kwargs)`` of a class or function, without ``skip``."""
    params = inspect.signature(obj).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip}
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def _hint(key, known):
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
    return f' (did you mean `{close[0]}`?)' if close else ''


class _Finder:
    """Collects unknown keys (``problems``) and sections that were not checked (``notes``)."""

    def __init__(self):
        self.problems, self.notes = [], []

    def keys(self, where, section, known, patterns=()):
        if not isinstance(section, dict):
            return
        for key in section:
            if key in known or any(re.fullmatch(p, str(key)) for p in patterns):
                continue
            self.problems.append(f'`{where}{key}`{_hint(key, known)}')

    def typed(self, where, section, names, what, build, skip=('type', )):
        """Check a ``{type: ..., args}`` section against the signature ``build(type)`` returns (None: the type
        is not one of ``names``)."""
        if not isinstance(section, dict) or section.get('type') is None:
            return
        target = build(section['type'])
        if target is None:
            self.problems.append(f'`{where}type: {section["type"]}` is no {what}{_hint(section["type"], names)}')
            return
        known, takes_kwargs = _signature_keys(target, skip=_OPTIMIZER_POSITIONAL + ('optimizer', 'img', 'img2'))
        if not takes_kwargs:
            self.keys(where, section, known | set(skip))


def unknown_options(opt):
    """Every key of ``opt`` that neither BasicSR nor the plugin reads, with the closest known key.

    Args:
        opt (dict): Options, as written in the YAML or as ``parse_options`` returns them.

    Returns:
        tuple[list[str], list[str]]: The unknown keys as ``\\`section:key\\``` with a suggestion, and notes on
        sections that were not checked (datasets or models of other plugins).
    """
    import torch

    from basicsr.models import lr_scheduler
    from basicsr.utils.registry import DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    find = _Finder()
    if not isinstance(opt, dict):
        return find.problems, find.notes
    find.keys('', opt, TOP_LEVEL, TOP_LEVEL_PATTERNS)
    find.keys('path:', opt.get('path'), PATH, PATH_PATTERNS)
    logger = opt.get('logger')
    find.keys('logger:', logger, LOGGER)
    find.keys('logger:wandb:', (logger or {}).get('wandb') if isinstance(logger, dict) else None, WANDB)
    find.keys('dist_params:', opt.get('dist_params'), DIST_PARAMS)
    datasets = opt.get('datasets')
    for phase, dataset in (datasets.items() if isinstance(datasets, dict) else ()):
        if not DATASET_PHASE.match(str(phase)):
            find.problems.append(f'`datasets:{phase}` is no phase: use train, val, test, or val_<n>, test_<n>'
                                 f'{_hint(phase, ["train", "val", "test"])}')
        if not isinstance(dataset, dict) or dataset.get('type') not in DATASET_REGISTRY._obj_map:  # noqa: SLF001
            continue  # an unregistered type is named by the dataset checks
        keys = dataset_keys(DATASET_REGISTRY.get(dataset['type']), (torch.utils.data.Dataset, ))
        if keys is None:
            find.notes.append(f'datasets:{phase}: the keys of {dataset["type"]} (another plugin\'s dataset) are '
                              'not checked')
        else:
            find.keys(f'datasets:{phase}:', dataset, keys | DATASET_LOADER)
    model_type = opt.get('model_type')
    if model_type is not None and model_type not in MODEL_REGISTRY._obj_map:  # noqa: SLF001
        find.problems.append(f'`model_type: {model_type}` is no registered model'
                             f'{_hint(model_type, _registry_names(MODEL_REGISTRY))}')
        return find.problems, find.notes
    model = MODEL_REGISTRY.get(model_type) if model_type is not None else None
    known = {}
    for section in ('train', 'val'):
        known[section] = _model_keys(model, section) if model is not None else None
        if known[section] is None:
            if opt.get(section) is not None:
                find.notes.append(f'{section}: the keys that model_type {model_type} reads are not checked')
            continue
        find.keys(f'{section}:', opt.get(section), known[section])
    train, val = opt.get('train'), opt.get('val')
    if known['train'] is not None and isinstance(train, dict):
        find.typed('train:optim_g:', train.get('optim_g'), [n for n in dir(torch.optim) if n[:1].isupper()],
                   'torch.optim optimizer', lambda t: getattr(torch.optim, str(t), None))
        find.typed('train:scheduler:', train.get('scheduler'), sorted(SCHEDULERS), 'scheduler of BasicSR',
                   lambda t: getattr(lr_scheduler, SCHEDULERS[t]) if t in SCHEDULERS else None)
        for key in ('pixel_opt', 'perceptual_opt'):
            find.typed(f'train:{key}:', train.get(key), _registry_names(LOSS_REGISTRY), 'loss registered in BasicSR',
                       lambda t: LOSS_REGISTRY.get(t) if t in LOSS_REGISTRY._obj_map else None)  # noqa: SLF001
    if known['val'] is not None and isinstance(val, dict) and isinstance(val.get('metrics'), dict):
        for name, metric in val['metrics'].items():
            find.typed(
                f'val:metrics:{name}:',
                metric,
                _registry_names(METRIC_REGISTRY), 'metric registered in '
                'BasicSR',
                lambda t: METRIC_REGISTRY.get(t) if t in METRIC_REGISTRY._obj_map else None,
                skip=('type', 'better'))  # noqa: SLF001
    return find.problems, find.notes


def unknown_options_message(problems):
    """The one message for ``problems`` from ``unknown_options``."""
    return ('unknown options (BasicSR would ignore them, or create a folder for an unknown path: key): ' +
            '; '.join(problems) + f'. Fix the spelling, or {ALLOW_HINT}')
