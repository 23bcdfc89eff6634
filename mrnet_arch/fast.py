"""``mrnet_arch.fast`` is kept for existing imports; the code is in ``mrnet_arch.core.fast``."""
from mrnet_arch.core.fast import PRECISIONS, FastSR, Fp32Module, prepare_fast  # noqa: F401

__all__ = ['PRECISIONS', 'FastSR', 'Fp32Module', 'prepare_fast']
