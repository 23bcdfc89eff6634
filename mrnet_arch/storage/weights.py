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

What the tensors tell (``infer_config``, owned by ``mrnet_arch/archs/mrnet_config.py`` beside the arch): single
(``MRNet``) or multi-scale (``MultiScaleMRNet``), the
scale(s) (ascending; the smallest is a MultiScaleMRNet's default), T per scale (from the fusion
weights), ``num_feat``, ``num_block``, input/output channels, the fusion ('shuffleconv' or 'conv1x1'),
the ShuffleConv kernel, the recursive module (which of the input encoder and memory updater exist; 'baseline'
(DRCN, eq. 1), whose layers are those of 'residual' (DRRN, eq. 3), by its ``mrm.baseline`` marker buffer).
What they cannot tell, and so comes from the ``mrnet_config`` metadata or the defaults: ``res_scale`` (1),
``img_range`` (255) and ``rgb_mean`` (DIV2K mean). 'baseline' weights saved before the marker existed read
as 'residual'; ``overrides={'recursive_module': 'baseline'}`` (or safetensors exported with that config) loads
them as 'baseline'.
"""
import json

from mrnet_arch.archs import mrnet_config
from mrnet_arch.archs.mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.archs.mrnet_config import MRM_KEYS  # noqa: F401  (re-exported)
from mrnet_arch.models.mrnet_checkpoint import WeightsError, read_state_dict  # noqa: F401  (re-exported)
from mrnet_arch.storage.files import json_object, write_bytes

CONFIG_METADATA_KEY = 'mrnet_config'
ARCH_TYPES = {'MRNet': MRNet, 'MultiScaleMRNet': MultiScaleMRNet}


def infer_config(state_dict):
    """Infer the arch config (BasicSR ``network_g`` options) from a state dict: ``mrnet_config.infer_config``
    (``mrnet_arch/archs/mrnet_config.py``, beside the arch), with its errors as ``WeightsError``.

    Args:
        state_dict (dict): An MRNet or MultiScaleMRNet state dict (no ``module.`` prefix).

    Returns:
        dict: The config; see ``mrnet_config.infer_config``.

    Raises:
        WeightsError: Not MRNet weights (the message names the missing keys) or inconsistent shapes.
    """
    try:
        return mrnet_config.infer_config(state_dict)
    except mrnet_config.StateDictError as e:
        raise WeightsError(str(e)) from e


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
