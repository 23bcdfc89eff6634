"""torch.hub entry points of MRNet (Memory Recursive Network for Single Image Super-Resolution, ACM MM 2020).

    import torch
    net = torch.hub.load('OWNER/REPO', 'mrnet', scale=2, weights='https://.../net_g_x2.pth')   # or a local path
    net = torch.hub.load('/path/to/clone', 'multiscale_mrnet', source='local')                  # paper size, untrained

torch.hub puts the clone on ``sys.path``, so ``mrnet_arch`` is imported from it without ``pip install``; it needs
torch and basicsr (and basicsr's own requirements: numpy, opencv-python, ...), which ``dependencies`` names;
``.safetensors`` weights also need the safetensors package. Weights are read as ``mrnet infer`` reads them
(``mrnet_arch.storage.weights.load_model``: ``torch.load(weights_only=True)`` or safetensors), and the network is
built from what they say. A URL is downloaded once into torch.hub's cache (``<hub dir>/checkpoints``) with
``torch.hub.download_url_to_file``, checking the hash prefix in its file name with ``check_hash=True``.
"""
import os
from urllib.parse import urlparse

dependencies = ['torch', 'basicsr']


def _weights_file(weights, progress=True, check_hash=False):
    """A local path for ``weights``: the path itself, or the cached download of a URL."""
    if urlparse(str(weights)).scheme not in ('http', 'https', 'file'):
        if not os.path.isfile(weights):
            raise FileNotFoundError(f'weights={weights!r}: no such file (expected a local path or an http(s) URL)')
        return weights
    import torch
    name = os.path.basename(urlparse(weights).path)
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', name)
    if not os.path.exists(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        found = torch.hub.HASH_REGEX.search(name) if check_hash else None
        torch.hub.download_url_to_file(weights, cached, found.group(1) if found else None, progress=progress)
    return cached


def _load(weights, arch, scale=None, progress=True, check_hash=False, prefer_ema=True, **overrides):
    from mrnet_arch.storage.weights import load_model
    net, config = load_model(_weights_file(weights, progress, check_hash), scale=scale, prefer_ema=prefer_ema,
                             overrides=overrides or None)
    if config['type'] != arch:
        other = 'multiscale_mrnet' if config['type'] == 'MultiScaleMRNet' else 'mrnet'
        raise ValueError(f'weights={weights!r} are {config["type"]} weights: load them with {other!r}')
    return net


def mrnet(scale=2, weights=None, **kwargs):
    """MRNet-S: one scale.

    Args:
        scale (int): The scale. Without weights, the paper's network for it (64 features, 10 residual blocks,
            T = 4/6/8 for x2/x3/x4); with weights, it must be theirs. Default: 2.
        weights (str | None): A weight file (BasicSR checkpoint, state dict or safetensors) or its URL; the
            network is built from what the weights say. Default: None (untrained).
        **kwargs: Without weights: ``MRNet`` arguments. With weights: ``progress``, ``check_hash`` (URL
            downloads), ``prefer_ema`` and config entries the weights cannot tell (e.g. ``recursive_module``).

    Returns:
        torch.nn.Module: The network (eval mode with weights).
    """
    if weights is None:
        from mrnet_arch.archs.mrnet_arch import MRNet
        from mrnet_arch.archs.mrnet_config import PAPER_RECURSIONS
        kwargs.setdefault('num_recursion', PAPER_RECURSIONS.get(int(scale), 4))
        return MRNet(upscale=int(scale), **kwargs)
    net = _load(weights, 'MRNet', **kwargs)
    if net.upscale != int(scale):
        raise ValueError(f'weights={weights!r} are x{net.upscale} weights: call mrnet(scale={net.upscale}, ...)')
    return net


def multiscale_mrnet(weights=None, **kwargs):
    """MRNet: one memory recursive module shared by several scales (x2/x3/x4 in the paper).

    Args:
        weights (str | None): A weight file or its URL (see ``mrnet``). Default: None (the paper's network,
            untrained).
        **kwargs: Without weights: ``MultiScaleMRNet`` arguments. With weights: ``scale`` (the default scale of
            ``forward``), ``progress``, ``check_hash``, ``prefer_ema`` and config entries the weights cannot tell.

    Returns:
        torch.nn.Module: The network; ``forward(x, scale=None)``.
    """
    if weights is None:
        from mrnet_arch.archs.mrnet_arch import MultiScaleMRNet
        return MultiScaleMRNet(**kwargs)
    return _load(weights, 'MultiScaleMRNet', **kwargs)
