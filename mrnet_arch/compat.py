"""Make PyPI basicsr 1.4.2 (the last release, 2022) work on current PyTorch / torchvision, without
editing site-packages and without changing basicsr for other code in the same process.

Two kinds of fixes:

- ``install_import_alias()`` runs when ``mrnet_arch`` is imported. It is the only change an import makes:
  ``torchvision.transforms.functional_tensor`` was removed in torchvision 0.17 and basicsr 1.4.2's
  ``basicsr/data/degradations.py`` imports ``rgb_to_grayscale`` from it, so without the alias
  ``import basicsr`` fails. It adds a module to ``sys.modules`` only when torchvision lacks it, and
  replaces nothing. Fixed on BasicSR's master branch (commit 8d56e3a, unreleased); drop when a basicsr
  release after 1.4.2 imports on current torchvision.
- ``pipeline_fixes()`` is a context manager that the plugin's own entry points (``mrnet train``,
  ``mrnet test``, ``mrnet_arch/train.py``, ``mrnet_arch/test.py``) wrap around BasicSR's
  ``train_pipeline`` / ``test_pipeline``. Inside it, and only there, basicsr functions are replaced;
  every replaced attribute is restored when the block ends. The fixes:

  1. ``basicsr.train.load_resume_state`` maps resume states onto ``torch.cuda.current_device()`` (fails
     on CPU-only machines), looks for ``--auto_resume`` states relative to the working directory, and
     picks the highest-numbered ``.state`` file even if a kill cut it short. ``load_resume_state`` below
     maps to the CPU or the current CUDA device, reads ``opt['path']['training_states']``, takes the
     newest *complete* state and loads with ``weights_only=True``; when it resumes it removes the
     ``.<name>.<random>.tmp`` files that a kill during an atomic checkpoint write left behind. In a distributed
     run every rank must find the same state (nodes that do not share the experiment folder would not): the
     ranks compare what they found and all stop with a message if it differs.
  2. ``basicsr.utils.dist_util._init_dist_pytorch`` hard-codes NCCL and ``torch.cuda.set_device``, so
     ``--launcher pytorch`` fails without GPUs. Without CUDA we use gloo; with CUDA it is unchanged.
     (``MRNetModel.model_to_device`` wraps DDP without device ids on the CPU.)
  3. ``basicsr.train.copy_opt_file`` overwrites ``experiments/<name>/<opt>.yml`` on every resume, so the
     record of the options the run started with is lost (and ``-opt`` pointing at that copy raises
     ``SameFileError``). ``copy_opt_file`` below keeps an existing copy and writes the new one beside it
     as ``<opt>_<time>.yml``, atomically.
  4. ``basicsr.utils.misc.mkdir_and_rename`` archives an existing experiment or results folder as
     ``<folder>_archived_<time>`` with a one-second time stamp; a second fresh start within the same
     second fails on the rename. ``mkdir_and_rename`` below adds a counter until the name is free.
  5. basicsr's ``PairedImageDataset`` and ``SingleImageDataset`` decode with ``imfrombytes``, which returns
     None for a file that cannot be decoded; the sample then fails with ``'NoneType' object has no
     attribute 'astype'``, naming no file. Inside the block their ``__getitem__`` re-raises any error as
     ``RuntimeError`` naming the sample's file(s) (for an LMDB: the key and the store). The option files keep
     BasicSR's own dataset types so that they run unchanged in a BasicSR checkout; there a load error reads as
     basicsr writes it. Drop when basicsr reports the path itself.
  6. BasicSR's loop resumes at the start of the saved epoch: with more than one batch per epoch, a state saved
     in the middle of an epoch (a checkpoint, or a stop on SIGTERM/SIGUSR1) makes the resumed run train the
     epoch's first batches again and differ from an uninterrupted one. Inside the block, the resumed epoch's
     ``EnlargedSampler`` leaves out the samples already trained on (the sampler's order depends on the epoch
     alone), a state saved at the last iteration of an epoch resumes at the next epoch, and the sampler tells
     the model its epoch (``MRNetModel.train_epoch``, for the state it saves when stopped by a signal). With
     ``num_worker_per_gpu: 0`` and the CPU prefetcher the resumed run then draws the same samples, crops and flips
     as an uninterrupted one. The block also restores the SIGTERM and SIGUSR1 handlers that the model installs.

  Fixes 1 and 2 cover limits of BasicSR's own ``basicsr/train.py`` (resume onto CUDA only, NCCL only):
  a BasicSR checkout running the drop-in files trains and tests on the CPU, and resumes and runs
  ``torchrun`` on GPUs.

``docs/architecture.md`` lists every replacement in one table; ``tests/test_upstream_problems.py`` shows each
problem in the installed basicsr and fails once basicsr has fixed it, so that its fix can be dropped.
"""
import collections
import contextlib
import itertools
import os
import signal
import sys
import threading
import types


def install_import_alias():
    """Provide ``torchvision.transforms.functional_tensor`` where torchvision lacks it (idempotent)."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision: nothing to do)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional
    module = types.ModuleType(name)
    module.rgb_to_grayscale = functional.rgb_to_grayscale
    module.__doc__ = 'Alias installed by mrnet_arch.compat for basicsr 1.4.2 (removed in torchvision 0.17).'
    sys.modules[name] = module


def _init_dist_pytorch(backend='nccl', **kwargs):
    """Fix 2: basicsr's ``_init_dist_pytorch`` with gloo when CUDA is absent."""
    import torch
    import torch.distributed as dist
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
    elif backend == 'nccl':
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def _sample_paths(dataset, index):
    """Fix 5: the file(s) behind sample ``index`` of a basicsr image dataset, as text."""
    try:
        entry = dataset.paths[index]
    except Exception:  # noqa: BLE001  (a dataset without ``paths``: name the index only)
        return f'sample {index}'
    lmdb = 'db_paths' in (getattr(dataset, 'io_backend_opt', None) or {})  # set for LMDBs ('type' is popped)
    if isinstance(entry, dict):
        return ', '.join(_in_store(dataset, key[:-5], value, lmdb) for key, value in entry.items()
                         if key.endswith('_path'))
    return _in_store(dataset, 'lq', entry, lmdb) if lmdb else str(entry)


def _in_store(dataset, name, key, lmdb):
    """Fix 5: ``name=<file>``, or for an LMDB ``name=key <key> of <store>`` (basicsr's paths are the keys alone)."""
    store = getattr(dataset, f'{name}_folder', None)
    return f'{name}=key {key} of {store}' if lmdb and store else f'{name}={key}'


def _name_files_on_error(getitem):
    """Fix 5: wrap a dataset's ``__getitem__`` so that a failure names the sample's files."""
    if getattr(getitem, '_mrnet_names_files', False):
        return getitem

    def __getitem__(self, index):
        try:
            return getitem(self, index)
        except IndexError:  # the end of ``for sample in dataset``, not a bad file
            raise
        except Exception as e:  # noqa: BLE001  (re-raised with the file names)
            raise RuntimeError(f'{type(self).__name__}: could not load {_sample_paths(self, index)}: '
                               f'{type(e).__name__}: {e}. Is the file a complete, readable image? '
                               '(`mrnet prepare verify FOLDER` lists every bad file or LMDB key)') from e

    __getitem__._mrnet_names_files = True
    __getitem__.__doc__ = getitem.__doc__
    return __getitem__


def _torch_load(path, map_location='cpu'):
    """``torch.load(weights_only=True)``, also allowing the ``collections.Counter`` that basicsr's training
    states hold (the scheduler's milestones), which some torch releases do not allow by default."""
    from mrnet_arch.models.mrnet_checkpoint import load_torch_file
    return load_torch_file(path, map_location, 'training state', [collections.Counter])


def _load_complete(path, map_location='cpu'):
    """The contents of the torch file ``path``, or None when it does not load (a kill can leave a cut-short
    one behind)."""
    try:
        return _torch_load(path, map_location)
    except Exception:  # noqa: BLE001  (any unreadable file is incomplete)
        return None


def load_resume_state(opt):
    """Fix 1: basicsr's ``load_resume_state`` without its CUDA and working-directory assumptions.

    With ``--auto_resume`` it takes the newest state in ``opt['path']['training_states']`` whose
    ``.state`` file and matching ``net_g_<iter>.pth`` both load; cut-short ones are skipped with a warning.
    Without one it starts fresh (basicsr then archives an existing experiment folder, fix 4). Messages go
    to stderr: basicsr's log file is set up only after this runs, and calling ``get_root_logger`` here
    would set the logger up without it.

    Args:
        opt (dict): Parsed training options.

    Returns:
        dict | None: The training state, on the current CUDA device or the CPU.
    """
    import torch

    from basicsr.utils import check_resume
    device = torch.device('cuda', torch.cuda.current_device()) if opt.get('num_gpu', 0) else torch.device('cpu')
    path = state = None
    if opt['auto_resume']:
        state_dir = opt['path']['training_states']
        iters = []
        if os.path.isdir(state_dir):
            iters = sorted((int(f[:-6]) for f in os.listdir(state_dir) if f.endswith('.state') and f[:-6].isdigit()),
                           reverse=True)
        for it in iters:
            candidate = os.path.join(state_dir, f'{it}.state')
            net = os.path.join(opt['path']['models'], f'net_g_{it}.pth')
            state = _load_complete(candidate, device)
            if state is not None and _load_complete(net) is not None:
                path = candidate
                break
            state = None
            print(f'[mrnet] skipping incomplete training state {candidate} (or its {net})', file=sys.stderr)
        if path is not None:
            opt['path']['resume_state'] = path
            if opt.get('rank', 0) == 0:
                remove_stale_temp_files(opt)
        elif os.path.isdir(opt['path']['experiments_root']):
            print(f"[mrnet] no complete training state in {state_dir}; starting fresh, the existing "
                  f"{opt['path']['experiments_root']} is kept as <name>_archived_<time>", file=sys.stderr)
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
    if state is None and path is not None:  # an explicit path:resume_state
        state = _torch_load(path, device)
    _same_start_on_every_rank(opt, state)
    if state is None:
        return None
    check_resume(opt, state['iter'])
    return state


def _same_start_on_every_rank(opt, state):
    """Fix 1, distributed: stop every rank when they would not start from the same iteration.

    With ``--auto_resume`` each rank looks for states in its own view of ``experiments/<name>/``; on nodes that do
    not share that folder, rank 0 would resume and the others start from iteration 0, training out of step.

    Raises:
        RunError: Naming the iteration each rank found.
    """
    import torch.distributed as dist
    if not (opt.get('dist') and dist.is_available() and dist.is_initialized()):
        return
    found = [None] * dist.get_world_size()
    dist.all_gather_object(found, None if state is None else int(state['iter']))
    if len(set(found)) > 1:
        starts = ', '.join(f'rank {r}: {"iteration " + str(i) if i is not None else "no state"}'
                           for r, i in enumerate(found))
        from mrnet_arch.errors import RunError  # here: this file also loads on its own, before any plugin import
        raise RunError(f"the ranks would start from different training states ({starts}) in "
                       f"{opt['path']['training_states']}: every node must see the experiment folder at the same "
                       'path (a file system all nodes share) for --auto_resume or path:resume_state.')


def remove_stale_temp_files(opt):
    """Fix 1: remove the ``.<name>.<random>.tmp`` files that a kill during a checkpoint write left behind.

    Args:
        opt (dict): Parsed training options; ``opt['path']['models']`` and ``['training_states']`` are
            cleaned.

    Returns:
        list[str]: The removed files.
    """
    removed = []
    for key in ('models', 'training_states'):
        folder = opt['path'].get(key)
        if not folder or not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith('.') and name.endswith('.tmp'):
                path = os.path.join(folder, name)
                try:
                    os.remove(path)
                except FileNotFoundError:
                    continue
                removed.append(path)
    if removed:
        print(f'[mrnet] removed {len(removed)} unfinished checkpoint file(s) left by an interrupted save',
              file=sys.stderr)
    return removed


def _free_name(path):
    """Fixes 3/4: ``path`` itself if it does not exist, else ``path`` with ``_1``, ``_2``, ... before the extension."""
    stem, ext = os.path.splitext(path)
    candidate, n = path, 0
    while os.path.lexists(candidate):
        n += 1
        candidate = f'{stem}_{n}{ext}'
    return candidate


def mkdir_and_rename(path):
    """Fix 4: basicsr's ``mkdir_and_rename`` that never reuses an archive name.

    Args:
        path (str): Folder to create; an existing one is renamed to ``<path>_archived_<time>[_<n>]``.
    """
    from basicsr.utils.misc import get_time_str
    if os.path.exists(path):
        new_name = _free_name(f'{path}_archived_{get_time_str()}')
        print(f'Path already exists. Rename it to {new_name}', flush=True)
        os.rename(path, new_name)
    os.makedirs(path, exist_ok=True)


def copy_opt_file(opt_file, experiments_root):
    """Fix 3: copy the option file into the experiment folder without overwriting an earlier copy.

    The copy starts with the time and the command line, like basicsr's. On rank 0 only.

    Args:
        opt_file (str): The ``-opt`` file.
        experiments_root (str): The experiment folder.

    Returns:
        str | None: The written copy (None on other ranks).
    """
    import time

    from basicsr.utils.dist_util import get_dist_info
    from basicsr.utils.misc import get_time_str
    from mrnet_arch.storage.files import atomic_write
    if get_dist_info()[0] != 0:
        return None
    stem, ext = os.path.splitext(os.path.basename(opt_file))
    target = os.path.join(experiments_root, stem + ext)
    if os.path.lexists(target):
        target = _free_name(os.path.join(experiments_root, f'{stem}_{get_time_str()}{ext}'))
    with open(opt_file, 'r', encoding='utf-8') as f:
        text = f.read()
    header = f"# GENERATE TIME: {time.asctime()}\n# CMD:\n# {' '.join(sys.argv)}\n\n"
    atomic_write(target, lambda f: f.write(header + text), binary=False)
    return target


class _Run:
    """Fix 6: what the block knows of the training it runs: the resumed state, the model and the epoch."""

    def __init__(self):
        self.state = self.model = None

    def load_resume_state(self, opt):
        self.state = load_resume_state(opt)
        return self.state

    def build_model(self, build):
        def build_model(opt):
            self.model = build(opt)
            return self.model

        return build_model

    def create_train_val_dataloader(self, create):
        def create_train_val_dataloader(opt, logger):
            result = create(opt, logger)
            train_loader, train_sampler = result[:2]
            if self.state is not None and train_sampler is not None and len(train_loader):
                resume_at(self.state, train_loader, train_sampler)
            return result

        return create_train_val_dataloader

    def set_epoch(self, set_epoch):
        def set_epoch_and_tell(sampler, epoch):
            set_epoch(sampler, epoch)
            if self.model is not None:
                self.model.train_epoch = epoch

        return set_epoch_and_tell


def resume_at(state, train_loader, train_sampler):
    """Fix 6: make BasicSR's loop go on where the state was saved rather than at the start of its epoch.

    ``state['iter']`` iterations of ``len(train_loader)`` batches each put the next batch at position ``done`` of
    epoch ``state['epoch']``: the sampler leaves out the ``done`` batches' samples of that epoch once, or, when the
    epoch was complete, the loop starts at the next one. A state whose epoch does not fit its iteration (saved
    by a run resumed without this fix) is left to BasicSR's rule.

    Args:
        state (dict): The training state (``epoch``, ``iter``); its ``epoch`` may be advanced by one.
        train_loader (torch.utils.data.DataLoader): The training loader (``drop_last``: whole batches only).
        train_sampler (basicsr.data.data_sampler.EnlargedSampler): Its sampler.
    """
    per_epoch = len(train_loader)
    done = int(state['iter']) - int(state['epoch']) * per_epoch
    if done == per_epoch:
        state['epoch'] += 1
    elif 0 < done < per_epoch:
        train_sampler.mrnet_skip = (int(state['epoch']), done * train_loader.batch_size)


def _sampler_iter(iterate):
    """Fix 6: ``EnlargedSampler.__iter__`` that leaves out the samples that the resumed epoch already trained on
    (once, in the epoch that ``resume_at`` marked)."""

    def __iter__(self):
        indices = iterate(self)
        skip = getattr(self, 'mrnet_skip', None)
        if skip is None or skip[0] != self.epoch:
            return indices
        self.mrnet_skip = None
        return itertools.islice(indices, skip[1], None)

    __iter__.__doc__ = iterate.__doc__
    return __iter__


def _stop_signals():
    return [getattr(signal, name) for name in ('SIGTERM', 'SIGUSR1') if hasattr(signal, name)]


@contextlib.contextmanager
def pipeline_fixes(extra=()):
    """Fixes 1-6 for the duration of a ``with`` block; every replaced attribute is restored afterwards.

    Used by the plugin's entry points around BasicSR's ``train_pipeline`` / ``test_pipeline``. Importing
    ``mrnet_arch`` applies none of them.

    Args:
        extra (iterable[tuple]): More ``(object, attribute name, value)`` replacements for the same block,
            e.g. the entry points' checked ``parse_options``.
    """
    install_import_alias()
    import basicsr.train
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.data.single_image_dataset import SingleImageDataset
    from basicsr.utils import dist_util, misc
    run = _Run()
    replacements = [(basicsr.train, 'load_resume_state', run.load_resume_state),
                    (basicsr.train, 'create_train_val_dataloader',
                     run.create_train_val_dataloader(basicsr.train.create_train_val_dataloader)),
                    (EnlargedSampler, '__iter__', _sampler_iter(EnlargedSampler.__iter__)),
                    (EnlargedSampler, 'set_epoch', run.set_epoch(EnlargedSampler.set_epoch)),
                    (basicsr.train, 'copy_opt_file', copy_opt_file),
                    (basicsr.train, 'mkdir_and_rename', mkdir_and_rename),
                    (misc, 'mkdir_and_rename', mkdir_and_rename),
                    (dist_util, '_init_dist_pytorch', _init_dist_pytorch)]
    replacements += [(cls, '__getitem__', _name_files_on_error(cls.__getitem__))
                     for cls in (PairedImageDataset, SingleImageDataset)]
    replacements += list(extra)
    saved = [(obj, name, obj.__dict__[name]) for obj, name, _ in replacements]
    saved.append((basicsr.train, 'build_model', basicsr.train.build_model))
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = [(sig, signal.getsignal(sig)) for sig in _stop_signals()] if main_thread else []
    try:
        for obj, name, new in replacements:
            setattr(obj, name, new)
        basicsr.train.build_model = run.build_model(basicsr.train.build_model)  # the one of ``extra`` too
        yield
    finally:
        for obj, name, old in reversed(saved):
            setattr(obj, name, old)
        for sig, handler in handlers:
            signal.signal(sig, handler)
