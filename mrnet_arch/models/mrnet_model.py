"""BasicSR model class for MRNet: SRModel with atomic checkpoints, a stop on non-finite losses and
optional bf16 autocast / channels_last.

``MRNET_DUMP_RANK_WEIGHTS=<folder>`` (an environment variable, for checking distributed training) makes
every rank write ``<folder>/net_g_rank<rank>.pth`` after the final save and after each validation:
``{'params': weights, 'rank': int, 'iter': int, 'validations': int}``, where ``validations`` counts the
validation passes this rank ran itself.
"""
import math
import os
import tempfile
from collections import OrderedDict

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

AMP_DTYPES = {None: None, False: None, 'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def atomic_write(path, write, binary=True):
    """Write ``path`` through a temporary file in the same folder, fsync, then ``os.replace``: a kill or a
    full disk at any moment leaves either the old file or the complete new one, never a cut-short file.

    Args:
        path (str): The file to write.
        write (callable): ``write(f)`` writes the contents to the open file object ``f``.
        binary (bool): Open the temporary file in binary mode (else text, UTF-8). Default: True.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with (os.fdopen(fd, 'wb') if binary else os.fdopen(fd, 'w', encoding='utf-8')) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_torch_save(obj, path):
    """``torch.save`` through ``atomic_write``."""
    atomic_write(path, lambda f: torch.save(obj, f))


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
    - per-rank weight dumps for checking distributed training (``MRNET_DUMP_RANK_WEIGHTS``, see the module).
    """

    def __init__(self, opt):
        train_opt = opt.get('train') or {}
        amp = train_opt.get('amp')
        if amp not in AMP_DTYPES:
            raise ValueError(f"train:amp must be one of fp32, bf16, fp16 (or absent), got {amp!r}")
        self.amp_dtype = AMP_DTYPES[amp]
        self.channels_last = bool(train_opt.get('channels_last', False))
        super().__init__(opt)
        if self.channels_last:
            self.net_g = self.net_g.to(memory_format=torch.channels_last)
        self.scaler = None
        if self.is_train and self.amp_dtype == torch.float16:
            self.scaler = torch.amp.GradScaler(self.device.type)
        self.validations_run = 0

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """BaseModel.load_network that never runs code from the file and also reads ``.safetensors``:
        ``.pth`` files are read with ``torch.load(weights_only=True)`` whatever torch's default."""
        from mrnet_arch.weights import read_state_dict
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
            self.output = self.net_g(self.lq)
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
        loss_value = float(l_total.detach()) if torch.is_tensor(l_total) else float(l_total)
        if not math.isfinite(loss_value):
            message = (f'Loss is {loss_value} at iteration {current_iter}; stopping before the optimizer step. '
                       f"The last saved checkpoint in {self.opt['path'].get('models')} is the last good one; "
                       'resume from it with --auto_resume after lowering the learning rate.')
            get_root_logger().error(message)
            raise FloatingPointError(message)
        if self.scaler is not None:
            self.scaler.scale(l_total).backward()
            self.scaler.step(self.optimizer_g)
            self.scaler.update()
        else:
            l_total.backward()
            self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self):
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        with torch.no_grad(), self._autocast():
            self.output = net(self.lq).float()
        net.train(was_training)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """SRModel's validation pass, counted in ``validations_run``."""
        self.validations_run += 1
        super().nondist_validation(dataloader, current_iter, tb_logger, save_img)

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """SRModel's validation (rank 0 only when distributed), then the optional per-rank dump."""
        super().validation(dataloader, current_iter, tb_logger, save_img)
        self._dump_rank_weights(current_iter)

    def save(self, epoch, current_iter):
        """SRModel's save; after the final one (``current_iter == -1``) the optional per-rank dump."""
        super().save(epoch, current_iter)
        if current_iter == -1:
            self._dump_rank_weights(current_iter)

    def _dump_rank_weights(self, current_iter):
        """Write this rank's weights to ``$MRNET_DUMP_RANK_WEIGHTS/net_g_rank<rank>.pth`` if the variable is set."""
        folder = os.environ.get('MRNET_DUMP_RANK_WEIGHTS')
        if not folder:
            return
        os.makedirs(folder, exist_ok=True)
        params = {k: v.detach().cpu().clone() for k, v in self.get_bare_model(self.net_g).state_dict().items()}
        dump = {'params': params, 'rank': self.opt['rank'], 'iter': current_iter,
                'validations': self.validations_run}
        atomic_torch_save(dump, os.path.join(folder, f"net_g_rank{self.opt['rank']}.pth"))

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
            save_dict[key] = OrderedDict((k[7:] if k.startswith('module.') else k, v.detach().cpu().contiguous())
                                         for k, v in state_dict.items())
        try:
            atomic_torch_save(save_dict, save_path)
        except OSError as e:
            raise OSError(f'Could not write checkpoint {save_path}: {e}. The previous checkpoint is unchanged.') from e

    @master_only
    def save_training_state(self, epoch, current_iter):
        """Like BaseModel.save_training_state, but atomic, and a failure raises instead of being ignored."""
        if current_iter == -1:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
        }
        save_path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        try:
            atomic_torch_save(state, save_path)
        except OSError as e:
            raise OSError(f'Could not write training state {save_path}: {e}. '
                          'The previous state is unchanged.') from e
        get_root_logger().info(f'Saved training state {save_path}.')
