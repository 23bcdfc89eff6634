"""BasicSR model classes for MRNet: single-scale ``MRNetModel`` and ``MultiScaleMRNetModel``.

``MRNetModel`` is BasicSR's ``SRModel`` with atomic checkpoints, a stop on non-finite losses, pretrained
weights read without running code from the file (also ``.safetensors``), DDP on the CPU, and optional
bf16 autocast / channels_last. ``MultiScaleMRNetModel`` runs each batch and each val/test set at its own
scale (MRNet section 4.5).

``test()`` (validation in training, and BasicSR's test pipeline) runs the network tile by tile when ``val: tile``
asks for it or when a whole forward would exceed the memory budget, with MRNet's receptive radius as overlap, so
its output equals the untiled one up to float rounding (``mrnet_tiling.py``).

This file imports only torch and basicsr, and its torch-only siblings ``mrnet_checkpoint.py`` (checkpoint
files), ``mrnet_options.py`` (the option keys BasicSR and the model read) and ``mrnet_tiling.py`` (tiles and the
memory budget) by relative imports, so the four can be copied together into a BasicSR checkout's
``basicsr/models/`` folder, where BasicSR's own scan registers both classes.
"""
import copy
import numpy as np
import os
import signal
import threading
import torch
import torch.distributed as dist
from collections import OrderedDict
from torch.nn.parallel import DataParallel, DistributedDataParallel

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from .mrnet_checkpoint import (DiskFullError, _free_bytes, _size_text, atomic_torch_save, read_state_dict, rng_state,
                               set_rng_state)
from .mrnet_options import unknown_options, unknown_options_message
from .mrnet_tiling import choose_tile, memory_budget, mrnet_bytes_per_pixel, mrnet_facts, tile_option, tiled_forward

AMP_DTYPES = {None: None, False: None, 'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
COMPILE_MODES = {
    None: None,
    False: None,
    True: 'default',
    'default': 'default',
    'reduce-overhead': 'reduce-overhead',
    'max-autotune': 'max-autotune',
    'max-autotune-no-cudagraphs': 'max-autotune-no-cudagraphs'
}


def train_option_problems(train_opt):
    """What is wrong with the ``train:`` options that ``MRNetModel`` adds (amp, compile, finite_check_freq,
    grad_clip).

    Args:
        train_opt (dict): The ``train`` options.

    Returns:
        list[str]: One message per bad option, naming it; empty when all are fine.
    """
    problems = []
    for key, allowed in (('amp', AMP_DTYPES), ('compile', COMPILE_MODES)):
        if train_opt.get(key) not in allowed:
            problems.append(f'train:{key} must be one of {sorted(map(str, allowed))}, got {train_opt[key]!r}')
    freq = train_opt.get('finite_check_freq', 1)
    if isinstance(freq, bool) or not isinstance(freq, (int, float)) or freq < 1 or freq != int(freq):
        problems.append(f'train:finite_check_freq must be a whole number >= 1, got {freq!r}')
    clip = train_opt.get('grad_clip')
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0):
        problems.append(f'train:grad_clip must be a number > 0 (the largest gradient norm) or null, got {clip!r}')
    return problems


REQUEUE_EXIT_CODE = 75  # EX_TEMPFAIL of sysexits.h: "temporary failure, try again" (a job script requeues)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ('SIGTERM', 'SIGUSR1') if hasattr(signal, name))

_RESUMABLE = 'the previous checkpoints and training states are unchanged (--auto_resume continues from the newest)'


def checkpoint_bytes(net, optimizers, ema=False):
    """About the bytes one save writes: the network's weights (twice with an EMA copy) in ``net_g_<iter>.pth``, and
    in ``<iter>.state`` the optimizers' per-parameter state (Adam, AdamW: two tensors per weight tensor; others: one).

    Args:
        net (torch.nn.Module): The network.
        optimizers (list[torch.optim.Optimizer]): The training's optimizers.
        ema (bool): The checkpoint holds ``params_ema`` too.

    Returns:
        int: Bytes.
    """
    weights = sum(p.numel() * p.element_size() for p in net.state_dict().values())
    per_weight = sum(2 if type(o).__name__ in ('Adam', 'AdamW') else 1 for o in optimizers)
    return weights * (2 if ema else 1) + weights * per_weight + (64 << 10)


@MODEL_REGISTRY.register()
class MRNetModel(SRModel):
    """SRModel for MRNet (and any other BasicSR SR arch) with:

    - checkpoints (``net_g_*.pth``) and training states (``*.state``) written atomically; a failed
      write raises (BasicSR 1.4.2 logs and goes on) and leaves the previous files valid;
    - pretrained weights load without running code from the file (``weights_only=True``), also from
      ``.safetensors``;
    - training stops with an error naming the iteration when the loss is NaN or infinite, before the
      optimizer step, so the last saved checkpoint is the last good one;
    - ``train: amp: bf16|fp16`` autocast on CUDA (bf16 also on CPU) and ``train: channels_last: true``;
    - ``train: compile: true|reduce-overhead|max-autotune``: the training forward and backward through
      ``torch.compile`` (validation runs uncompiled);
    - ``train: finite_check_freq: N``: the loss read on the host every N iterations (and at every save);
    - ``train: grad_clip: C``: gradients clipped to a total L2 norm of at most C before each optimizer step
      (after unscaling under fp16); off when absent or null;
    - distributed training on the CPU too: DDP without device ids when the model runs on the CPU;
    - an option key that neither BasicSR nor this class reads (a typo) stops the run before training, naming it
      with the closest known key (``mrnet_options.py``); ``allow_unknown_options: true`` makes it a warning;
    - ``test()`` in tiles (``mrnet_tiling.tile_option``): ``val: tile: {tile_size: N, tile_pad: P}`` runs tiles of
      N x N input pixels, each with P more on every side (HAT's ``tile`` option); otherwise an MRNet network runs
      in the largest tiles whose forward fits the memory budget (``val: tile: {max_memory: 2G}``, else
      ``$MRNET_MAX_MEMORY``, else half of the memory available at each test), whole when it fits. The overlap
      defaults to MRNet's receptive radius, so tiled and untiled outputs agree up to float rounding. Other
      networks run whole unless ``tile_size`` and ``tile_pad`` are given.
    - SIGTERM or SIGUSR1 during training (pre-emption, a job's time limit, ``scancel --signal``): the current
      iteration is finished, a checkpoint and a complete training state of that iteration are saved, and the
      process exits with status ``REQUEUE_EXIT_CODE`` (75); ``--auto_resume`` goes on from that iteration.
      In a distributed run the ranks agree on the stop at the iterations that read the loss on the host
      (``train:finite_check_freq``), so that all stop at the same one.

    Args:
        opt (dict): Options.
    """

    def __init__(self, opt):
        unknown, _ = unknown_options(opt)  # in a checkout's basicsr/train.py: still before training starts
        if unknown and not opt.get('allow_unknown_options'):
            raise ValueError(unknown_options_message(unknown))
        if unknown:
            get_root_logger().warning(unknown_options_message(unknown))
        train_opt = opt.get('train') or {}
        problems = train_option_problems(train_opt)
        if problems:
            raise ValueError('; '.join(problems))
        self.amp_dtype = AMP_DTYPES[train_opt.get('amp')]
        self.channels_last = bool(train_opt.get('channels_last', False))
        self.finite_check_freq = int(train_opt.get('finite_check_freq', 1))
        self.grad_clip = train_opt.get('grad_clip')
        self.tile_settings = tile_option(opt.get('val') or {}, os.environ)
        self.last_tile = 0  # the tile size of the last test(); 0: whole
        self._nonfinite_since = None  # device flag: a loss since the last check was not finite
        self._last_check = 0
        self._pending_losses = None
        self._stop_signal = None  # the signal that asked the training to stop, once one came
        self.train_epoch = None  # the epoch of the running iteration, when the training loop tells (mrnet train)
        self._last_epoch = 0  # else: the epoch of the last save or of the resumed state
        compile_mode = train_opt.get('compile')
        super().__init__(opt)
        if self.channels_last:
            self.net_g = self.net_g.to(memory_format=torch.channels_last)
        # the training forward (and its backward) through torch.compile; validation and the saved weights use
        # the same parameters, uncompiled
        self.net_g_train = self.net_g
        if self.is_train and COMPILE_MODES[compile_mode]:
            self.net_g_train = torch.compile(self.net_g, mode=COMPILE_MODES[compile_mode])
        self._check_tile_arch()
        self.scaler = None
        if self.is_train and self.amp_dtype == torch.float16:
            self.scaler = torch.amp.GradScaler(self.device.type)
        if self.is_train:
            self._warn_if_little_space()
            self._catch_stop_signals()

    def _catch_stop_signals(self):
        """Make SIGTERM and SIGUSR1 ask for a stop after the current iteration (main thread only: Python calls
        signal handlers there)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._request_stop)

    def _request_stop(self, signum, frame):
        """Signal handler: note the stop; the iteration that runs goes on and saves (``_stop_if_requested``)."""
        if self._stop_signal is None:
            self._stop_signal = signum
            get_root_logger().warning(f'[mrnet] {signal.Signals(signum).name} received: finishing the current '
                                      'iteration, then saving and stopping.')

    def _stop_if_requested(self, current_iter):
        """After iteration ``current_iter``: when a stop signal came (on any rank), save the checkpoint and the
        training state of this iteration and exit with ``REQUEUE_EXIT_CODE``.

        Raises:
            SystemExit: With ``REQUEUE_EXIT_CODE``, once everything is saved.
        """
        stop = self._stop_signal is not None
        if self.opt.get('dist') and dist.is_available() and dist.is_initialized():
            if not self._must_check(current_iter):
                return
            flag = torch.tensor([float(stop)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if not stop:
            return
        epoch = self.train_epoch if self.train_epoch is not None else self._last_epoch
        self.save(epoch, current_iter)
        name = signal.Signals(self._stop_signal).name if self._stop_signal else 'a stop signal on another rank'
        get_root_logger().warning(
            f"[mrnet] stopped by {name} after iteration {current_iter}: checkpoint and training state saved in "
            f"{self.opt['path'].get('experiments_root')}; exiting with status {REQUEUE_EXIT_CODE} (requeue). "
            'Run again with --auto_resume to go on from this iteration.')
        raise SystemExit(REQUEUE_EXIT_CODE)

    def save(self, epoch, current_iter):
        """SRModel.save; the epoch of a save is kept for the state that a stop signal saves."""
        if current_iter != -1:
            self._last_epoch = epoch
        super().save(epoch, current_iter)

    @master_only
    def _warn_if_little_space(self):
        """Warn (one line) when the folders of the checkpoints and training states have less room than one save
        needs (``checkpoint_bytes``)."""
        paths = self.opt.get('path') or {}
        need = checkpoint_bytes(
            self.get_bare_model(self.net_g), getattr(self, 'optimizers', []), hasattr(self, 'net_g_ema'))
        folder = paths.get('models') or paths.get('experiments_root')
        free = _free_bytes(folder) if folder else None
        if free is not None and free < need:
            get_root_logger().warning(
                f'[mrnet] only {_size_text(free)} free in {folder}, but each save (checkpoint and training state) '
                f'needs about {_size_text(need)}: free some space before the first save at iteration '
                f"{(self.opt.get('logger') or {}).get('save_checkpoint_freq')}.")

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """BaseModel.load_network that never runs code from the file and also reads ``.safetensors``:
        ``.pth`` files are read with ``torch.load(weights_only=True)`` whatever torch's default."""
        state_dict, _ = read_state_dict(load_path, prefer_ema=param_key == 'params_ema')
        net = self.get_bare_model(net)
        get_root_logger().info(
            f'Loading {net.__class__.__name__} model from {load_path}, with param key: [{param_key}].')
        self._print_different_keys_loading(net, state_dict, strict)
        net.load_state_dict(state_dict, strict=strict)

    def feed_data(self, data):
        super().feed_data(data)
        if self.channels_last:
            self.lq = self.lq.contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad(set_to_none=True)
        with self._autocast():
            self.output = self.net_g_train(self.lq)
        self.output = self.output.float()
        l_total = 0
        loss_dict = OrderedDict()
        if self.cri_pix:
            l_pix = self.cri_pix(self.output, self.gt)
            l_total += l_pix
            loss_dict['l_pix'] = l_pix
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output, self.gt)
            for name, value in (('l_percep', l_percep), ('l_style', l_style)):
                if value is not None:
                    l_total += value
                    loss_dict[name] = value
        self._check_finite(l_total, current_iter)
        if self.scaler is not None:
            self.scaler.scale(l_total).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.optimizer_g)
                self._clip_gradients()
            self.scaler.step(self.optimizer_g)
            self.scaler.update()
        else:
            l_total.backward()
            if self.grad_clip:
                self._clip_gradients()
            self.optimizer_g.step()
        self._pending_losses = OrderedDict((k, v.detach()) for k, v in loss_dict.items())  # reduced when logged
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        self._stop_if_requested(current_iter)

    def _clip_gradients(self):
        """Scale the gradients of net_g to a total L2 norm of at most ``train:grad_clip`` (on the device, no
        host synchronisation)."""
        torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), float(self.grad_clip))  # skips grad-less ones

    def _must_check(self, current_iter):
        """Whether iteration ``current_iter`` reads the loss on the host: every ``train:finite_check_freq``
        iterations, and always at an iteration that saves a checkpoint and at the last one."""
        if current_iter % self.finite_check_freq == 0:
            return True
        save_freq = (self.opt.get('logger') or {}).get('save_checkpoint_freq')
        total = (self.opt.get('train') or {}).get('total_iter')
        return bool(save_freq and current_iter % int(save_freq) == 0) or bool(total and current_iter >= int(total))

    def _check_finite(self, loss, current_iter):
        """Stop with an error when a loss is NaN or infinite, before the optimizer step of a checked iteration.

        Every ``train:finite_check_freq`` iterations (1: every iteration) the loss is read on the host; in
        between, a flag on the device records a non-finite loss without synchronising. Saves and the last
        iteration are always checked, so no checkpoint is written after a non-finite loss: the last saved one
        is the last good one.
        """
        if not torch.is_tensor(loss):
            loss = torch.tensor(float(loss))
        bad = ~torch.isfinite(loss.detach())
        self._nonfinite_since = bad if self._nonfinite_since is None else self._nonfinite_since | bad
        if not self._must_check(current_iter):
            return
        flagged, self._nonfinite_since = bool(self._nonfinite_since), None
        first, self._last_check = self._last_check + 1, current_iter
        if flagged:
            value = float(loss.detach())
            what = (f'Loss is {value} at iteration {current_iter}' if first == current_iter else
                    f'A loss was not finite at one of iterations {first}-{current_iter} (train:finite_check_freq '
                    f'{self.finite_check_freq}; loss {value} at {current_iter})')
            message = (f'{what}; stopping before the optimizer step. '
                       f"The last saved checkpoint in {self.opt['path'].get('models')} is the last good one; "
                       'resume from it with --auto_resume after lowering the learning rate.')
            get_root_logger().error(message)
            raise FloatingPointError(message)

    def get_current_log(self):
        """The losses of the last iteration, reduced over the ranks only now, when they are logged, so that the
        training step itself does not wait for the device."""
        if self._pending_losses is not None:
            self.log_dict, self._pending_losses = self.reduce_loss_dict(self._pending_losses), None
        return self.log_dict

    def _check_tile_arch(self):
        """Refuse ``val: tile`` settings that need MRNet's receptive radius or memory model for another network."""
        if mrnet_facts(self.get_bare_model(self.net_g)) is not None:
            return
        arch = type(self.get_bare_model(self.net_g)).__name__
        settings = self.tile_settings
        if settings['tile_size'] and settings['tile_pad'] is None:
            raise ValueError(f'val:tile:tile_pad: give the tile overlap for {arch} (the default, the receptive '
                             'radius, is known for MRNet only)')
        if settings['budget_from'] == 'val:tile:max_memory':
            raise ValueError(f'val:tile:max_memory: the memory model is MRNet\'s; for {arch} give tile_size and '
                             'tile_pad instead')

    def _test_tiles(self, net, lq):
        """``(tile, tile_pad, scale)`` of a test forward of ``net`` on ``lq`` (tile 0: whole); logs a tiled one."""
        bare = self.get_bare_model(net)
        facts = mrnet_facts(bare)
        settings = self.tile_settings
        scale = int(getattr(bare, 'upscale', None) or self.opt['scale'])
        h, w = lq.shape[-2:]
        pad = settings['tile_pad']
        if pad is None and facts is not None:
            pad = facts[0].receptive_radius(facts[1], scale)
        why = f'(val:tile:tile_size {settings["tile_size"]})'
        tile = settings['tile_size'] or 0
        if not tile and facts is not None:
            budget = memory_budget(lq.device, settings['max_memory'])
            per_pixel = mrnet_bytes_per_pixel(facts[1], scale)
            option = settings['budget_from'] or 'val:tile:max_memory'
            tile = choose_tile(per_pixel, h, w, budget, pad, batch=lq.shape[0], option=option)
            why = 'to stay within the memory budget'
        self.last_tile = tile if tile and (tile < h or tile < w) else 0
        if self.last_tile:
            get_root_logger().info(f'[mrnet] test: {w}x{h} input in tiles of {tile} px (overlap {pad} px) {why}')
        return self.last_tile, pad or 0, scale

    def test(self):
        """SRModel.test (net_g_ema when there is one), tile by tile when ``val: tile`` or the memory budget says
        so (``_test_tiles``); the output equals the untiled one up to float rounding."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        tile, tile_pad, scale = self._test_tiles(net, self.lq)
        with torch.no_grad(), self._autocast():
            self.output = tiled_forward(net, self.lq, scale, tile, tile_pad).float()
        net.train(was_training)

    def model_to_device(self, net):
        """BaseModel.model_to_device that also wraps DDP on the CPU (without device ids)."""
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """Like BaseModel.save_network, but atomic, and a failure raises instead of being ignored."""
        current_iter = 'latest' if current_iter == -1 else current_iter
        save_path = os.path.join(self.opt['path']['models'], f'{net_label}_{current_iter}.pth')
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError('The lengths of net and param_key should be the same.')
        save_dict = {}
        for net_, key in zip(nets, keys):
            state_dict = self.get_bare_model(net_).state_dict()
            save_dict[key] = OrderedDict(
                (k[7:] if k.startswith('module.') else k, v.detach().cpu().contiguous()) for k, v in state_dict.items())
        try:
            atomic_torch_save(save_dict, save_path)
        except DiskFullError as e:
            raise DiskFullError(e.folder, os.path.basename(save_path), e.needed, e.free, _RESUMABLE) from e
        except OSError as e:
            raise OSError(f'Could not write checkpoint {save_path}: {e}. The previous checkpoint is unchanged.') from e

    def resume_training(self, resume_state):
        """BaseModel.resume_training, then the random number generators as they were at the save (a single
        process; in a distributed run each rank keeps its seeded generators), so that a resumed run draws the
        same crops and flips as an uninterrupted one."""
        super().resume_training(resume_state)
        self._last_epoch = resume_state['epoch']
        if resume_state.get('rng') is not None and self.opt.get('world_size', 1) == 1:
            set_rng_state(resume_state['rng'])

    @master_only
    def save_training_state(self, epoch, current_iter):
        """Like BaseModel.save_training_state, but atomic, with the random number generators' states, and a
        failure raises instead of being ignored."""
        if current_iter == -1:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'rng': rng_state(),
        }
        save_path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        try:
            atomic_torch_save(state, save_path)
        except DiskFullError as e:
            raise DiskFullError(e.folder, os.path.basename(save_path), e.needed, e.free, _RESUMABLE) from e
        except OSError as e:
            raise OSError(f'Could not write training state {save_path}: {e}. '
                          'The previous state is unchanged.') from e
        get_root_logger().info(f'Saved training state {save_path}.')


def scale_schedule(scales, seed, index):
    """The scale of training step ``index``: a seeded shuffle of ``scales`` per round of ``len(scales)`` steps.

    Args:
        scales (list[int]): Scales.
        seed (int): Seed.
        index (int): Index of the training step (from 0: iteration - 1).

    Returns:
        int: One of ``scales``.
    """
    n = len(scales)
    order = np.random.default_rng([seed, index // n]).permutation(n)
    return scales[order[index % n]]


@MODEL_REGISTRY.register()
class MultiScaleMRNetModel(MRNetModel):
    """MRNetModel for a network with several scales (``MultiScaleMRNet``: ``upscales`` and a settable
    ``upscale``).

    - Training iteration i runs at ``scale_schedule(scales, train:scale_seed, i - 1)``, a seeded, balanced
      schedule that depends on the iteration alone: a resumed run trains each iteration at the same scale as
      an uninterrupted one, and all ranks agree. The batch holds a patch pair of every scale
      (``lq_x<s>``/``gt_x<s>``, from ``MultiScalePairedImageDataset``); the scheduled one is trained.
    - Other data (val/test) runs at ``data['scale']``, or, for data without it, the top-level ``scale``.
    - Validation and testing run each val/test set at its scale, and every metric's ``crop_border`` is
      set to that scale (the convention of the published tables), whatever the YAML says.

    Args:
        opt (dict): Options.
    """

    def _nets(self):
        nets = [self.get_bare_model(self.net_g)]
        if hasattr(self, 'net_g_ema'):
            nets.append(self.get_bare_model(self.net_g_ema))
        return nets

    def set_scale(self, scale):
        """Make the network(s) run at ``scale``.

        Raises:
            ValueError: The network has no such scale.
        """
        scale = int(scale)
        for net in self._nets():
            supported = getattr(net, 'upscales', None)
            if supported is None:
                raise TypeError(f'{type(net).__name__} has no "upscales": MultiScaleMRNetModel needs a multi-scale '
                                'network such as MultiScaleMRNet')
            if scale not in supported:
                raise ValueError(f'scale {scale} is not one of the network\'s upscales {tuple(supported)}')
            net.upscale = scale
        self.scale = scale

    def feed_data(self, data):
        self.scale_batch = None
        if any(key.startswith('lq_x') for key in data):  # training: patch pairs of every scale
            self.scale_batch = data
            return
        if 'scale' in data:
            scales = {int(s) for s in data['scale']}
            if len(scales) != 1:
                raise ValueError(f'a batch mixes scales {sorted(scales)}; each batch must have one scale')
            self.set_scale(scales.pop())
        elif self.opt.get('scale') is not None:
            self.set_scale(self.opt['scale'])
        super().feed_data(data)

    def optimize_parameters(self, current_iter):
        if self.scale_batch is not None:
            scales = sorted(int(key[4:]) for key in self.scale_batch if key.startswith('lq_x'))
            seed = int((self.opt.get('train') or {}).get('scale_seed', 0))
            scale = scale_schedule(scales, seed, current_iter - 1)
            self.set_scale(scale)
            super().feed_data({'lq': self.scale_batch[f'lq_x{scale}'], 'gt': self.scale_batch[f'gt_x{scale}']})
        super().optimize_parameters(current_iter)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        dataset = dataloader.dataset
        scales = getattr(dataset, 'scales', None)
        scales = [self.opt['scale']] if scales is None and self.opt.get('scale') else scales
        if not scales or len(scales) != 1:
            raise ValueError(f"val/test set {dataset.opt['name']}: give it one scale (type "
                             'MultiScalePairedImageDataset with scales: [s])')
        scale = int(scales[0])
        self.set_scale(scale)
        metrics = self.opt['val'].get('metrics')
        if metrics is None:
            return super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        saved = copy.deepcopy(metrics)
        for metric in metrics.values():
            metric['crop_border'] = scale
        try:
            return super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self.opt['val']['metrics'] = saved
