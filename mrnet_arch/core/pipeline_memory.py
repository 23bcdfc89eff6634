"""Bounded memory in BasicSR's test pipeline (``mrnet test``): for the duration of a model's ``test()``, its MRNet
networks run tile by tile whenever a whole forward would exceed the memory budget (``mrnet_arch.core.memory``),
with the receptive radius as overlap, so the output equals the untiled one up to float rounding. The budget is
``$MRNET_MAX_MEMORY`` (e.g. ``2G``), else half of the memory available at each forward.

BasicSR's model keeps the whole output as one float tensor (``model.output``), so only the forward's activations
are bounded here, not that tensor; ``mrnet infer`` assembles its output in the final 8- or 16-bit type.
"""
import contextlib
import os
import sys

from mrnet_arch.core import memory
from mrnet_arch.core.arch_info import receptive_radius
from mrnet_arch.core.tiling import tiled_forward


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
