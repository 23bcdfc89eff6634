"""MATLAB bicubic interpolation as a registered BasicSR arch: the "Bicubic" row of SR tables.

``matlab_resize`` is basicsr's ``matlab_functions.imresize`` (MATLAB ``imresize(..., 'bicubic')``: the
Keys cubic kernel with a = -0.5, a kernel widened by 1/scale when downscaling with antialiasing, and
symmetric (half-sample) border padding) written as two dense resampling matrices, so it runs batched on
``(B, C, H, W)`` tensors on any device and inside BasicSR's test pipeline. The matrices of the last few
sizes are cached (on the CPU, float32) rather than rebuilt on every forward.
"""
import functools
import math
import torch
from torch import nn as nn

from basicsr.utils.matlab_functions import calculate_weights_indices
from basicsr.utils.registry import ARCH_REGISTRY

MATRIX_CACHE_SIZE = 16  # matrices kept; 2 per image size (height, width)


def resize_matrix(in_length, out_length, scale, antialiasing=True):
    """The ``(out_length, in_length)`` matrix of MATLAB's bicubic resize along one axis.

    The weights and taps are basicsr's ``calculate_weights_indices``; taps falling outside the image are
    folded back onto it the way MATLAB (and basicsr) pad: symmetric, the border pixel repeated.

    Args:
        in_length (int): Input size along the axis.
        out_length (int): Output size along the axis.
        scale (float): Scale factor (> 1 upsamples).
        antialiasing (bool): Widen the kernel when downsampling. Default: True.

    Returns:
        Tensor: float32 CPU matrix ``M`` with ``out = M @ in`` along that axis (a new tensor: the cached
        one is not handed out).
    """
    return _cached_resize_matrix(in_length, out_length, scale, antialiasing).clone()


@functools.lru_cache(maxsize=MATRIX_CACHE_SIZE)
def _cached_resize_matrix(in_length, out_length, scale, antialiasing):
    """``resize_matrix``, cached by its arguments; callers must not modify the result in place.

    Built outside inference mode, so that a matrix first made under ``torch.inference_mode`` can later
    take part in autograd (inference tensors cannot be saved for backward).
    """
    with torch.inference_mode(False):
        return _build_resize_matrix(in_length, out_length, scale, antialiasing)


def _build_resize_matrix(in_length, out_length, scale, antialiasing):
    weights, indices, sym_len_s, _ = calculate_weights_indices(in_length, out_length, scale, 'cubic', 4, antialiasing)
    src = indices.long() - sym_len_s  # basicsr's indices address the padded signal
    for _ in range(2):  # fold out-of-range taps back: -1 -> 0, -2 -> 1, n -> n - 1, ... (twice: tiny inputs)
        src = torch.where(src < 0, -src - 1, src)
        src = torch.where(src >= in_length, 2 * in_length - 1 - src, src)
    if src.min() < 0 or src.max() >= in_length:
        raise ValueError(f'input of {in_length} px is too small to resize by {scale}')
    matrix = torch.zeros(out_length, in_length, dtype=torch.float32)
    matrix.scatter_add_(1, src, weights.float())
    return matrix


def matlab_resize(x, scale, antialiasing=True):
    """MATLAB ``imresize(x, scale, 'bicubic')`` of a batch, without rounding or clamping.

    Args:
        x (Tensor): ``(B, C, H, W)`` (or ``(C, H, W)``) tensor, any float dtype and device.
        scale (float): Scale factor, the same for height and width (output size ``ceil(H * scale)``).
        antialiasing (bool): Antialias when downsampling. Default: True.

    Returns:
        Tensor: Resized tensor, same dtype and device as ``x``.
    """
    h, w = x.shape[-2:]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    mh = _cached_resize_matrix(h, out_h, scale, antialiasing).to(device=x.device, dtype=x.dtype)
    mw = _cached_resize_matrix(w, out_w, scale, antialiasing).to(device=x.device, dtype=x.dtype)
    return torch.einsum('oh,...hw,pw->...op', mh, x, mw)


@ARCH_REGISTRY.register()
class Bicubic(nn.Module):
    """MATLAB bicubic upsampling by ``upscale``; no learnable parameters.

    Use it as ``network_g: {type: Bicubic, upscale: 4}`` with ``pretrain_network_g: ~`` to get the
    bicubic baseline through the same test pipeline, crop border and Y-channel metrics as a trained model.

    Args:
        upscale (int): Upsampling factor.
        num_in_ch (int): Channel number of inputs (checked in forward). Default: 3.
        num_out_ch (int | None): Channel number of outputs; must equal num_in_ch. Default: num_in_ch.
        **kwargs: Other arguments of SR archs (num_feat, ...) are accepted and ignored, so a YAML can
            switch ``type`` without editing the rest of ``network_g``.
    """

    def __init__(self, upscale, num_in_ch=3, num_out_ch=None, **kwargs):
        super().__init__()
        if num_out_ch is not None and num_out_ch != num_in_ch:
            raise ValueError(f'Bicubic: num_out_ch ({num_out_ch}) must equal num_in_ch ({num_in_ch})')
        if upscale <= 0:
            raise ValueError(f'Bicubic: upscale must be positive, got {upscale}')
        self.upscale = upscale
        self.num_in_ch = num_in_ch

    def forward(self, x):
        if x.size(-3) != self.num_in_ch:
            raise ValueError(f'Bicubic: expected {self.num_in_ch} input channels, got {x.size(-3)}')
        return matlab_resize(x, self.upscale)
