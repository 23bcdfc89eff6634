"""The option schema: every key that BasicSR 1.4.2 and the plugin read (``OPTIONS``: its section, type, default,
meaning and reader), the key sets of each section and class drawn from it, and ``unknown_options``, which names
every key of an option dict that nothing reads, with the closest known key.

The option checks of the plugin (``mrnet_arch/preflight/checks.py``: keys, types, required keys), ``MRNetModel`` (the
key check when it is built, also in a BasicSR checkout) and the reference page ``docs/options.md`` (written by
``mrnet_arch/reports/options_doc.py``) all read this one table.

BasicSR ignores a key it does not read, so a typo silently turns a setting off; under ``path:`` it is worse:
``make_exp_dirs`` creates a folder for every ``path`` key it does not know (``pretrain_netwrok_g: x.pth``
becomes a folder ``x.pth``). The table is read from the installed basicsr's source; each group names its
source. Dataset and model keys are found by class, joining the keys of every class in the MRO: a class counts
as known when its name is in the table or it has an ``option_keys`` attribute (for a dataset, the set of keys it
adds; for a model, ``{'train': ..., 'val': ...}``). A dataset that subclasses a known one is checked with its
bases' keys (plus its ``option_keys``), so a new paired dataset needs no table entry; a dataset with no known
class in its MRO (another plugin's) is not checked, and a note says so. A model is checked only when every class
in its MRO is known (the GAN models of BasicSR read more keys than their base ``SRModel``).

This file imports only the standard library, and torch and basicsr inside functions, so it also works copied
beside ``mrnet_model.py`` into a BasicSR checkout's ``basicsr/models/``.
"""
import collections
import difflib
import inspect
import re

# The option schema: every key that BasicSR 1.4.2 or the plugin reads, as
# Option(section, key, type, default, meaning, reader, check, required).
# - section: its place in the option file ('' for the top level, 'train:optim_g', 'datasets:<phase>', ...);
# - type, default, meaning: for the reader (docs/options.md is made from this table, by
#   mrnet_arch/reports/options_doc.py);
# - reader: who reads it: basicsr files or functions, the plugin's modules, or the dataset and model classes (their
#   files are in READERS); a class name also puts the key in DATASET_KEYS or MODEL_KEYS;
# - check: the type that the plugin's option checks (mrnet_arch/preflight/checks.py check_types) require: 'int',
#   'number', 'int or auto', 'int list'; None: not checked there (some have their own check, named in meaning);
# - required: the runs ('train', 'test') that need the key: BasicSR reads it without a default, and the option checks
#   (check_structure) list it when missing. Under datasets:<phase>, 'train' means the training set; under val:, in
#   training, when val: is given. network_g:type has its own check (check_network).
Option = collections.namedtuple(
    'Option', ['section', 'key', 'type', 'default', 'meaning', 'reader', 'check', 'required'], defaults=(None, ()))
REQUIRED = 'required'
SET_BY_BASICSR = 'set by BasicSR'
PHASE = '<phase>'  # the key of a dataset under datasets: train, val, test, val_<n>, test_<n>
_DATASET = 'datasets:' + PHASE
DATASET_CLASSES = ('PairedImageDataset', 'SingleImageDataset', 'MultiScalePairedImageDataset')
MODEL_CLASSES = ('SRModel', 'MRNetModel', 'MultiScaleMRNetModel')
READERS = {
    'PairedImageDataset': 'basicsr/data/paired_image_dataset.py',
    'SingleImageDataset': 'basicsr/data/single_image_dataset.py',
    'MultiScalePairedImageDataset': 'mrnet_arch/data/multiscale_dataset.py',
    'SRModel': 'basicsr/models/sr_model.py',
    'MRNetModel': 'mrnet_arch/models/mrnet_model.py',
    'MultiScaleMRNetModel': 'mrnet_arch/models/mrnet_model.py',
}
_OPTIONS_PY = 'basicsr/utils/options.py parse_options'
_TRAIN_PY = 'basicsr/train.py'
_BASE_MODEL = 'basicsr/models/base_model.py'
_LOADER = 'basicsr/data/__init__.py build_dataloader'
_CHECKS = 'mrnet_arch/preflight/checks.py'
_IMAGES = ('PairedImageDataset', 'SingleImageDataset', 'MultiScalePairedImageDataset')
_PAIRS = ('PairedImageDataset', 'MultiScalePairedImageDataset')
_BOTH = ('train', 'test')
OPTIONS = (
    # the top level: basicsr/utils/options.py parse_options (and the keys it adds), basicsr/train.py,
    # basicsr/models/__init__.py build_model, base_model.py; network_* of other models match TOP_LEVEL_PATTERNS
    Option('', 'name', 'str', REQUIRED, 'the experiment: its folders are experiments/<name> and results/<name>',
           (_OPTIONS_PY, _TRAIN_PY), None, _BOTH),
    Option('', 'model_type', 'str', REQUIRED, 'the registered model class: MRNetModel, MultiScaleMRNetModel, SRModel',
           ('basicsr/models/__init__.py build_model', ), None, _BOTH),
    Option('', 'num_gpu', 'int or auto', REQUIRED, 'GPUs to use; 0: the CPU; auto: every visible GPU',
           (_OPTIONS_PY, _BASE_MODEL), 'int or auto', _BOTH),
    Option('', 'network_g', 'mapping', REQUIRED, 'the network: its arch `type` and arguments (section network_g)',
           ('basicsr/models/sr_model.py', ), None, _BOTH),
    Option('', 'datasets', 'mapping', REQUIRED, 'one dataset per phase (section datasets:<phase>)',
           (_OPTIONS_PY, _TRAIN_PY), None, _BOTH),
    Option('', 'path', 'mapping', REQUIRED, 'weights to load, a state to resume, and the output folders (section path)',
           (_OPTIONS_PY, ), None, _BOTH),
    Option('', 'scale', 'int', 'none', 'the upscaling factor; copied into every dataset', (_OPTIONS_PY, ), 'int'),
    Option('', 'manual_seed', 'int', 'random', 'the seed of the random number generators (plus the rank)',
           (_OPTIONS_PY, _TRAIN_PY)),
    Option('', 'train', 'mapping', 'none', 'training settings (section train); needed by training', (_TRAIN_PY, )),
    Option('', 'val', 'mapping', 'none', 'validation during training, and testing (section val)', (_TRAIN_PY, )),
    Option('', 'logger', 'mapping', 'none', 'logging and checkpoint frequency (section logger); needed by training',
           (_TRAIN_PY, )),
    Option('', 'dist_params', 'mapping', 'none', 'distributed training settings (section dist_params)',
           (_OPTIONS_PY, )),
    Option('', 'find_unused_parameters', 'bool', 'false', "DistributedDataParallel's find_unused_parameters",
           (_BASE_MODEL, )),
    Option('', 'allow_unknown_options', 'bool', 'false',
           'unknown keys are a warning instead of an error (as `--allow-unknown-options`)', (_CHECKS, 'MRNetModel')),
    Option('', 'dist', 'bool', SET_BY_BASICSR, 'whether the run is distributed (from --launcher)', (_OPTIONS_PY, )),
    Option('', 'rank', 'int', SET_BY_BASICSR, 'the rank of this process', (_OPTIONS_PY, )),
    Option('', 'world_size', 'int', SET_BY_BASICSR, 'the number of processes', (_OPTIONS_PY, )),
    Option('', 'auto_resume', 'bool', SET_BY_BASICSR, 'from --auto_resume', (_OPTIONS_PY, )),
    Option('', 'is_train', 'bool', SET_BY_BASICSR, 'whether the run trains', (_OPTIONS_PY, )),
    Option('', 'root_path', 'str', SET_BY_BASICSR, 'the folder that holds experiments/ and results/', (_TRAIN_PY, )),
    # path: basicsr/models/sr_model.py and base_model.py (pretrain_network_*, strict_load_*, param_key_*: one of each
    # per network_*, PATH_PATTERNS), basicsr/train.py load_resume_state (resume_state), and what parse_options adds.
    # basicsr/utils/misc.py make_exp_dirs creates a folder for every other key.
    Option('path', 'pretrain_network_g', 'file', 'none', 'weights to start network_g from (.pth or .safetensors)',
           ('basicsr/models/sr_model.py', 'MRNetModel')),
    Option('path', 'strict_load_g', 'bool', 'true', 'the weights must hold every tensor of network_g and no other',
           ('basicsr/models/sr_model.py', )),
    Option('path', 'param_key_g', 'str', 'params', 'the weights in the file to load: params or params_ema',
           ('basicsr/models/sr_model.py', )),
    Option('path', 'resume_state', 'file', 'none', 'a training state (<iter>.state) to resume from',
           (_TRAIN_PY + ' load_resume_state', )),
    Option('path', 'experiments_root', 'folder', SET_BY_BASICSR, 'experiments/<name> (training)', (_OPTIONS_PY, )),
    Option('path', 'models', 'folder', SET_BY_BASICSR, 'where checkpoints net_g_<iter>.pth go', (_OPTIONS_PY, )),
    Option('path', 'training_states', 'folder', SET_BY_BASICSR, 'where training states <iter>.state go',
           (_OPTIONS_PY, )),
    Option('path', 'log', 'folder', SET_BY_BASICSR, 'where the log goes', (_OPTIONS_PY, )),
    Option('path', 'visualization', 'folder', SET_BY_BASICSR, 'where output images go', (_OPTIONS_PY, )),
    Option('path', 'results_root', 'folder', SET_BY_BASICSR, 'results/<name> (testing)', (_OPTIONS_PY, )),
    # every dataset: basicsr/data/__init__.py build_dataset (type, name) and build_dataloader, basicsr/train.py,
    # parse_options (phase, scale), the plugin's checks (check_files); then the keys of each dataset class:
    # basicsr/data/paired_image_dataset.py, single_image_dataset.py, mrnet_arch/data/multiscale_dataset.py
    Option(_DATASET, 'name', 'str', REQUIRED, 'the name of the set in logs and result folders',
           ('basicsr/data/__init__.py build_dataset', ), None, _BOTH),
    Option(_DATASET, 'type', 'str', REQUIRED,
           'the registered dataset class: PairedImageDataset, SingleImageDataset, MultiScalePairedImageDataset',
           ('basicsr/data/__init__.py build_dataset', ), None, _BOTH),
    Option(_DATASET, 'batch_size_per_gpu', 'int', REQUIRED + ' (training set)', 'the batch size of each process',
           (_LOADER, _TRAIN_PY), 'int', ('train', )),
    Option(_DATASET, 'num_worker_per_gpu', 'int', REQUIRED + ' (training set)', 'data loader workers of each process',
           (_LOADER, ), 'int', ('train', )),
    Option(_DATASET, 'dataset_enlarge_ratio', 'int', '1', 'the training set is sampled this many times an epoch',
           (_TRAIN_PY, ), 'int'),
    Option(_DATASET, 'pin_memory', 'bool', 'false', "the DataLoader's pin_memory", (_LOADER, _TRAIN_PY)),
    Option(_DATASET, 'persistent_workers', 'bool', 'false', "the DataLoader's persistent_workers", (_LOADER, )),
    Option(_DATASET, 'prefetch_mode', 'str', 'none', 'none, cpu or cuda: prefetch batches', (_LOADER, _TRAIN_PY)),
    Option(_DATASET, 'num_prefetch_queue', 'int', '1', 'batches to prefetch with prefetch_mode cpu', (_LOADER, )),
    Option(_DATASET, 'phase', 'str', SET_BY_BASICSR, 'train, val or test, from the key', (_OPTIONS_PY, )),
    Option(_DATASET, 'scale', 'int', SET_BY_BASICSR, 'the top-level scale', (_OPTIONS_PY, )),
    Option(_DATASET, 'check_files', 'bool', 'true',
           'false: the option checks skip the per-file checks of this set (sizes, pairs, damaged files)',
           ('mrnet_arch/preflight/dataset_checks.py', )),
    Option(_DATASET, 'dataroot_gt', 'folder', 'none', 'the high-resolution images: a folder or an LMDB', _PAIRS),
    Option(_DATASET, 'dataroot_lq', 'folder', 'none', 'the low-resolution images: a folder or an LMDB', _IMAGES),
    Option(_DATASET, 'io_backend', 'mapping', 'none', 'how images are read: {type: disk} or {type: lmdb}', _IMAGES),
    Option(_DATASET, 'meta_info_file', 'file', 'none', 'a list of the image names to use (disk)', _IMAGES),
    Option(_DATASET, 'filename_tmpl', 'str', '{}',
           "the LQ file name from the GT one, e.g. '{}x2' pairs 0001.png with 0001x2.png", _PAIRS),
    Option(_DATASET, 'gt_size', 'int', 'none: needed for training', 'the side of the GT training patch (pixels)',
           _PAIRS, 'int'),
    Option(_DATASET, 'use_hflip', 'bool', 'none: needed for training', 'random horizontal flips', _PAIRS),
    Option(_DATASET, 'use_rot', 'bool', 'none: needed for training', 'random rotations by 90 degrees', _PAIRS),
    Option(_DATASET, 'mean', 'list', 'none', 'per-channel mean to subtract', _IMAGES),
    Option(_DATASET, 'std', 'list', 'none', 'per-channel standard deviation to divide by', _IMAGES),
    Option(_DATASET, 'color', 'str', 'none', 'y: use the Y channel only', _IMAGES),
    Option(_DATASET, 'scales', 'int list', 'none: required', 'the scales of the set, e.g. [2, 3, 4]',
           ('MultiScalePairedImageDataset', ), 'int list'),
    Option(_DATASET, 'dataroots_lq', 'folder list', 'none',
           'one LR folder or LMDB per scale (dataroot_lq may serve for a single scale)',
           ('MultiScalePairedImageDataset', )),
    Option(_DATASET, 'lq_size', 'int', 'none: needed for training',
           'the side of the LR training patch (pixels); the GT patch is lq_size * scale',
           ('MultiScalePairedImageDataset', ), 'int'),
    Option(_DATASET + ':io_backend', 'type', 'str', 'none: required by the checks', 'disk or lmdb',
           ('basicsr/utils/file_client.py', 'mrnet_arch/preflight/dataset_checks.py')),
    # network_g: the arch's own arguments besides type (checked against its signature by mrnet_arch/preflight/checks.py)
    Option('network_g', 'type', 'str', REQUIRED, 'the registered arch: MRNet, MultiScaleMRNet, or any other',
           ('basicsr/archs/__init__.py build_network', ), None, _BOTH),
    # train: basicsr/models/sr_model.py init_training_settings and setup_optimizers, basicsr/train.py (total_iter,
    # warmup_iter), basicsr/utils/logger.py MessageLogger; MRNetModel and MultiScaleMRNetModel add theirs
    Option('train', 'total_iter', 'int', REQUIRED, 'the iterations of the training', (_TRAIN_PY, 'SRModel'), 'int',
           ('train', )),
    Option('train', 'warmup_iter', 'int', '-1', 'iterations of linear learning-rate warm-up; -1: none', (_TRAIN_PY, ),
           'int'),
    Option('train', 'ema_decay', 'number', '0', 'keep an exponential moving average of the weights (params_ema) '
           'with this decay; 0: none', ('SRModel', ), 'number'),
    Option('train', 'optim_g', 'mapping', REQUIRED, 'the optimizer (section train:optim_g)', ('SRModel', )),
    Option('train', 'scheduler', 'mapping', REQUIRED, 'the learning-rate schedule (section train:scheduler)',
           ('SRModel', )),
    Option('train', 'pixel_opt', 'mapping', 'none', 'the pixel loss (section train:pixel_opt)', ('SRModel', )),
    Option('train', 'perceptual_opt', 'mapping', 'none', 'the perceptual loss (section train:perceptual_opt)',
           ('SRModel', )),
    Option('train', 'amp', 'str', 'none', 'bf16 or fp16: autocast (bf16 also on the CPU); fp32 or none: off',
           ('MRNetModel', )),
    Option('train', 'channels_last', 'bool', 'false', 'the network and its input in channels_last memory format',
           ('MRNetModel', )),
    Option(
        'train', 'compile', 'bool or str', 'none',
        'torch.compile the training forward: true (default), reduce-overhead, max-autotune, '
        'max-autotune-no-cudagraphs', ('MRNetModel', )),
    Option('train', 'grad_clip', 'number', 'none', 'clip the gradients to this total L2 norm (> 0); none: off',
           ('MRNetModel', )),
    Option('train', 'finite_check_freq', 'int', '1',
           'read the loss on the host every N iterations (and at every save) to stop on NaN or inf (>= 1)',
           ('MRNetModel', )),
    Option('train', 'scale_seed', 'int', '0', 'the seed of the schedule of scales', ('MultiScaleMRNetModel', )),
    # train:optim_g: basicsr/models/sr_model.py setup_optimizers; every other key is an argument of the optimizer
    Option('train:optim_g', 'type', 'str', REQUIRED, 'a torch.optim optimizer: Adam, AdamW, SGD, ...',
           ('basicsr/models/sr_model.py', ), None, ('train', )),
    Option('train:optim_g', 'lr', 'number', 'none', 'the learning rate (also checked in every train:optim_*)',
           ('torch.optim', ), 'number'),
    Option('train:optim_g', 'weight_decay', 'number', '0', 'weight decay', ('torch.optim', )),
    Option('train:optim_g', 'betas', 'list', '[0.9, 0.999]', "Adam's betas", ('torch.optim', )),
    Option('train:optim_g', 'eps', 'number', '1e-8', "Adam's eps", ('torch.optim', )),
    # train:scheduler: basicsr/models/base_model.py setup_schedulers, basicsr/models/lr_scheduler.py
    Option('train:scheduler', 'type', 'str', REQUIRED, 'MultiStepLR, MultiStepRestartLR or CosineAnnealingRestartLR',
           (_BASE_MODEL, ), None, ('train', )),
    Option('train:scheduler', 'milestones', 'int list', 'none: required by MultiStep*',
           'iterations at which the learning rate is multiplied by gamma', ('basicsr/models/lr_scheduler.py', ),
           'int list'),
    Option('train:scheduler', 'gamma', 'number', '0.1', 'the factor at each milestone',
           ('basicsr/models/lr_scheduler.py', )),
    Option('train:scheduler', 'periods', 'int list', 'none: required by CosineAnnealingRestartLR',
           'the iterations of each cosine cycle', ('basicsr/models/lr_scheduler.py', ), 'int list'),
    Option('train:scheduler', 'restart_weights', 'list', '[1]', 'the learning-rate factor of each restart',
           ('basicsr/models/lr_scheduler.py', )),
    # train:pixel_opt, train:perceptual_opt: basicsr/losses build_loss; every other key is an argument of the loss
    Option('train:pixel_opt', 'type', 'str', 'none: required', 'a registered loss: L1Loss, MSELoss, CharbonnierLoss',
           ('basicsr/losses/__init__.py build_loss', )),
    Option('train:pixel_opt', 'loss_weight', 'number', '1.0', 'the weight of the loss', ('basicsr/losses', )),
    Option('train:pixel_opt', 'reduction', 'str', 'mean', 'mean, sum or none', ('basicsr/losses', )),
    Option('train:perceptual_opt', 'type', 'str', 'none: required', 'a registered loss: PerceptualLoss',
           ('basicsr/losses/__init__.py build_loss', )),
    # val: basicsr/train.py (val_freq, save_img), basicsr/models/sr_model.py nondist_validation (metrics, pbar,
    # suffix); MRNetModel.test() reads tile (mrnet_tiling.py)
    Option('val', 'val_freq', 'int', REQUIRED + ' in training', 'validate every N iterations', (_TRAIN_PY, ), 'int',
           ('train', )),
    Option(
        'val',
        'save_img',
        'bool',
        REQUIRED,
        'write the output images under path:visualization', (_TRAIN_PY, ),
        required=_BOTH),
    Option('val', 'suffix', 'str', 'none', 'the suffix of saved image names (else the experiment name)', ('SRModel', )),
    Option('val', 'pbar', 'bool', 'false', 'show a progress bar', ('SRModel', )),
    Option('val', 'metrics', 'mapping', 'none', 'the metrics, by name (section val:metrics:<name>)', ('SRModel', )),
    Option('val', 'tile', 'mapping', 'none', 'evaluate in tiles (section val:tile)', ('MRNetModel', )),
    # val:tile: mrnet_arch/models/mrnet_tiling.py tile_option (its own check names a bad value)
    Option('val:tile', 'tile_size', 'int', 'none: from the budget', 'tiles of N x N input pixels (>= 1)',
           ('mrnet_arch/models/mrnet_tiling.py', )),
    Option('val:tile', 'tile_pad', 'int', "MRNet's receptive radius",
           'input pixels added on every side of a tile (>= 0); the default gives the untiled output',
           ('mrnet_arch/models/mrnet_tiling.py', )),
    Option('val:tile', 'max_memory', 'size', '$MRNET_MAX_MEMORY, else half the memory available',
           'the memory budget of a forward, such as 2G; tiles are chosen to fit (MRNet only; not with tile_size)',
           ('mrnet_arch/models/mrnet_tiling.py', )),
    # val:metrics:<name>: basicsr/metrics calculate_metric; better: basicsr/models/base_model.py; every other key is
    # an argument of the metric function
    Option('val:metrics:<name>', 'type', 'str', REQUIRED, 'a registered metric: calculate_psnr, calculate_ssim',
           ('basicsr/metrics/__init__.py calculate_metric', )),
    Option('val:metrics:<name>', 'crop_border', 'int', REQUIRED, 'pixels cut from each border before measuring',
           ('basicsr/metrics', )),
    Option('val:metrics:<name>', 'test_y_channel', 'bool', 'false', 'measure on the Y channel', ('basicsr/metrics', )),
    Option('val:metrics:<name>', 'better', 'str', 'higher', 'higher or lower: which values are better',
           (_BASE_MODEL, )),
    # logger: basicsr/train.py init_tb_loggers, basicsr/utils/logger.py MessageLogger and init_wandb_logger
    Option('logger', 'print_freq', 'int', REQUIRED + ' in training', 'log every N iterations',
           ('basicsr/utils/logger.py', _TRAIN_PY), 'int', ('train', )),
    Option('logger', 'save_checkpoint_freq', 'int', REQUIRED + ' in training',
           'save a checkpoint and a training state every N iterations', (_TRAIN_PY, ), 'int', ('train', )),
    Option('logger', 'use_tb_logger', 'bool', REQUIRED + ' in training', 'write TensorBoard logs to tb_logger/<name>',
           ('basicsr/utils/logger.py', _TRAIN_PY), None, ('train', )),
    Option('logger', 'wandb', 'mapping', 'none', 'Weights & Biases logging (section logger:wandb)', (_TRAIN_PY, )),
    Option('logger:wandb', 'project', 'str', 'none', 'the wandb project; none: off', ('basicsr/utils/logger.py', )),
    Option('logger:wandb', 'resume_id', 'str', 'none', 'the wandb run to resume', ('basicsr/utils/logger.py', )),
    # dist_params: basicsr/utils/dist_util.py init_dist / _init_dist_slurm (with --launcher slurm)
    Option('dist_params', 'backend', 'str', 'nccl', 'the torch.distributed backend: nccl or gloo',
           ('basicsr/utils/dist_util.py', )),
    Option('dist_params', 'port', 'int', '29500', 'the master port (--launcher slurm)',
           ('basicsr/utils/dist_util.py', )),
)
# Notes on sections, for docs/options.md
SECTION_NOTES = {
    '':
    'Other networks of a model are `network_<name>` (such as network_d), each with its `path` keys.',
    'path': ('For every network_<name>: pretrain_network_<name>, strict_load_<name>, param_key_<name>. BasicSR '
             'creates a folder for every other key of path:.'),
    _DATASET: ('<phase> is train, val or test, or val_<n>, test_<n> for more than one. The loader keys '
               'apply to every dataset; the others to the dataset classes named. Keys of datasets of other '
               'plugins are not checked.'),
    'network_g': ('The other keys are the arguments of the arch class: the option checks compare them with its '
                  'signature (names, types of the defaults) and build the network once.'),
    'train':
    'The keys of the model classes named, and of every model class that subclasses them.',
    'train:optim_g': ('The other keys are the arguments of the torch.optim class named by type, checked against its '
                      'signature. Other optimizers (train:optim_<name>) have the same keys.'),
    'train:scheduler':
    'The other keys are the arguments of the scheduler class, checked against its signature.',
    'train:pixel_opt':
    'The other keys are the arguments of the loss class named by type, checked against its signature.',
    'train:perceptual_opt': ('The other keys are the arguments of the loss class named by type, checked against its '
                             'signature.'),
    'val:tile':
    'See docs/inference.md; MRNetModel checks these when it is built.',
    'val:metrics:<name>': ('One entry per metric, named as you like. The other keys are the arguments of the metric '
                           'function named by type, checked against its signature.'),
}


def section_keys(section, reader=None):
    """The keys of ``section`` in ``OPTIONS`` (in table order), of one ``reader`` when given."""
    return tuple(o.key for o in OPTIONS if o.section == section and (reader is None or reader in o.reader))


def option(section, key):
    """The ``Option`` of ``key`` in ``section``."""
    for entry in OPTIONS:
        if entry.section == section and entry.key == key:
            return entry
    raise KeyError(f'{section}:{key}')


# The key sets of the check, from OPTIONS
TOP_LEVEL = set(section_keys(''))
TOP_LEVEL_PATTERNS = (r'network_\w+', )
PATH = set(section_keys('path'))
PATH_PATTERNS = (r'pretrain_network_\w+', r'strict_load_\w+', r'param_key_\w+')
DATASET_LOADER = {o.key for o in OPTIONS if o.section == _DATASET and not set(o.reader) & set(DATASET_CLASSES)}
DATASET_KEYS = {cls: set(section_keys(_DATASET, cls)) for cls in DATASET_CLASSES}
# a key of train: or val: that no model class reads is read by the training loop: it counts as SRModel's
MODEL_KEYS = {'BaseModel': {'train': set(), 'val': set()}}
MODEL_KEYS.update({
    cls: {
        section: {
            o.key
            for o in OPTIONS
            if o.section == section and (cls in o.reader or cls == 'SRModel' and not set(o.reader) & set(MODEL_CLASSES))
        }
        for section in ('train', 'val')
    }
    for cls in MODEL_CLASSES
})
LOGGER = set(section_keys('logger'))
WANDB = set(section_keys('logger:wandb'))
DIST_PARAMS = set(section_keys('dist_params'))
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


def registry_lookup(registry, name):
    """What ``registry.get(name)`` returns, or None where it would fail, without its message: BasicSR falls back
    to ``<name>_basicsr``, the name under which it registers its copy of code that another package registers too."""
    found = registry._obj_map  # noqa: SLF001
    return found.get(name, found.get(f'{name}_basicsr')) if isinstance(name, str) else None


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
        dataset_cls = registry_lookup(DATASET_REGISTRY, dataset.get('type')) if isinstance(dataset, dict) else None
        if dataset_cls is None:
            continue  # an unregistered type is named by the dataset checks
        keys = dataset_keys(dataset_cls, (torch.utils.data.Dataset, ))
        if keys is None:
            find.notes.append(f'datasets:{phase}: the keys of {dataset["type"]} (another plugin\'s dataset) are '
                              'not checked')
        else:
            find.keys(f'datasets:{phase}:', dataset, keys | DATASET_LOADER)
    model_type = opt.get('model_type')
    model = registry_lookup(MODEL_REGISTRY, model_type) if model_type is not None else None
    if model_type is not None and model is None:
        find.problems.append(f'`model_type: {model_type}` is no registered model'
                             f'{_hint(model_type, _registry_names(MODEL_REGISTRY))}')
        return find.problems, find.notes
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
                       lambda t: registry_lookup(LOSS_REGISTRY, t))
    if known['val'] is not None and isinstance(val, dict) and isinstance(val.get('metrics'), dict):
        for name, metric in val['metrics'].items():
            find.typed(
                f'val:metrics:{name}:',
                metric,
                _registry_names(METRIC_REGISTRY), 'metric registered in '
                'BasicSR',
                lambda t: registry_lookup(METRIC_REGISTRY, t),
                skip=('type', 'better'))
    return find.problems, find.notes


def unknown_options_message(problems):
    """The one message for ``problems`` from ``unknown_options``."""
    return ('unknown options (BasicSR would ignore them, or create a folder for an unknown path: key): ' +
            '; '.join(problems) + f'. Fix the spelling, or {ALLOW_HINT}')
