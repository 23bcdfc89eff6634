"""Bounded memory in BasicSR's evaluation (``mrnet test``, and validation in ``mrnet train``): for the duration
of a model's ``test()``, its MRNet networks run tile by tile whenever a whole forward would exceed the memory
budget (``mrnet_arch.core.memory``), with the receptive radius as overlap, so the output equals the untiled one up
to float rounding. The budget is ``$MRNET_MAX_MEMORY`` (e.g. ``2G``), else half of the memory available at each
forward.

BasicSR's evaluation holds every image whole, beside the forward: the LQ, GT and output as float tensors, their
``tensor2img`` copies and the float64 arrays of PSNR and SSIM. ``check_evaluation_memory`` estimates that from the
largest image of each validation and test set (``HELD_BYTES_PER_GT_PIXEL``) and refuses, before anything is
created, a set whose largest image would not fit in the memory available; ``mrnet infer`` has no such limit, as it
tiles and assembles its output in the final 8- or 16-bit type.
"""
import contextlib
import os
import sys

from mrnet_arch.core import memory
from mrnet_arch.core.arch_info import receptive_radius
from mrnet_arch.core.check_report import CheckError
from mrnet_arch.core.tiling import tiled_forward

# Host memory that BasicSR's evaluation holds per output (GT) pixel of one image, beside the forward, with PSNR
# and SSIM on Y and the image saved: the peak RSS rose by 146 bytes per GT pixel on a 3600x3600 photo and by 145
# per added pixel from 2400x2400 to 3600x3600 (benchmarks/evaluation_memory.py on a 2-core Intel Xeon,
# benchmarks/results/evaluation_memory_cpu_20261202.json); 1.2 times that.
HELD_BYTES_PER_GT_PIXEL = 175


def _bare(net):
    return getattr(net, 'module', net)  # DDP / DataParallel


def _mrnet_config(net):
    """The config of an MRNet or MultiScaleMRNet (read from its weights), or None for other networks."""
    from mrnet_arch.core.weights import WeightsError, infer_config
    try:
        return infer_config(_bare(net).state_dict())
    except (WeightsError, KeyError, AttributeError, ValueError):
        return None


@contextlib.contextmanager
def bounded_forwards(nets, max_memory=None, log=None):
    """Within the block, each MRNet network of ``nets`` runs tile by tile when a whole forward would exceed
    the budget; other networks are left alone. Undone on exit.

    Args:
        nets (list[torch.nn.Module]): Networks (DDP-wrapped ones are unwrapped).
        max_memory (int | str | None): Budget of one forward; None: half of the memory available at each call.
        log (callable | None): Receives one message per tiled forward. Default: print to stderr.
    """
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    patched = []
    for net in nets:
        config = _mrnet_config(net)
        if config is None:
            continue
        bare = _bare(net)
        forward = bare.forward

        def tiled(x, *args, _forward=forward, _bare_net=bare, _config=config, **kwargs):
            scale = int(kwargs.get('scale') or (args[0] if args else None) or _bare_net.upscale)
            pad = receptive_radius(_config, scale)
            h, w = x.shape[-2:]
            tile = memory.choose_tile(memory.mrnet_bytes_per_pixel(_config, scale), h, w,
                                      memory.memory_budget(x.device, max_memory), pad, batch=x.shape[0])
            if not tile:
                return _forward(x, *args, **kwargs)
            log(f'[mrnet] test: {w}x{h} input in tiles of {tile} px (overlap {pad} px) to stay within the memory '
                'budget')
            return tiled_forward(lambda part: _forward(part, *args, **kwargs), x, scale, tile, pad)

        bare.forward = tiled
        patched.append(bare)
    try:
        yield
    finally:
        for bare in patched:
            del bare.forward  # the class's forward again


def bound_model_test(model, max_memory=None, log=None):
    """Make ``model.test()`` run its networks within the memory budget (``bounded_forwards``); the model object
    alone is changed.

    Args:
        model: A BasicSR model (``net_g`` and optionally ``net_g_ema``).
        max_memory (int | str | None): See ``bounded_forwards``.
        log (callable | None): See ``bounded_forwards``.

    Returns:
        The model.
    """
    test = model.test

    def bounded_test(*args, **kwargs):
        nets = [getattr(model, name) for name in ('net_g_ema', 'net_g') if hasattr(model, name)]
        with bounded_forwards(nets, max_memory, log):
            return test(*args, **kwargs)

    model.test = bounded_test
    return model


def bounded_build_model(build_model, max_memory=None):
    """``build_model`` whose models test within the memory budget (for ``basicsr.test``'s ``build_model``).

    Args:
        build_model (callable): BasicSR's ``build_model``.
        max_memory (int | str | None): The budget; default ``$MRNET_MAX_MEMORY`` (e.g. ``2G``), else half of the
            memory available at each forward.

    Raises:
        SystemExit: ``$MRNET_MAX_MEMORY`` is no size (the message names it).
    """
    if max_memory is None and os.environ.get('MRNET_MAX_MEMORY'):
        try:
            max_memory = memory.parse_memory(os.environ['MRNET_MAX_MEMORY'], option='MRNET_MAX_MEMORY')
        except memory.MemoryBudgetError as err:
            raise SystemExit(f'mrnet test: {err}') from None

    def build(opt):
        return bound_model_test(build_model(opt), max_memory)

    return build


def check_evaluation_memory(largest, available=None):
    """Refuse validation and test sets whose largest image would not fit in memory in BasicSR's evaluation.

    Args:
        largest (dict): ``{phase key: (name, h, w)}``, the largest image at the output size of each set (as
            returned by ``dataset_checks.check_datasets``).
        available (int | None): Bytes; default: the host memory available now (``memory.available_memory``),
            unknown means no check.

    Raises:
        CheckError: Naming the set, the image, the memory needed and the memory available.
    """
    available = memory.available_memory('cpu') if available is None else available
    if available is None:
        return
    for phase_key, (name, h, w) in largest.items():
        needed = HELD_BYTES_PER_GT_PIXEL * h * w
        if needed > available:
            raise CheckError(
                f'datasets:{phase_key}: {name} is {w}x{h} at the output size; BasicSR\'s evaluation holds it '
                f'whole as float copies (about {memory.format_bytes(needed)} with the metrics), more than the '
                f'{memory.format_bytes(available)} of memory available. Leave it out of the set, or upscale it '
                'with mrnet infer, which tiles it within the memory budget (--max-memory).')
