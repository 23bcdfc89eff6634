"""Make PyPI basicsr 1.4.2 (the last release, 2022) work on current PyTorch / torchvision, without
editing site-packages.

``apply()`` is idempotent and runs when ``mrnet_arch`` is imported, before anything imports basicsr.
This module imports nothing from the plugin, so it can also be loaded on its own (the drop-in test
does that). Each fix names the upstream problem and when it can be dropped; the list is also in the
README ("How the plugin hooks into BasicSR").

1. ``torchvision.transforms.functional_tensor`` was removed in torchvision 0.17; basicsr 1.4.2's
   ``basicsr/data/degradations.py`` imports ``rgb_to_grayscale`` from it, so ``import basicsr``
   fails. Fixed on BasicSR's master branch (not released). We register an alias module.
   Drop when a basicsr release after 1.4.2 imports on current torchvision.
2. ``basicsr.train.load_resume_state`` maps resume states onto ``torch.cuda.current_device()``
   (fails on CPU-only machines), looks for ``--auto_resume`` states relative to the working directory,
   and picks the highest-numbered ``.state`` file even if it was cut short by a kill. Replaced by
   ``load_resume_state`` below (CPU or CUDA, ``opt['path']['training_states']``, newest *complete*
   state, ``weights_only=True``). ``patch_train_pipeline()`` installs it; drop the device part when
   upstream maps to the current device.
3. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6. basicsr's training states hold
   the scheduler's ``collections.Counter`` of milestones, which the safe unpickler refuses. We allow
   exactly that type (``torch.serialization.add_safe_globals``); no code-executing load is enabled.
   Drop when basicsr stores plain dicts.
4. ``basicsr.utils.dist_util._init_dist_pytorch`` hard-codes NCCL and ``torch.cuda.set_device``, so
   ``--launcher pytorch`` fails without GPUs. Without CUDA we use gloo; with CUDA it is unchanged
   (nccl). ``BaseModel.model_to_device`` wraps DDP with ``device_ids=[cuda.current_device()]``; on
   CPU we wrap without device ids. Drop when upstream selects the backend by device.
"""
import collections
import os
import sys
import types

_APPLIED = False


def _alias_functional_tensor():
    """Fix 1: provide ``torchvision.transforms.functional_tensor``."""
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


def _safe_globals():
    """Fix 3: let ``weights_only=True`` loads read basicsr's training states."""
    import torch
    torch.serialization.add_safe_globals([collections.Counter])


def _init_dist_pytorch(backend='nccl', **kwargs):
    """Fix 4: basicsr's ``_init_dist_pytorch`` with gloo when CUDA is absent."""
    import torch
    import torch.distributed as dist
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
    elif backend == 'nccl':
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def _model_to_device(self, net):
    """Fix 4: ``BaseModel.model_to_device`` that also wraps DDP on CPU."""
    import torch
    from torch.nn.parallel import DataParallel, DistributedDataParallel
    net = net.to(self.device)
    if self.opt['dist']:
        find_unused_parameters = self.opt.get('find_unused_parameters', False)
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused_parameters)
    elif self.opt['num_gpu'] > 1:
        net = DataParallel(net)
    return net


def apply():
    """Apply all fixes (idempotent). Must run before ``basicsr.data`` is first imported."""
    global _APPLIED
    if _APPLIED:
        return
    _alias_functional_tensor()
    _safe_globals()
    from basicsr.utils import dist_util
    dist_util._init_dist_pytorch = _init_dist_pytorch
    from basicsr.models import base_model
    base_model.BaseModel.model_to_device = _model_to_device
    _APPLIED = True


def _is_complete(path):
    """True when ``path`` is a readable torch file (a kill can leave a cut-short one behind)."""
    import torch
    try:
        torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # noqa: BLE001  (any unreadable file is incomplete)
        return False
    return True


def load_resume_state(opt):
    """Fix 2: basicsr's ``load_resume_state`` without its CUDA and working-directory assumptions.

    With ``--auto_resume`` it takes the newest state in ``opt['path']['training_states']`` whose
    ``.state`` file and matching ``net_g_<iter>.pth`` both load; cut-short ones are skipped with a warning.
    """
    import torch
    from basicsr.utils import check_resume, get_root_logger
    path = None
    if opt['auto_resume']:
        state_dir = opt['path']['training_states']
        iters = []
        if os.path.isdir(state_dir):
            iters = sorted((int(f[:-6]) for f in os.listdir(state_dir) if f.endswith('.state') and f[:-6].isdigit()),
                           reverse=True)
        for it in iters:
            candidate = os.path.join(state_dir, f'{it}.state')
            net = os.path.join(opt['path']['models'], f'net_g_{it}.pth')
            if _is_complete(candidate) and _is_complete(net):
                path = candidate
                break
            get_root_logger().warning(f'Skipping incomplete training state {candidate} (or its {net}).')
            print(f'[mrnet] skipping incomplete training state {candidate}', file=sys.stderr)
        if path is not None:
            opt['path']['resume_state'] = path
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
    if path is None:
        return None
    device = torch.device('cuda', torch.cuda.current_device()) if opt.get('num_gpu', 0) else torch.device('cpu')
    state = torch.load(path, map_location=device, weights_only=True)
    check_resume(opt, state['iter'])
    return state


def patch_train_pipeline():
    """Fix 2: install ``load_resume_state`` into ``basicsr.train``. Called by the train entry points only,
    because ``basicsr.train`` imports every basicsr model and dataset."""
    import basicsr.train
    basicsr.train.load_resume_state = load_resume_state
