"""Memory of a forward pass: the budget (``--max-memory`` or a share of the memory available now), the estimate
of one forward from the arch and the image size, and the tile size that keeps a forward within the budget.

The MRNet model (``mrnet_bytes_per_pixel``) counts, per input pixel, the float32 feature maps alive at the peak
of a forward: the T recursion outputs kept for the fusion and their stacked copy (2 T num_feat), the fused
maps at the output resolution before and after PixelShuffle and after the HR conv (3 s^2 num_feat), and the
working maps of a recursion (``_WORKING_MAPS`` num_feat). It is then multiplied by ``SAFETY``. The factors were
checked against the peak RSS rise of real forwards on the CPU (``benchmarks/activation_memory.py``, results in
``benchmarks/results/activation_memory_cpu_*.json``; ``docs/inference.md`` quotes them): the model is at or
above every measurement. Archs other than MRNet get a cruder, larger bound from their widest convolution
(``generic_bytes_per_pixel``).
"""
import math
import os
import re

import torch

SAFETY = 1.5
BUDGET_SHARE = 0.5  # the share of the memory available now that a forward may use by default
_WORKING_MAPS = 8
_FLOAT = 4  # bytes; reduced precisions are counted as float32 (autocast keeps float32 copies too)
MIN_TILE = 16
_UNITS = {'': 1, 'b': 1, 'k': 2**10, 'kb': 2**10, 'kib': 2**10, 'm': 2**20, 'mb': 2**20, 'mib': 2**20,
          'g': 2**30, 'gb': 2**30, 'gib': 2**30, 't': 2**40, 'tb': 2**40, 'tib': 2**40}
_SIZE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$')


class MemoryBudgetError(ValueError):
    """A budget that is no size, or too small for even the smallest tile; names the option."""


def parse_memory(text, option='--max-memory'):
    """A memory size such as ``2G``, ``512M``, ``1.5GiB`` or ``1000000`` (bytes) -> bytes (powers of 1024).

    Args:
        text (str | int): The size.
        option (str): The option named in errors. Default: '--max-memory'.

    Returns:
        int: Bytes (> 0).

    Raises:
        MemoryBudgetError: Not a positive size with an optional unit K, M, G, T (B, KB, KiB, ... accepted).
    """
    match = _SIZE.match(str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS or float(match.group(1)) <= 0:
        raise MemoryBudgetError(f'{option} {text!r}: expected a positive size such as 2G, 512M or 1.5GiB '
                                '(units K, M, G, T: powers of 1024; no unit: bytes)')
    return int(float(match.group(1)) * _UNITS[unit])


def format_bytes(n):
    """``n`` bytes as a short text, e.g. '1.50 GiB'."""
    for unit, size in (('GiB', 2**30), ('MiB', 2**20), ('KiB', 2**10)):
        if n >= size:
            return f'{n / size:.2f} {unit}'
    return f'{int(n)} B'


def _meminfo_available():
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, or None."""
    try:
        with open('/proc/meminfo', encoding='ascii') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_left():
    """Bytes of address space left under ``RLIMIT_AS`` (a ``ulimit -v``), or None without a limit."""
    try:
        import resource
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open('/proc/self/status', encoding='ascii') as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmSize:'))
        return max(limit - size, 0)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def available_memory(device):
    """The memory a forward can use now: free GPU memory on CUDA; on the CPU ``MemAvailable``, or the address
    space left under ``RLIMIT_AS`` when that is smaller. None when unknown.

    Args:
        device (torch.device | str): The device.

    Returns:
        int | None: Bytes.
    """
    device = torch.device(device)
    if device.type == 'cuda':
        return int(torch.cuda.mem_get_info(device)[0])
    known = [m for m in (_meminfo_available(), _address_space_left()) if m is not None]
    return min(known) if known else None


def memory_budget(device, max_memory=None):
    """The bytes one forward may use: ``max_memory`` when given, else ``BUDGET_SHARE`` of ``available_memory``.

    Args:
        device (torch.device | str): The device.
        max_memory (int | str | None): A size (``parse_memory``) or None. Default: None.

    Returns:
        int | None: Bytes; None when nothing is given and the available memory is unknown (no bound).
    """
    if max_memory is not None:
        return max_memory if isinstance(max_memory, int) else parse_memory(max_memory)
    available = available_memory(device)
    return None if available is None else int(available * BUDGET_SHARE)


def mrnet_bytes_per_pixel(config, scale=None):
    """Estimated peak bytes of one MRNet forward per input pixel (see the module docstring).

    Args:
        config (dict): MRNet or MultiScaleMRNet config (``mrnet_arch.core.weights.infer_config``).
        scale (int | None): Scale for MultiScaleMRNet. Default: its ``upscale`` or first scale.

    Returns:
        float: Bytes per input pixel, ``SAFETY`` included.
    """
    if config['type'] == 'MultiScaleMRNet':
        scale = int(scale or config.get('upscale') or config['upscales'][0])
        t = dict(zip(config['upscales'], config['num_recursions']))[scale]
    else:
        scale, t = int(config['upscale']), int(config['num_recursion'])
    feat = int(config['num_feat'])
    maps = feat * (2 * t + 3 * scale**2 + _WORKING_MAPS)
    maps += int(config.get('num_in_ch', 3)) + 2 * int(config.get('num_out_ch', 3)) * scale**2  # input, output
    return _FLOAT * maps * SAFETY


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


def choose_tile(bytes_per_pixel, h, w, budget, tile_pad, batch=1):
    """The tile size that keeps one forward within ``budget``, or 0 when the whole image fits.

    A tile of size t runs on (t + 2 pad)^2 input pixels (less at the image border); the largest t (a multiple
    of 8, at least ``MIN_TILE``) whose forward fits is chosen.

    Args:
        bytes_per_pixel (float | None): Estimated bytes per input pixel (None: unknown, no tiling).
        h (int): Input height.
        w (int): Input width.
        budget (int | None): Bytes (None: no bound).
        tile_pad (int): Overlap in input pixels.
        batch (int): Images run at once (channels run separately by a 1-channel model). Default: 1.

    Returns:
        int: Tile size in input pixels; 0 for the whole image.

    Raises:
        MemoryBudgetError: Even a ``MIN_TILE`` tile does not fit ``budget``.
    """
    if not bytes_per_pixel or budget is None:
        return 0
    per_pixel = bytes_per_pixel * batch
    if per_pixel * h * w <= budget:
        return 0
    side = math.isqrt(int(budget / per_pixel)) - 2 * tile_pad
    tile = side // 8 * 8
    if tile < MIN_TILE:
        need = per_pixel * (MIN_TILE + 2 * tile_pad)**2
        raise MemoryBudgetError(f'--max-memory: a budget of {format_bytes(budget)} is too small for the smallest '
                                f'tile ({MIN_TILE} px plus an overlap of {tile_pad} px needs about '
                                f'{format_bytes(need)}); give a larger --max-memory')
    return min(tile, max(h, w))


def peak_rss_bytes():
    """This process's peak resident memory so far (``ru_maxrss``), in bytes."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 if os.name == 'posix' else 0
