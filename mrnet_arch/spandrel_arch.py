"""MRNet and MultiScaleMRNet as spandrel architectures: detection, hyperparameters read from a state dict, and the
model descriptor (purpose, tags, scale, channels, size requirements).

This is the one definition for every host. ``mrnet_arch.spandrel_support.register()`` adds these classes to
spandrel's registry at run time (with the plugin's networks); ``mrnet contribute spandrel`` and ``mrnet contribute
comfyui`` write the code below the imports with the imports of their host
(``mrnet_arch.commands.contribute.spandrel_files.descriptor_source``): spandrel's
``architectures/MRNet/__init__.py`` and the ComfyUI custom node's ``__init__.py``, beside the torch-only networks.
It imports spandrel, so only ``register()`` imports it.
"""
from __future__ import annotations

from typing import Any

from spandrel import Architecture, ImageModelDescriptor, SizeRequirements, StateDict
from spandrel.util import KeyCondition
from typing_extensions import override

from mrnet_arch.archs.mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.archs.mrnet_config import (DETECTED_SCALES, MRM_KEYS, SINGLE_SCALE_KEYS, UNDETECTABLE, descriptor_tags,
                                           infer_config, multi_scale_sfe_key)

# The state dict cannot tell UNDETECTABLE (res_scale, img_range, rgb_mean): the networks use their defaults.
_SHARED = ('num_in_ch', 'num_out_ch', 'num_feat', 'num_block', 'recursive_module', 'fusion', 'shuffle_kernel')


def _shared(config: dict[str, Any]) -> dict[str, Any]:
    return {**{k: config[k] for k in _SHARED}, 'global_skip': config.get('global_skip')}


def _descriptor_args(config: dict[str, Any], scale: int) -> dict[str, Any]:
    """What both architectures' descriptors say about a model of ``config`` running at ``scale``."""
    return {
        'purpose': 'Restoration' if scale == 1 else 'SR',
        'tags': descriptor_tags(config, scale),
        'supports_half': True,
        'supports_bfloat16': True,
        'scale': scale,
        'input_channels': config['num_in_ch'],
        'output_channels': config['num_out_ch'],
        'size_requirements': SizeRequirements(minimum=1),
    }


class MRNetArch(Architecture[MRNet]):
    """MRNet (ACM MM 2020): one scale."""

    def __init__(self) -> None:
        super().__init__(id='MRNet', name='MRNet', detect=KeyCondition.has_all(*SINGLE_SCALE_KEYS))

    @override
    def load(self, state_dict: StateDict) -> ImageModelDescriptor[MRNet]:
        config = infer_config(state_dict)
        scale = int(config['upscale'])
        model = MRNet(upscale=scale, num_recursion=config['num_recursion'], **_shared(config))
        return ImageModelDescriptor(model, state_dict, architecture=self, **_descriptor_args(config, scale))


class MultiScaleMRNetArch(Architecture[MultiScaleMRNet]):
    """One MRM shared by several scales; the model runs its smallest scale (``model.upscale``)."""

    def __init__(self) -> None:
        super().__init__(
            id='MultiScaleMRNet',
            name='MultiScaleMRNet',
            detect=KeyCondition.has_all(
                *MRM_KEYS,
                KeyCondition.has_any(*(multi_scale_sfe_key(s) for s in DETECTED_SCALES)),
            ),
        )

    @override
    def load(self, state_dict: StateDict) -> ImageModelDescriptor[MultiScaleMRNet]:
        config = infer_config(state_dict)
        model = MultiScaleMRNet(
            upscales=tuple(config['upscales']),
            num_recursions=tuple(config['num_recursions']),
            **_shared(config),
        )
        scale = int(model.upscale)
        return ImageModelDescriptor(model, state_dict, architecture=self, **_descriptor_args(config, scale))


__all__ = ['MRNetArch', 'MultiScaleMRNetArch', 'MRNet', 'MultiScaleMRNet', 'UNDETECTABLE']
