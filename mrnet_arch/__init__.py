"""MRNet (Memory Recursive Network, ACM MM 2020) as a BasicSR plugin.

Importing this package registers the plugin's archs (``MRNet``, ``MultiScaleMRNet``, ``MRM``, ``ShuffleConv``,
``Bicubic``), models (``MRNetModel``, ``MultiScaleMRNetModel``) and datasets (``CropFirstPairedImageDataset``,
``MultiScalePairedImageDataset``) in BasicSR's registries, and does nothing else: it changes no attribute of
basicsr or torch. The one addition is the module alias without which basicsr 1.4.2 cannot be imported on
torchvision >= 0.17 (``mrnet_arch.compat.install_import_alias``).
``mrnet_arch.Upscaler`` (inference on images and files) is imported on first use.
"""
from mrnet_arch import compat

compat.install_import_alias()

from mrnet_arch import archs, data, models  # noqa: E402,F401  (registration)
from mrnet_arch.archs.mrnet_arch import MRM, MRNet, MultiScaleMRNet, ShuffleConv  # noqa: E402

__version__ = '0.1.0'
__all__ = ['MRM', 'MRNet', 'MultiScaleMRNet', 'ShuffleConv', 'Upscaler', '__version__']


def __getattr__(name):
    """``mrnet_arch.Upscaler`` (``mrnet_arch.inference.upscaler``), imported on first use so the import stays cheap."""
    if name == 'Upscaler':
        from mrnet_arch.inference.upscaler import Upscaler
        return Upscaler
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
