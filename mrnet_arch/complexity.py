"""``mrnet_arch.complexity`` is kept for existing imports; the code is in ``mrnet_arch.core.complexity``."""
from mrnet_arch.core.complexity import HD_OUTPUT, count_macs, count_params, lr_size_for_output  # noqa: F401

__all__ = ['HD_OUTPUT', 'count_macs', 'count_params', 'lr_size_for_output']
