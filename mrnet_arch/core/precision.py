"""Inference precisions: one table of names -> (torch dtype, mode), for ``mrnet infer``, ``mrnet bench`` and
``prepare_fast``.

Modes: None (plain float32), 'autocast' (``torch.autocast``: weights stay float32, convolutions run in the
low precision) and 'cast' (weights and input cast to the low precision). The dtypes of 'fp32', 'bf16' and
'fp16' are those of training (``train: amp`` of ``MRNetModel``: ``mrnet_arch.models.mrnet_model.AMP_DTYPES``).
"""
from mrnet_arch.models.mrnet_model import AMP_DTYPES

PRECISIONS = {
    name: (AMP_DTYPES[name], None if AMP_DTYPES[name] is None else 'autocast')
    for name in ('fp32', 'bf16', 'fp16')
}
PRECISIONS.update({f'{name}-cast': (AMP_DTYPES[name], 'cast') for name in ('bf16', 'fp16')})
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
        ValueError: An unknown name.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISION_NAMES}, got {precision!r}')
    return PRECISIONS[precision]
