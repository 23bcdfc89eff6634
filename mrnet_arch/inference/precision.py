"""Inference precisions: one table of names -> (torch dtype, mode), for ``mrnet infer``, ``mrnet bench`` and
``prepare_fast``.

Modes: None (plain float32), 'autocast' (``torch.autocast``: weights stay float32, convolutions run in the
low precision) and 'cast' (weights and input cast to the low precision). The dtypes of 'fp32', 'bf16' and
'fp16' are those of training (``train: amp`` of ``MRNetModel``; ``tests/test_image_limits.py`` checks that the two
tables agree).
"""
import torch

from mrnet_arch.errors import InvalidValueError
from mrnet_arch.measurement.machine import native_bf16

LOW_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
PRECISIONS = {'fp32': (None, None)}
PRECISIONS.update({name: (dtype, 'autocast') for name, dtype in LOW_DTYPES.items()})
PRECISIONS.update({f'{name}-cast': (dtype, 'cast') for name, dtype in LOW_DTYPES.items()})
PRECISION_NAMES = tuple(PRECISIONS)  # fp32, bf16, fp16, bf16-cast, fp16-cast
AUTOCAST_PRECISIONS = tuple(name for name, (_, mode) in PRECISIONS.items() if mode != 'cast')  # fp32, bf16, fp16


def dtype_and_mode(precision):
    """The torch dtype and mode of a precision name.

    Args:
        precision (str): One of ``PRECISION_NAMES``.

    Returns:
        tuple[torch.dtype | None, str | None]: ``(None, None)`` for 'fp32', else the low dtype and
        'autocast' or 'cast'.

    Raises:
        InvalidValueError: An unknown name.
    """
    if precision not in PRECISIONS:
        raise InvalidValueError(f'precision must be one of {PRECISION_NAMES}, got {precision!r}')
    return PRECISIONS[precision]


# Whether 'auto' picks bf16 where the hardware runs it natively. Decided by the Y-PSNR of bf16 against fp32 with
# the demo weights on the held-out photos (benchmarks/precision_auto.py; docs/inference.md): bf16 is kept only
# while it stays within AUTO_BF16_TOLERANCE_DB of fp32.
AUTO_BF16 = True
AUTO_BF16_TOLERANCE_DB = 0.05
AUTO = 'auto'


def resolve_precision(precision, device):
    """The precision to run: ``precision`` itself, or for 'auto' bf16 on a GPU and on CPUs with native bf16
    (``native_bf16``) when ``AUTO_BF16``, else fp32.

    Args:
        precision (str): 'auto' or one of ``PRECISION_NAMES``.
        device (torch.device | str): The device.

    Returns:
        str: One of ``PRECISION_NAMES``.

    Raises:
        InvalidValueError: An unknown name.
    """
    if precision != AUTO:
        dtype_and_mode(precision)
        return precision
    device = torch.device(device)
    if AUTO_BF16 and (device.type == 'cuda' or (device.type == 'cpu' and native_bf16())):
        return 'bf16'
    return 'fp32'
