"""Model complexity: parameter and multiply-accumulate (MAC) counts.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, matrix products and
element-wise multiply-accumulates (``addcmul``, the form ShuffleConv's grouped 1x1 convolution runs in); other
element-wise ops such as ReLU, additions and PixelShuffle count as zero, the usual SR convention), with
``MACs = FLOPs / 2``. The forward pass runs on a copy of the network on the
``meta`` device, so counting is free of real compute and memory, whatever the input size.

The SR literature reports MACs for a 1280x720 *output*; ``lr_size_for_output`` gives the matching
input size (floor division for scales that do not divide 1280 or 720, e.g. x3: 426x240).
"""
import copy
import math

import torch
from torch.utils.flop_counter import FlopCounterMode

HD_OUTPUT = (720, 1280)  # (h, w) of the 1280x720 output the SR literature reports MACs for


def count_params(net, trainable_only=False):
    """Number of parameters of a network.

    Args:
        net (torch.nn.Module): The network.
        trainable_only (bool): Count only parameters with ``requires_grad``. Default: False.

    Returns:
        int: The parameter count.
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def _net_scale(net, scale):
    """The scale of ``net`` to run: ``scale`` if given, else ``net.upscale`` (error if it has none)."""
    if scale is not None:
        return int(scale)
    if getattr(net, 'upscale', None) is None:
        raise ValueError(f'{type(net).__name__} has no "upscale" attribute: pass scale=')
    return int(net.upscale)


def lr_size_for_output(scale, hr_size=HD_OUTPUT):
    """Input (LR) size whose output at ``scale`` is ``hr_size`` (floor division).

    Args:
        scale (int): Upsampling factor.
        hr_size (tuple[int, int]): Output (h, w). Default: 1280x720, i.e. (720, 1280).

    Returns:
        tuple[int, int]: The input (h, w).
    """
    return hr_size[0] // scale, hr_size[1] // scale


def addcmul_flops(*args, out_shape=None, **kwargs):
    """FLOPs of an elementwise multiply-accumulate (``addcmul``, as in ``ShuffleConv``'s 1x1 form): 2 per output
    element, so that the MACs of a computation do not depend on whether it runs as a convolution or as
    multiply-adds."""
    return 2 * math.prod(out_shape)


def count_macs(net, lr_size=None, scale=None, num_in_ch=None):
    """Multiply-accumulate operations of one forward pass on a single image.

    Args:
        net (torch.nn.Module): The network. Its ``forward`` takes ``(x)`` or, for networks with
            several scales (e.g. ``MultiScaleMRNet``), ``(x, scale=...)``.
        lr_size (tuple[int, int] | None): Input (h, w). Default: the input of a 1280x720 output at
            ``scale`` (see ``lr_size_for_output``).
        scale (int | None): Scale to run; default ``net.upscale``. Passed to ``forward`` only for
            multi-scale networks (those with an ``upscales`` attribute).
        num_in_ch (int | None): Input channels; default the ``in_channels`` of the first conv.

    Returns:
        int: MACs (FLOPs / 2).
    """
    s = _net_scale(net, scale)
    if lr_size is None:
        lr_size = lr_size_for_output(s)
    if num_in_ch is None:
        first_conv = next((m for m in net.modules() if isinstance(m, torch.nn.Conv2d)), None)
        num_in_ch = first_conv.in_channels if first_conv is not None else 3
    meta_net = copy.deepcopy(net).to('meta').eval()
    x = torch.zeros(1, num_in_ch, int(lr_size[0]), int(lr_size[1]), device='meta')
    kwargs = {'scale': s} if hasattr(net, 'upscales') else {}
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.addcmul: addcmul_flops})
    with counter, torch.no_grad():
        meta_net(x, **kwargs)
    return counter.get_total_flops() // 2
