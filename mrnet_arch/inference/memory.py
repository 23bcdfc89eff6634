"""Memory of a forward pass of networks other than MRNet, and of an MRNet forward on a whole image.

The budget (``--max-memory`` or a share of the memory available now), the MRNet memory model
(``mrnet_bytes_per_pixel``) and the tile choice live in ``mrnet_arch/models/mrnet_tiling.py`` (torch-only, so that
``MRNetModel.test()`` uses them in the plugin and in a BasicSR checkout); its docstring describes the model. The
factors were checked against the peak RSS rise of real forwards on the CPU (``benchmarks/activation_memory.py``,
results in ``benchmarks/results/activation_memory_cpu_*.json``; ``docs/inference.md`` quotes them): the model is at
or above every measurement. Archs other than MRNet get a cruder, larger bound from their widest convolution
(``generic_bytes_per_pixel``).
"""
import torch

from mrnet_arch.models.mrnet_tiling import FLOAT_BYTES, SAFETY, WORKING_MAPS, mrnet_bytes_per_pixel


def generic_bytes_per_pixel(net, scale):
    """A crude bound for any conv network: ``WORKING_MAPS`` maps of its widest convolution at the input
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
    return FLOAT_BYTES * feat * (WORKING_MAPS + 3 * scale**2) * SAFETY


def estimate_forward_bytes(config, h, w, scale=None):
    """Estimated peak bytes of one MRNet forward on an ``h`` x ``w`` input (``mrnet_bytes_per_pixel``)."""
    return int(mrnet_bytes_per_pixel(config, scale) * h * w)
