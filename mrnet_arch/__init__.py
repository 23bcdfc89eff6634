"""MRNet (Memory Recursive Network, ACM MM 2020) as a BasicSR plugin.

Importing this package applies the basicsr 1.4.2 compatibility fixes (``mrnet_arch.compat``) and
registers the plugin's archs, models and datasets in BasicSR's registries.
"""
from mrnet_arch import compat

compat.apply()

from mrnet_arch import archs, data, models  # noqa: E402,F401  (registration)
from mrnet_arch.archs.mrnet_arch import MRM, MRNet, MultiScaleMRNet, ShuffleConv  # noqa: E402

__version__ = '0.1.0'
__all__ = ['MRM', 'MRNet', 'MultiScaleMRNet', 'ShuffleConv', '__version__']
