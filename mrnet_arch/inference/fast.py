"""Fast inference path for any BasicSR SR network: eval mode, channels_last, reduced precision and,
on CUDA when asked, ``torch.compile``.

``prepare_fast(net, device, precision)`` returns a ``FastSR`` module: call it with an NCHW float image
batch (any device, values in [0, 1]); it returns a float32 NCHW batch on ``device``. It is used by
``mrnet bench``, ``mrnet infer`` (with ``channels_last=False`` and fp32, bf16 or fp16) and the benchmarks.

Precisions (the table is ``mrnet_arch.inference.precision.PRECISIONS``):

- ``fp32``: plain float32 (TF32 stays as the global ``torch.backends`` settings say).
- ``bf16`` / ``fp16``: ``torch.autocast`` (weights stay float32, convolutions run in the low
  precision). ``fp16`` needs CUDA.
- ``bf16-cast`` / ``fp16-cast``: weights and input cast to the low precision (no per-call weight
  cast; every op, additions included, runs in the low precision).

In the reduced precisions the output head (every convolution with the output channels of the network's
last convolution, e.g. ``conv_last``, or SwinIR's upsampling conv) runs in float32 by default
(``fp32_head``): bfloat16 has an 8-bit mantissa, so a bf16 output in BasicSR's 0-255 feature range (or
after the mean shift in [0, 1]) is quantised to about one 8-bit grey level, which would cost PSNR on its
own. The head is a tiny share of the MACs (MRNet x2: 64->3 channels, 3x3, about 0.2%). MRNet itself
also de-normalises in float32; archs that do not (BasicSR's EDSR, RCAN) depend on the head for that.
"""
import contextlib

import torch
from torch import nn

from mrnet_arch.errors import InvalidValueError
from mrnet_arch.inference.precision import PRECISION_NAMES, dtype_and_mode

PRECISIONS = PRECISION_NAMES  # the names ``prepare_fast`` accepts (``mrnet_arch.inference.precision``)


class Fp32Module(nn.Module):
    """Run ``module`` in float32 with autocast disabled (input cast to float32)."""

    def __init__(self, module):
        super().__init__()
        self.module = module.float()

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            return self.module(x.float())


def _wrap_head_fp32(net):
    """Replace the output convolutions (see the module docstring) by ``Fp32Module``; returns their names."""
    convs = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        return []
    out_ch = convs[-1][1].out_channels
    names = [name for name, m in convs if m.out_channels == out_ch]
    for name in names:
        parent_name, _, child = name.rpartition('.')
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, child, Fp32Module(getattr(parent, child)))
    return names


class FastSR(nn.Module):
    """An SR network prepared for inference (see ``prepare_fast``).

    Attributes:
        net (nn.Module): The prepared network (possibly compiled).
        device (torch.device): Where it runs.
        precision (str): One of ``PRECISIONS``.
        channels_last (bool): Whether inputs and weights use the channels_last memory format.
        fp32_modules (list[str]): Names of the modules kept in float32 (the output head).
    """

    def __init__(self, net, device, precision, channels_last, fp32_modules=()):
        super().__init__()
        self.fp32_modules = list(fp32_modules)
        self.net = net
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.dtype, self.mode = dtype_and_mode(precision)

    def _autocast(self):
        if self.mode != 'autocast':
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @torch.inference_mode()
    def forward(self, x, **kwargs):
        x = x.to(self.device, non_blocking=True)
        if self.mode == 'cast':
            x = x.to(self.dtype)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self.net(x, **kwargs)
        return out.float()


def prepare_fast(net, device='cpu', precision='fp32', channels_last=True, compile=False, compile_mode=None,
                 fp32_head=True):
    """Prepare ``net`` for fast inference. The network is modified in place (eval mode, moved, memory
    format, and for ``*-cast`` precisions its dtype); pass a copy to keep the original.

    Args:
        net (nn.Module): An SR network (input NCHW in [0, 1]).
        device (str | torch.device): Target device. Default: 'cpu'.
        precision (str): One of ``PRECISIONS``. Default: 'fp32'.
        channels_last (bool): Use the channels_last memory format. Default: True.
        compile (bool): Wrap the network in ``torch.compile`` (CUDA only: raises on other devices,
            where it is not supported here). Default: False.
        compile_mode (str | None): ``mode`` of ``torch.compile`` (e.g. 'max-autotune',
            'reduce-overhead' for CUDA graphs). Default: None (torch's default).
        fp32_head (bool): In bf16/fp16, keep the output convolutions in float32. Default: True.

    Returns:
        FastSR: The prepared network.
    """
    device = torch.device(device)
    dtype, mode = dtype_and_mode(precision)
    if dtype == torch.float16 and device.type != 'cuda':
        raise InvalidValueError(f'precision {precision!r} needs a CUDA device, got {device}')
    if compile and device.type != 'cuda':
        raise InvalidValueError(f'compile=True is supported on CUDA only, got device {device}')
    net = net.eval().to(device)
    if mode == 'cast':
        net = net.to(dtype)
    fp32_modules = _wrap_head_fp32(net) if dtype is not None and fp32_head else []
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile:
        net = torch.compile(net, mode=compile_mode)
    return FastSR(net, device, precision, channels_last, fp32_modules)
