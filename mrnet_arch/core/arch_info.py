"""What follows from an MRNet arch config (BasicSR ``network_g`` options, as ``mrnet_arch.core.weights.infer_config``
returns them) beyond the network itself."""


def receptive_radius(config, scale=None):
    """How many input pixels beyond a pixel can change its output (the receptive field's radius).

    SFE: 7x7 and 3x3 convs (3 + 1); each of the T recursions: the ConvBlock's 2 * num_block + 1 3x3 convs
    (the 1x1 input encoder and memory updater add nothing); fusion: ShuffleConv kernel // 2, or 1 for
    the 3x3 conv of 'conv1x1'; reconstruction: two 3x3 convs at the output resolution, ceil(2 / s)
    input pixels.

    Args:
        config (dict): Arch config (``mrnet_arch.core.weights.infer_config``).
        scale (int | None): Scale for MultiScaleMRNet. Default: its ``upscale`` or first scale.

    Returns:
        int: The radius in input pixels.
    """
    if config['type'] == 'MultiScaleMRNet':
        scale = int(scale or config.get('upscale') or config['upscales'][0])
        t = dict(zip(config['upscales'], config['num_recursions']))[scale]
    else:
        scale, t = config['upscale'], config['num_recursion']
    fusion = 1 if config.get('fusion', 'shuffleconv') == 'conv1x1' else config.get('shuffle_kernel', 1) // 2
    return 4 + t * (2 * config['num_block'] + 1) + fusion + -(-2 // scale)
