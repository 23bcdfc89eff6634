"""MRNet's facts in one place: the option values, the state-dict key conventions, T per scale, the config read
back from a state dict (``infer_config``) and the receptive radius of a config.

It imports only the standard library, so ``mrnet_arch.py`` imports it relatively (in the plugin, in a BasicSR
checkout's ``basicsr/archs/`` and in spandrel's ``architectures/MRNet/__arch/``) and every user reads the same
facts: ``mrnet_arch.storage.weights``, ``mrnet_arch.inference.upscaler``, ``mrnet_arch.spandrel_support`` and the
spandrel contribution.
"""
import re
from collections import OrderedDict

RECURSIVE_MODULES = ('mrm', 'baseline', 'residual', 'input_encoder', 'memory_updater')
FUSIONS = ('shuffleconv', 'conv1x1')
GLOBAL_SKIPS = (None, 'bicubic', 'learned')
PAPER_RECURSIONS = {2: 4, 3: 6, 4: 8}  # recursion count T of each scale (section 4.1)
# What the tensors cannot tell: these keep their defaults when a config is inferred.
# res_scale scales the residual blocks; img_range and rgb_mean are the mean shift (no parameter or buffer).
UNDETECTABLE = ('res_scale', 'img_range', 'rgb_mean')
# 'baseline' and 'residual' have the same layers (neither input encoder nor memory updater): a 'baseline' MRM
# holds this buffer (``mrm.baseline``), 'residual' none. Weights saved before the marker existed read as 'residual'.
BASELINE_MARKER = 'baseline'
BASELINE_MARKER_KEY = f'mrm.{BASELINE_MARKER}'

# Kernel sizes, used by the modules and by receptive_radius.
SFE_KERNELS = (7, 3)  # shallow feature extraction: 7x7 conv, ReLU, 3x3 conv
BODY_KERNEL = 3  # residual-block convs, the ConvBlock's last conv, the reconstruction convs
FUSION_CONV_KERNEL = 3  # the 3x3 conv of the 'conv1x1' fusion

# State-dict keys. Every MRNet and MultiScaleMRNet has the shared MRM's first residual block and last conv.
MRM_KEYS = ('mrm.conv_block.0.0.conv1.weight', 'mrm.conv_block.1.weight')
SINGLE_SCALE_KEYS = (*MRM_KEYS, 'sfe.0.weight', 'reconstruction.fusion.fuse.weight', 'reconstruction.conv_last.weight')
DETECTED_SCALES = tuple(range(1, 9))  # scales whose multi-scale keys name a MultiScaleMRNet (detection only)
_MULTI_SCALE_SFE = re.compile(r'^sfe\.x(\d+)\.0\.weight$')
_BLOCK = re.compile(r'^mrm\.conv_block\.0\.(\d+)\.conv1\.weight$')


class StateDictError(ValueError):
    """A state dict that is not MRNet's, or whose shapes fit no MRNet config; the message says why."""


def scale_key(scale):
    """The key of a scale in MultiScaleMRNet's module dicts (``sfe``, ``reconstruction``, ``global_skip``)."""
    return f'x{int(scale)}'


def multi_scale_sfe_key(scale):
    """The first SFE weight of ``scale`` in a MultiScaleMRNet state dict."""
    return f'sfe.{scale_key(scale)}.0.weight'


def recursions_per_scale(upscales, num_recursions):
    """``{scale: T}`` of a MultiScaleMRNet, in the order given.

    Raises:
        ValueError: Empty, or of different lengths.
    """
    upscales, num_recursions = [int(s) for s in upscales], [int(t) for t in num_recursions]
    if len(upscales) != len(num_recursions) or not upscales:
        raise ValueError(f'upscales {upscales} and num_recursions {num_recursions} must be non-empty '
                         'and of the same length')
    return dict(zip(upscales, num_recursions))


def scale_and_recursion(config, scale=None):
    """``(scale, T)`` of a config (BasicSR ``network_g`` options with ``type``).

    Args:
        config (dict): An MRNet or MultiScaleMRNet config.
        scale (int | None): Scale of a MultiScaleMRNet. Default: its ``upscale``, else its first scale.

    Returns:
        tuple[int, int]: The scale and its recursion count T.
    """
    if config['type'] == 'MultiScaleMRNet':
        recursions = recursions_per_scale(config['upscales'], config['num_recursions'])
        scale = int(scale or config.get('upscale') or next(iter(recursions)))
        if scale not in recursions:
            raise ValueError(f'scale {scale} is not one of {list(recursions)}')
        return scale, recursions[scale]
    return int(config['upscale']), int(config['num_recursion'])


def descriptor_tags(config, scale=None):
    """The tags a model loader (spandrel, and so ComfyUI and chaiNNer) shows for a config.

    Args:
        config (dict): An MRNet or MultiScaleMRNet config (``infer_config``'s).
        scale (int | None): The scale that runs. Default: see ``scale_and_recursion``.

    Returns:
        list[str]: Features, blocks, T, the recursive module, the fusion, a global skip, and the scales of a
        MultiScaleMRNet, e.g. ``['64nf', '10nb', 'T4', 'mrm', 'shuffleconv']``.
    """
    _, t = scale_and_recursion(config, scale)
    tags = [f"{config['num_feat']}nf", f"{config['num_block']}nb", f'T{t}']
    tags += [config['recursive_module'], config['fusion']]
    if config.get('global_skip'):
        tags.append(f"{config['global_skip']} skip")
    if config['type'] == 'MultiScaleMRNet':
        tags.append('/'.join(f'x{s}' for s in config['upscales']))
    return tags


def receptive_radius(config, scale=None):
    """How many input pixels beyond a pixel can change its output (the receptive field's radius).

    SFE: its kernels' radii; each of the T recursions: the ConvBlock's 2 * num_block + 1 body convs (the 1x1
    input encoder and memory updater add nothing); fusion: the ShuffleConv kernel's radius, or the 3x3 conv's
    of 'conv1x1'; reconstruction: two body convs at the output resolution, ceil(2 * radius / s) input pixels.
    A global skip (bicubic: 2 pixels; learned: one 3x3 conv) reaches less far than the body.

    Args:
        config (dict): Arch config (``infer_config``'s or BasicSR ``network_g`` options with ``type``).
        scale (int | None): Scale for MultiScaleMRNet. Default: its ``upscale`` or first scale.

    Returns:
        int: The radius in input pixels.
    """
    scale, t = scale_and_recursion(config, scale)
    body = BODY_KERNEL // 2
    sfe = sum(k // 2 for k in SFE_KERNELS)
    if config.get('fusion', 'shuffleconv') == 'conv1x1':
        fusion = FUSION_CONV_KERNEL // 2
    else:
        fusion = int(config.get('shuffle_kernel', 1)) // 2
    return sfe + t * (2 * int(config['num_block']) + 1) * body + fusion + -(-2 * body // scale)


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
        raise StateDictError(f'{prefix}fusion weights of shape {tuple(fuse.shape)} fit no scale and T '
                             f'for num_feat {num_feat}')
    return fusion, kernel, scale, int(t)


def infer_config(state_dict):
    """Infer the arch config (BasicSR ``network_g`` options) from a state dict.

    Args:
        state_dict (dict): An MRNet or MultiScaleMRNet state dict (no ``module.`` prefix).

    Returns:
        dict: ``{'type': 'MRNet', 'upscale': .., 'num_recursion': .., ...}`` or
        ``{'type': 'MultiScaleMRNet', 'upscales': [..], 'num_recursions': [..], ...}`` (scales ascending),
        with ``num_in_ch``, ``num_out_ch``, ``num_feat``, ``num_block``, ``recursive_module``, ``fusion``,
        ``shuffle_kernel`` and, for weights trained with one, ``global_skip``. ``UNDETECTABLE`` lists what
        the tensors cannot tell.

    Raises:
        StateDictError: Not MRNet weights (the message names the missing keys) or inconsistent shapes.
    """
    # scales in ascending order, whatever the key order (safetensors stores keys sorted by name)
    multi = sorted((int(m.group(1)), k) for k, m in ((k, _MULTI_SCALE_SFE.match(k)) for k in state_dict) if m)
    sfe_keys = [k for _, k in multi] or ['sfe.0.weight']
    missing = [k for k in (*MRM_KEYS, *sfe_keys) if k not in state_dict]
    prefixes = [f'reconstruction.{scale_key(s)}.' for s, _ in multi] or ['reconstruction.']
    missing += [
        f'{p}{name}' for p in prefixes for name in ('fusion.fuse.weight', 'conv_last.weight')
        if f'{p}{name}' not in state_dict
    ]
    if missing:
        raise StateDictError(f'not MRNet weights: missing keys {missing}; found keys {list(state_dict)[:8]}'
                             f'{" ..." if len(state_dict) > 8 else ""}')
    sfe = state_dict[sfe_keys[0]]
    num_feat, num_in_ch = int(sfe.shape[0]), int(sfe.shape[1])
    has_ie, has_mu = 'mrm.input_encoder.weight' in state_dict, 'mrm.memory_updater.weight' in state_dict
    modules = {(True, True): 'mrm', (True, False): 'input_encoder', (False, True): 'memory_updater'}
    recursive_module = modules.get((has_ie, has_mu), 'residual')
    if BASELINE_MARKER_KEY in state_dict:
        if recursive_module != 'residual':
            raise StateDictError(f'{BASELINE_MARKER_KEY} marks a baseline recursive module, but the weights hold '
                                 f'the layers of {recursive_module!r}')
        recursive_module = 'baseline'
    config = OrderedDict(
        type='MultiScaleMRNet' if multi else 'MRNet',
        num_in_ch=num_in_ch,
        num_out_ch=int(state_dict[f'{prefixes[0]}conv_last.weight'].shape[0]),
        num_feat=num_feat,
        num_block=len([k for k in state_dict if _BLOCK.match(k)]),
        recursive_module=recursive_module)
    skip_keys = [k for k in state_dict if k.startswith('global_skip.')]  # optional, beyond the paper
    if any(k.endswith('.bicubic') for k in skip_keys):
        config['global_skip'] = 'bicubic'
    elif any(k.endswith('.conv.weight') for k in skip_keys):
        config['global_skip'] = 'learned'
    fusions = [_fusion_config(state_dict, p, num_feat) for p in prefixes]
    if len({f[:2] for f in fusions}) > 1:
        raise StateDictError(f'the scales use different fusions {[f[:2] for f in fusions]}; MultiScaleMRNet '
                             'shares one fusion type and kernel')
    config['fusion'], config['shuffle_kernel'] = fusions[0][:2]
    if multi:
        for (s, _), f in zip(multi, fusions):
            if f[2] != s:
                raise StateDictError(f'reconstruction.{scale_key(s)} upsamples x{f[2]}, not x{s}')
        config['upscales'] = [s for s, _ in multi]
        config['num_recursions'] = [f[3] for f in fusions]
    else:
        config['upscale'], config['num_recursion'] = fusions[0][2:]
    return dict(config)
