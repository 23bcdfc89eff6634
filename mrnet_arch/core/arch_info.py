"""What follows from an MRNet arch config (BasicSR ``network_g`` options, as ``mrnet_arch.modelfiles.weights.infer_config``
returns them) beyond the network itself; the facts live in ``mrnet_arch/archs/mrnet_config.py``, beside the arch."""
from mrnet_arch.archs import mrnet_config


def receptive_radius(config, scale=None):
    """How many input pixels beyond a pixel can change its output (the receptive field's radius).

    ``mrnet_config.receptive_radius``: computed from the kernel sizes the modules are built with
    (``tests/test_archs.py`` checks it against a network by perturbing one input pixel).

    Args:
        config (dict): Arch config (``mrnet_arch.modelfiles.weights.infer_config``).
        scale (int | None): Scale for MultiScaleMRNet. Default: its ``upscale`` or first scale.

    Returns:
        int: The radius in input pixels.
    """
    return mrnet_config.receptive_radius(config, scale)
