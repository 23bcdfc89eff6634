"""spandrel support: ``register()`` makes ``spandrel.ModelLoader`` recognise MRNet weights.

::

    import mrnet_arch.spandrel_support
    mrnet_arch.spandrel_support.register()

    import spandrel
    model = spandrel.ModelLoader().load_from_file('net_g_latest.pth')  # or .safetensors
    sr = model(lr)  # [1, 3, H, W] in [0, 1] -> [1, 3, H*s, W*s]

Two architectures are added to ``spandrel.MAIN_REGISTRY``: ``MRNet`` (keys ``sfe.0.weight``,
``mrm.conv_block.0.0.conv1.weight``, ``reconstruction.fusion.fuse.weight``) and ``MultiScaleMRNet`` (the
same MRM key plus ``sfe.x<s>.*`` and ``reconstruction.x<s>.fusion.fuse.weight``). Keys, detection and
the config inferred from the tensors are ``mrnet_arch/archs/mrnet_config.py``'s. A ``MultiScaleMRNet``
descriptor runs its default scale: its smallest (x2 for the paper's model; spandrel does not read the ``upscale`` that
``mrnet export --scale`` stores in safetensors metadata); for another scale, set
``descriptor.model.upscale`` and ``descriptor.scale`` together, or load with
``mrnet_arch.storage.weights.load_model(path, scale=...)``.

spandrel reads safetensors without their metadata, so the ``mrnet_config`` written by ``mrnet
export`` does not reach it: ``res_scale``, ``img_range`` and ``rgb_mean`` take their defaults, and weights of
the 'baseline' recursive module saved without its marker buffer load as 'residual' (see
``mrnet_arch.storage.weights``).

The architectures are ``mrnet_arch/spandrel_arch.py``'s, the same code ``mrnet contribute spandrel`` and ``mrnet
contribute comfyui`` write into their hosts: one definition of detection, name, purpose, tags and size
requirements.
"""
ARCH_IDS = ('MRNet', 'MultiScaleMRNet')
INSTALL = 'pip install "mrnet_arch[spandrel]"'


def register(registry=None):
    """Add MRNet and MultiScaleMRNet to a spandrel registry; calling it again changes nothing.

    Args:
        registry (spandrel.ArchRegistry | None): Default: ``spandrel.MAIN_REGISTRY``.

    Returns:
        list: The ``ArchSupport`` entries added by this call (empty when already registered).

    Raises:
        ImportError: spandrel is not installed (the message names the pip extra that installs it).
    """
    try:
        from spandrel import MAIN_REGISTRY, ArchSupport
    except ModuleNotFoundError as e:
        if (e.name or '').split('.')[0] != 'spandrel':
            raise
        raise ImportError(f'mrnet_arch.spandrel_support needs spandrel, which is not installed: {INSTALL}') from e
    from mrnet_arch.spandrel_arch import MRNetArch, MultiScaleMRNetArch
    registry = MAIN_REGISTRY if registry is None else registry
    archs = (MRNetArch(), MultiScaleMRNetArch())  # their ids are ARCH_IDS
    return registry.add(*(ArchSupport.from_architecture(a) for a in archs if a.id not in registry),
                        ignore_duplicates=True)


__all__ = ['ARCH_IDS', 'INSTALL', 'register']
