"""Load MRNet weights safely and rebuild the network from the weights alone.

Accepted files:

- BasicSR checkpoints (``net_g_*.pth``): ``{'params': sd}`` and/or ``{'params_ema': sd}``;
  ``params_ema`` is used when present (``prefer_ema=False`` picks ``params``);
- plain state dicts (``.pth``/``.pt``), a ``module.`` prefix (DataParallel/DDP) is stripped;
- ``.safetensors`` files, e.g. written by ``mrnet export``. Their metadata may hold the arch config as
  JSON under ``mrnet_config``; its entries override what is inferred from the tensors.

Pickle files are always read with ``torch.load(..., weights_only=True)``: a file whose pickle holds
anything but tensors and plain containers (e.g. an object whose ``__reduce__`` runs code) is refused
with a ``WeightsError`` before anything in it runs.

What the tensors tell (``infer_config``): single (``MRNet``) or multi-scale (``MultiScaleMRNet``), the
scale(s) (ascending; the smallest is a MultiScaleMRNet's default), T per scale (from the fusion
weights), ``num_feat``, ``num_block``, input/output channels, the fusion ('shuffleconv' or 'conv1x1'),
the ShuffleConv kernel, and which of the input encoder and memory updater exist. What they cannot tell,
and so comes from the ``mrnet_config`` metadata or the defaults: ``res_scale`` (1), ``img_range`` (255),
``rgb_mean`` (DIV2K mean), and, for weights with neither input encoder nor memory updater, 'baseline'
(DRCN, eq. 1) versus 'residual' (DRRN, eq. 3): both have identical tensors; 'residual' is assumed (it is
the one of the two that, like MRNet, adds x_0 after every recursion). Use
``overrides={'recursive_module': 'baseline'}`` or export to safetensors with the right config to settle
it.
"""
import json
import re
from collections import OrderedDict

from mrnet_arch.archs.mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.core.files import json_object, write_bytes
from mrnet_arch.models.mrnet_checkpoint import WeightsError, read_state_dict  # noqa: F401  (re-exported)

CONFIG_METADATA_KEY = 'mrnet_config'
# Keys every MRNet / MultiScaleMRNet state dict has (the shared MRM); used to recognise MRNet weights.
MRM_KEYS = ('mrm.conv_block.0.0.conv1.weight', 'mrm.conv_block.1.weight')
ARCH_TYPES = {'MRNet': MRNet, 'MultiScaleMRNet': MultiScaleMRNet}
_MULTI_SCALE_SFE = re.compile(r'^sfe\.x(\d+)\.0\.weight$')
_BLOCK = re.compile(r'^mrm\.conv_block\.0\.(\d+)\.conv1\.weight$')


def _fusion_config(state_dict, prefix, num_feat):
    """(fusion, shuffle_kernel, upscale, num_recursion) from the fusion weights under ``prefix``."""
    fuse = state_dict[f'{prefix}fusion.fuse.weight']
    conv = state_dict.get(f'{prefix}fusion.conv.weight')
    if conv is not None:  # Conv1x1Fusion: fuse [C, C*T, 1, 1], conv [C*s^2, C, 3, 3]
        fusion, kernel, t, s2 = 'conv1x1', 1, fuse.shape[1] // num_feat, conv.shape[0] // num_feat
    else:  # ShuffleConv, groups=C: fuse [C*s^2, T, k, k]
        fusion, kernel, t, s2 = 'shuffleconv', int(fuse.shape[-1]), int(fuse.shape[1]), fuse.shape[0] // num_feat
    scale = round(s2**0.5)
    if scale * scale != s2 or t < 1:
        raise WeightsError(f'{prefix}fusion weights of shape {tuple(fuse.shape)} fit no scale and T '
                           f'for num_feat {num_feat}')
    return fusion, kernel, scale, t


def infer_config(state_dict):
    """Infer the arch config (BasicSR ``network_g`` options) from a state dict.

    Args:
        state_dict (dict): An MRNet or MultiScaleMRNet state dict (no ``module.`` prefix).

    Returns:
        dict: ``{'type': 'MRNet', 'upscale': .., 'num_recursion': .., ...}`` or
        ``{'type': 'MultiScaleMRNet', 'upscales': [..], 'num_recursions': [..], ...}``, with
        ``num_in_ch``, ``num_out_ch``, ``num_feat``, ``num_block``, ``recursive_module``, ``fusion``,
        ``shuffle_kernel`` and, for weights trained with one, ``global_skip``. See the module docstring for
        what cannot be inferred.

    Raises:
        WeightsError: Not MRNet weights (the message names the missing keys) or inconsistent shapes.
    """
    # scales in ascending order, whatever the key order (safetensors stores keys sorted by name)
    multi = sorted((int(m.group(1)), k) for k, m in ((k, _MULTI_SCALE_SFE.match(k)) for k in state_dict) if m)
    sfe_keys = [k for _, k in multi] or ['sfe.0.weight']
    missing = [k for k in (*MRM_KEYS, *sfe_keys) if k not in state_dict]
    prefixes = [f'reconstruction.x{s}.' for s, _ in multi] or ['reconstruction.']
    missing += [f'{p}fusion.fuse.weight' for p in prefixes if f'{p}fusion.fuse.weight' not in state_dict]
    if missing:
        raise WeightsError(f'not MRNet weights: missing keys {missing}; found keys {list(state_dict)[:8]}'
                           f'{" ..." if len(state_dict) > 8 else ""}')
    sfe = state_dict[sfe_keys[0]]
    num_feat, num_in_ch = int(sfe.shape[0]), int(sfe.shape[1])
    has_ie, has_mu = 'mrm.input_encoder.weight' in state_dict, 'mrm.memory_updater.weight' in state_dict
    recursive_module = {(True, True): 'mrm', (True, False): 'input_encoder', (False, True): 'memory_updater',
                        (False, False): 'residual'}[(has_ie, has_mu)]
    config = OrderedDict(
        type='MultiScaleMRNet' if multi else 'MRNet',
        num_in_ch=num_in_ch,
        num_out_ch=int(state_dict[f'{prefixes[0]}conv_last.weight'].shape[0]),
        num_feat=num_feat,
        num_block=len({_BLOCK.match(k).group(1) for k in state_dict if _BLOCK.match(k)}),
        recursive_module=recursive_module)
    skip_keys = [k for k in state_dict if k.startswith('global_skip.')]  # optional, beyond the paper
    if any(k.endswith('.bicubic') for k in skip_keys):
        config['global_skip'] = 'bicubic'
    elif any(k.endswith('.conv.weight') for k in skip_keys):
        config['global_skip'] = 'learned'
    fusions = [_fusion_config(state_dict, p, num_feat) for p in prefixes]
    if len({f[:2] for f in fusions}) > 1:
        raise WeightsError(f'the scales use different fusions {[f[:2] for f in fusions]}; MultiScaleMRNet '
                           'shares one fusion type and kernel')
    config['fusion'], config['shuffle_kernel'] = fusions[0][:2]
    if multi:
        for (s, _), f in zip(multi, fusions):
            if f[2] != s:
                raise WeightsError(f'reconstruction.x{s} upsamples x{f[2]}, not x{s}')
        config['upscales'] = [s for s, _ in multi]
        config['num_recursions'] = [f[3] for f in fusions]
    else:
        config['upscale'], config['num_recursion'] = fusions[0][2:]
    return dict(config)


def config_from_metadata(metadata, path='weights'):
    """The ``mrnet_config`` entry of safetensors metadata as a dict (``{}`` when absent)."""
    text = (metadata or {}).get(CONFIG_METADATA_KEY)
    return json_object(text, f'{path}: metadata {CONFIG_METADATA_KEY!r}', WeightsError) if text else {}


def save_safetensors(net, config, path, mrnet_config=True):
    """Save ``net``'s state dict to ``path`` as safetensors (written to a temporary file, then renamed).

    Args:
        net (nn.Module): The network.
        config (dict): Its arch config (BasicSR ``network_g`` options, with ``type``).
        path (str): The output file.
        mrnet_config (bool): Store ``config`` under ``mrnet_config`` (MRNet weights, read back by
            ``load_model``); else under ``network_g`` (other archs). Default: True.
    """
    from safetensors.torch import save
    state_dict = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    key = CONFIG_METADATA_KEY if mrnet_config else 'network_g'
    write_bytes(path, save(state_dict, metadata={'format': 'pt', key: json.dumps(config)}))


def scales_of(config):
    """The scales a config supports, as a list."""
    return list(config['upscales']) if config['type'] == 'MultiScaleMRNet' else [config['upscale']]


def build_network(config):
    """Build the network of a config (as returned by ``infer_config``)."""
    kwargs = {k: v for k, v in config.items() if k != 'type'}
    if config.get('type') not in ARCH_TYPES:
        raise WeightsError(f'unknown arch type {config.get("type")!r}, expected one of {sorted(ARCH_TYPES)}')
    return ARCH_TYPES[config['type']](**kwargs)


def build_from_state_dict(state_dict, path='weights', metadata=None, scale=None, overrides=None):
    """Infer the config, build the network, load the weights strictly and select the scale.

    Args:
        state_dict (dict): The state dict.
        path (str): Name of the weights, for error messages.
        metadata (dict | None): Safetensors metadata; its ``mrnet_config`` overrides the inferred config.
        scale (int | None): Scale to run. Default: the weights' (first) scale.
        overrides (dict | None): Config entries that override both, e.g. ``{'recursive_module': 'baseline'}``.

    Returns:
        tuple[torch.nn.Module, dict]: The network (eval mode) and its config; for MultiScaleMRNet the
        config's ``upscale`` is the selected scale.

    Raises:
        WeightsError: Not MRNet weights, a scale the weights do not have, or weights that do not fit.
    """
    config = infer_config(state_dict)
    config.update(config_from_metadata(metadata, path))
    config.update(overrides or {})
    available = scales_of(config)
    if scale is not None:
        scale = int(scale)
        if scale not in available:
            raise WeightsError(f'{path}: scale x{scale} was asked for, but these {config["type"]} weights are for '
                               f'{", ".join(f"x{s}" for s in available)}')
        if config['type'] == 'MultiScaleMRNet':
            config['upscale'] = scale
    if config['type'] == 'MultiScaleMRNet':
        config.setdefault('upscale', available[0])
    try:
        net = build_network(config)
    except TypeError as err:
        raise WeightsError(f'{path}: config {config} does not fit {config["type"]}: {err}') from err
    result = net.load_state_dict(state_dict, strict=False)
    shape_errors = [
        f'{k}: expected {tuple(v.shape)}, found {tuple(state_dict[k].shape)}' for k, v in net.state_dict().items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if result.missing_keys or result.unexpected_keys or shape_errors:
        raise WeightsError(f'{path}: weights do not fit {config["type"]} with config {config}: missing keys '
                           f'{result.missing_keys}, unexpected keys {result.unexpected_keys}, '
                           f'shape mismatches {shape_errors}')
    return net.eval(), config


def load_model(path, scale=None, device='cpu', prefer_ema=True, overrides=None):
    """Load MRNet weights from a file into a new network, config inferred from the weights.

    Args:
        path (str): Weight file (BasicSR checkpoint, plain state dict or safetensors).
        scale (int | None): Scale to run; an error if the weights lack it. Default: the weights' scale
            (for MultiScaleMRNet the ``upscale`` of its safetensors config, else its smallest scale).
        device (str | torch.device): Device of the returned network. Default: 'cpu'.
        prefer_ema (bool): Use ``params_ema`` over ``params``. Default: True.
        overrides (dict | None): Config entries that override the inferred ones.

    Returns:
        tuple[torch.nn.Module, dict]: The network, in eval mode, and its config.

    Raises:
        WeightsError: See ``read_state_dict`` and ``build_from_state_dict``.
    """
    state_dict, metadata = read_state_dict(path, prefer_ema=prefer_ema)
    net, config = build_from_state_dict(state_dict, path, metadata, scale, overrides)
    return net.to(device), config
