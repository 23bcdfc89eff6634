"""Memory of a forward pass: the budget (``--max-memory`` or a share of the memory available now), the estimate
of one forward from the arch and the image size, and the tile size that keeps a forward within the budget.

The budget, the MRNet memory model (``mrnet_bytes_per_pixel``) and the tile choice live in
``mrnet_arch/models/mrnet_tiling.py`` (torch-only, so that ``MRNetModel.test()`` uses them in the plugin and in a
BasicSR checkout) and are imported here; its docstring describes the model. The factors were checked against the
peak RSS rise of real forwards on the CPU (``benchmarks/activation_memory.py``, results in
``benchmarks/results/activation_memory_cpu_*.json``; ``docs/inference.md`` quotes them): the model is at or
above every measurement. Archs other than MRNet get a cruder, larger bound from their widest convolution
(``generic_bytes_per_pixel``).
"""
import os

import torch

from mrnet_arch.models.mrnet_tiling import (_FLOAT, _WORKING_MAPS, BUDGET_SHARE, MIN_TILE, SAFETY,  # noqa: F401
                                            MemoryBudgetError, available_memory, choose_tile, format_bytes,
                                            memory_budget, mrnet_bytes_per_pixel, parse_memory)


def generic_bytes_per_pixel(net, scale):
    """A crude bound for any conv network: ``_WORKING_MAPS`` maps of its widest convolution at the input
    resolution and three at the output resolution, float32, times ``SAFETY``.

    Args:
        net (torch.nn.Module): The network.
        scale (int): Its scale.

    Returns:
        float | None: Bytes per input pixel; None for a network without convolutions.
    """
    widths = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    if not widths:
        return None
    feat = max(widths)
    return _FLOAT * feat * (_WORKING_MAPS + 3 * scale**2) * SAFETY


def estimate_forward_bytes(config, h, w, scale=None):
    """Estimated peak bytes of one MRNet forward on an ``h`` x ``w`` input (``mrnet_bytes_per_pixel``)."""
    return int(mrnet_bytes_per_pixel(config, scale) * h * w)


def peak_rss_bytes():
    """This process's peak resident memory so far (``ru_maxrss``), in bytes."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 if os.name == 'posix' else 0
