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
the config inferred from the tensors are ``mrnet_arch/archs/mrnet_config.py``'s, as in the architecture
``mrnet contribute spandrel`` writes into a spandrel checkout. A ``MultiScaleMRNet`` descriptor runs its
default scale: its smallest (x2 for the paper's model; spandrel does not read the ``upscale`` that
``mrnet export --scale`` stores in safetensors metadata); for another scale, set
``descriptor.model.upscale`` and ``descriptor.scale`` together, or load with
``mrnet_arch.core.weights.load_model(path, scale=...)``.

spandrel reads safetensors without their metadata, so the ``mrnet_config`` written by ``mrnet
export`` does not reach it: weights with neither input encoder nor memory updater load as 'residual'
(see ``mrnet_arch.core.weights``), and ``res_scale``, ``img_range`` and ``rgb_mean`` take their defaults.
"""
from mrnet_arch.archs.mrnet_config import (DETECTED_SCALES, MRM_KEYS, SINGLE_SCALE_KEYS, multi_scale_sfe_key,
                                           scale_and_recursion)
from mrnet_arch.core.weights import build_from_state_dict

ARCH_IDS = ('MRNet', 'MultiScaleMRNet')


def _detect_single(state_dict):
    return all(k in state_dict for k in SINGLE_SCALE_KEYS)


def _detect_multi(state_dict):
    return all(k in state_dict for k in MRM_KEYS) and any(multi_scale_sfe_key(s) in state_dict
                                                          for s in DETECTED_SCALES)


def _make_arch_class():
    """Define the spandrel ``Architecture`` subclass (spandrel is imported only when registering)."""
    from spandrel import Architecture, ImageModelDescriptor, SizeRequirements

    class MRNetArch(Architecture):
        """spandrel architecture for one of ``ARCH_IDS``."""

        def __init__(self, arch_id, detect):
            super().__init__(id=arch_id, detect=detect, name=arch_id)

        def load(self, state_dict):
            net, config = build_from_state_dict(state_dict, f'{self.id} state dict')
            _, t = scale_and_recursion(config, net.upscale)
            tags = [f'{config["num_feat"]}nf', f'{config["num_block"]}nb', f'T{t}', config['recursive_module'],
                    config['fusion']]
            if config['type'] == 'MultiScaleMRNet':
                tags.append('scales ' + '/'.join(f'x{s}' for s in config['upscales']))
            return ImageModelDescriptor(
                net,
                state_dict,
                architecture=self,
                purpose='SR',
                tags=tags,
                supports_half=True,
                supports_bfloat16=True,
                scale=int(net.upscale),
                input_channels=config['num_in_ch'],
                output_channels=config['num_out_ch'],
                size_requirements=SizeRequirements(minimum=1))

    return MRNetArch


def register(registry=None):
    """Add MRNet and MultiScaleMRNet to a spandrel registry; calling it again changes nothing.

    Args:
        registry (spandrel.ArchRegistry | None): Default: ``spandrel.MAIN_REGISTRY``.

    Returns:
        list: The ``ArchSupport`` entries added by this call (empty when already registered).
    """
    from spandrel import MAIN_REGISTRY, ArchSupport
    registry = MAIN_REGISTRY if registry is None else registry
    arch_class = _make_arch_class()
    detects = {'MRNet': _detect_single, 'MultiScaleMRNet': _detect_multi}
    return registry.add(
        *(ArchSupport.from_architecture(arch_class(i, detects[i])) for i in ARCH_IDS if i not in registry),
        ignore_duplicates=True)


__all__ = ['ARCH_IDS', 'register']
