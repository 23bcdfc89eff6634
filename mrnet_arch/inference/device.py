"""Devices: resolving a ``--device`` value and waiting for queued GPU work."""
import torch

from mrnet_arch.errors import InvalidValueError


def resolve_device(name):
    """Turn a ``--device`` value into a ``torch.device``.

    Args:
        name (str): 'auto' (CUDA if available, else the CPU), 'cpu', 'cuda' or 'cuda:N'.

    Returns:
        torch.device: The device.

    Raises:
        InvalidValueError: ``name`` is no device, or names CUDA on a machine without it.
    """
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InvalidValueError(f'--device {name}: not a device ({err})') from err
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise InvalidValueError(f'--device {name}: CUDA is not available (use --device cpu or auto)')
    return device


def sync(device):
    """Wait until the work queued on ``device`` is done (a no-op off CUDA), e.g. before reading a clock.

    Args:
        device (torch.device): The device.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
