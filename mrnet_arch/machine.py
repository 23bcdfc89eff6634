"""``mrnet_arch.machine`` is kept for existing imports; the code is in ``mrnet_arch.core.machine``."""
from mrnet_arch.core.machine import cpu_model, machine_info  # noqa: F401

__all__ = ['cpu_model', 'machine_info']
