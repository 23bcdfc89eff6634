"""Tiles and the memory budget of a forward pass: the budget (a size such as ``2G``, or a share of the memory
available now), the memory model of an MRNet forward, the tile size that keeps a forward within the budget, the
tile boxes and ``tiled_forward``, and the ``val: tile`` option that ``MRNetModel.test()`` reads.

The MRNet memory model (``mrnet_bytes_per_pixel``) counts, per input pixel, the float32 feature maps alive at the
peak of a forward: the T recursion outputs kept for the fusion and their stacked copy (2 T num_feat), the fused
maps at the output resolution before and after PixelShuffle and after the HR conv (3 s^2 num_feat), and the
working maps of a recursion (``WORKING_MAPS`` num_feat). It is then multiplied by ``SAFETY``. The factors were
checked against the peak RSS rise of real forwards on the CPU (``benchmarks/activation_memory.py`` of the MRNet
plugin, whose ``docs/inference.md`` quotes them): the model is at or above every measurement.

With ``tile_pad`` at least the network's receptive-field radius (``receptive_radius`` of ``mrnet_config.py``,
beside the arch), every kept output pixel sees exactly the input it sees untiled, so tiled and untiled outputs
agree up to float rounding. A smaller pad is faster but only approximately equal.

This file imports only torch, the standard library and its sibling ``mrnet_options.py`` (the option schema, for the
keys of ``val: tile``), so it works in the plugin (where ``mrnet_arch.inference`` imports it) and copied beside
``mrnet_model.py`` into a BasicSR checkout's ``basicsr/models/``.
"""
import importlib
import math
import re
import torch

from .mrnet_options import section_keys

SAFETY = 1.5
BUDGET_SHARE = 0.5  # the share of the memory available now that a forward may use by default
WORKING_MAPS = 8
FLOAT_BYTES = 4  # bytes; reduced precisions are counted as float32 (autocast keeps float32 copies too)
MIN_TILE = 16
_UNITS = {
    '': 1,
    'b': 1,
    'k': 2**10,
    'kb': 2**10,
    'kib': 2**10,
    'm': 2**20,
    'mb': 2**20,
    'mib': 2**20,
    'g': 2**30,
    'gb': 2**30,
    'gib': 2**30,
    't': 2**40,
    'tb': 2**40,
    'tib': 2**40
}
_SIZE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$')
BUDGET_ENV = 'MRNET_MAX_MEMORY'  # the budget of MRNetModel.test() when val:tile gives none
TILE_KEYS = section_keys('val:tile')  # tile_size, tile_pad, max_memory: the keys of val:tile, in the option schema
MRNET_ARCHS = ('MRNet', 'MultiScaleMRNet')


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
        config (dict): MRNet or MultiScaleMRNet config (``infer_config`` of ``mrnet_config.py``).
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
    maps = feat * (2 * t + 3 * scale**2 + WORKING_MAPS)
    maps += int(config.get('num_in_ch', 3)) + 2 * int(config.get('num_out_ch', 3)) * scale**2  # input, output
    return FLOAT_BYTES * maps * SAFETY


def choose_tile(bytes_per_pixel, h, w, budget, tile_pad, batch=1, option='--max-memory'):
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
        option (str): What set the budget, named in the error. Default: '--max-memory'.

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
        raise MemoryBudgetError(f'{option}: a budget of {format_bytes(budget)} is too small for the smallest '
                                f'tile ({MIN_TILE} px plus an overlap of {tile_pad} px needs about '
                                f'{format_bytes(need)}); give a larger {option}')
    return min(tile, max(h, w))


def tile_boxes(h, w, tile, tile_pad):
    """The tiles of an ``h`` x ``w`` input: for each, its own box and the padded box that is run.

    Args:
        h (int): Input height.
        w (int): Input width.
        tile (int | None): Tile size; None or 0 (or a tile covering the input): one box, the whole input.
        tile_pad (int): Input pixels added on every side (clipped at the image border).

    Yields:
        tuple[tuple[int, int, int, int], tuple[int, int, int, int]]: ``(y0, y1, x0, x1)`` of the tile and
        ``(py0, py1, px0, px1)`` of the padded box.

    Raises:
        ValueError: ``tile`` < 0 or ``tile_pad`` < 0.
    """
    if (tile or 0) < 0 or tile_pad < 0:
        raise ValueError(f'tile must be >= 1 and tile_pad >= 0, got {tile} and {tile_pad}')
    if not tile or (tile >= h and tile >= w):
        yield (0, h, 0, w), (0, h, 0, w)
        return
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            padded = (max(y0 - tile_pad, 0), min(y1 + tile_pad, h), max(x0 - tile_pad, 0), min(x1 + tile_pad, w))
            yield (y0, y1, x0, x1), padded


def tiled_forward(net, x, scale, tile=None, tile_pad=0):
    """Run ``net`` on ``x`` whole or tile by tile (the output is one tensor).

    Args:
        net (callable): Maps a [B, C, h, w] tensor to [B, C', h*scale, w*scale].
        x (torch.Tensor): Input, [B, C, H, W].
        scale (int): Upsampling factor of ``net``.
        tile (int | None): Tile size in input pixels; None or 0 (or a tile covering the whole input)
            runs the input whole.
        tile_pad (int): Input pixels added on every side of a tile (clipped at the image border) and
            cropped from its output.

    Returns:
        torch.Tensor: The output, [B, C', H*scale, W*scale].

    Raises:
        ValueError: ``tile`` < 1 or ``tile_pad`` < 0 (when tiling).
    """
    b, _, h, w = x.shape
    if not tile or (tile >= h and tile >= w):
        return net(x)
    out = None
    for (y0, y1, x0, x1), (py0, py1, px0, px1) in tile_boxes(h, w, tile, tile_pad):
        part = net(x[:, :, py0:py1, px0:px1])
        if out is None:
            out = part.new_empty(b, part.shape[1], h * scale, w * scale)
        oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
        out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
            part[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    return out


def _is_count(value, least):
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _budgets(tile, environ):
    """``[(size, option)]`` of the budgets given: ``val:tile:max_memory``, then ``$MRNET_MAX_MEMORY``."""
    given = [(tile.get('max_memory'), 'val:tile:max_memory'), ((environ or {}).get(BUDGET_ENV), BUDGET_ENV)]
    return [(value, option) for value, option in given if value not in (None, '')]


def tile_option_problems(val_opt, environ=None):
    """What is wrong with ``val: tile`` (and ``$MRNET_MAX_MEMORY``, the budget when it gives none).

    Args:
        val_opt (dict): The ``val`` options.
        environ (dict | None): The environment to read ``MRNET_MAX_MEMORY`` from. Default: none read.

    Returns:
        list[str]: One message per bad value, naming it; empty when all are fine.
    """
    tile = (val_opt or {}).get('tile') if isinstance(val_opt, dict) else None
    problems = []
    if tile is not None and not isinstance(tile, dict):
        problems.append(f'val:tile must be a mapping such as {{tile_size: 256, tile_pad: 32}} or {{max_memory: 2G}}, '
                        f'got {tile!r}')
        tile = None
    tile = tile or {}
    for key in tile:
        if key not in TILE_KEYS:
            problems.append(f'val:tile:{key} is no tile option: expected {", ".join(TILE_KEYS)}')
    if tile.get('tile_size') is not None and not _is_count(tile['tile_size'], 1):
        problems.append(f'val:tile:tile_size must be a whole number >= 1 (input pixels), got {tile["tile_size"]!r}')
    if tile.get('tile_pad') is not None and not _is_count(tile['tile_pad'], 0):
        problems.append(f'val:tile:tile_pad must be a whole number >= 0 (input pixels), got {tile["tile_pad"]!r}')
    if tile.get('tile_size') is not None and tile.get('max_memory') is not None:
        problems.append('val:tile: give tile_size (fixed tiles) or max_memory (tiles chosen from the budget), '
                        'not both')
    for value, option in _budgets(tile, environ):
        try:
            parse_memory(value, option=option)
        except MemoryBudgetError as e:
            problems.append(str(e))
    return problems


def tile_option(val_opt, environ=None):
    """The tiling of ``MRNetModel.test()`` from ``val: tile``, checked.

    - absent: tiles chosen from the budget ``$MRNET_MAX_MEMORY``, else half of the memory available at each test;
    - ``{tile_size: N, tile_pad: P}``: tiles of N x N input pixels, each with P more on every side
      (HAT's ``tile`` option);
    - ``{max_memory: 2G}``: tiles chosen from that budget.

    ``tile_pad`` defaults to MRNet's receptive radius, with which tiled and untiled outputs agree up to float
    rounding.

    Args:
        val_opt (dict): The ``val`` options.
        environ (dict | None): The environment to read ``MRNET_MAX_MEMORY`` from. Default: none read.

    Returns:
        dict: ``tile_size`` (int or None: chosen from the budget), ``tile_pad`` (int or None: the receptive
        radius), ``max_memory`` (bytes or None: half of the memory available) and ``budget_from`` (the option
        that set the budget, for messages; None: none did).

    Raises:
        ValueError: Naming every bad value.
    """
    problems = tile_option_problems(val_opt, environ)
    if problems:
        raise ValueError('; '.join(problems))
    tile = (val_opt or {}).get('tile') or {}
    settings = {'tile_size': tile.get('tile_size'), 'tile_pad': tile.get('tile_pad'), 'max_memory': None}
    settings['budget_from'] = None
    for value, option in _budgets(tile, environ)[:1]:  # val:tile:max_memory first
        settings['max_memory'], settings['budget_from'] = parse_memory(value, option=option), option
    return settings


def mrnet_facts(net):
    """The facts module (``mrnet_config.py``) beside an MRNet network's arch, and its config read from its weights.

    ``mrnet_config.py`` lies beside ``mrnet_arch.py``: in ``mrnet_arch/archs/`` in the plugin, in
    ``basicsr/archs/`` in a BasicSR checkout; it is imported from the arch's own package.

    Args:
        net (torch.nn.Module): A bare network (not DDP-wrapped).

    Returns:
        tuple | None: ``(mrnet_config module, config)``; None for a network other than MRNet or MultiScaleMRNet.
    """
    if type(net).__name__ not in MRNET_ARCHS:
        return None
    package = type(net).__module__.rpartition('.')[0]
    try:
        facts = importlib.import_module(f'{package}.mrnet_config')
    except ImportError:
        return None
    return facts, facts.infer_config(net.state_dict())
