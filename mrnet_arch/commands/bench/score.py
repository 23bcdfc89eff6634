"""Scoring of ``mrnet bench``: Y-channel PSNR/SSIM of a prepared model on benchmark folders, with the shared
evaluation (``mrnet_arch.measurement.evaluation``: BasicSR's metrics, crop border = scale) through
``mrnet_arch.inference.upscaler.Upscaler`` (tiles when a forward would exceed the memory budget)."""
from mrnet_arch.errors import InputError
from mrnet_arch.inference.upscaler import OTHER_PAD, Upscaler
from mrnet_arch.measurement.evaluation import dataset_name, evaluate, find_pairs
from mrnet_arch.models.mrnet_tiling import MemoryBudgetError
from mrnet_arch.storage.images import ImageError


def load_benchmarks(folders, scale):
    """The (GT, LR) pairs of each benchmark folder, by dataset name.

    Args:
        folders (list[str]): Folders in BasicSR's Set5 layout (``GTmod12/`` + ``LRbicx{scale}/``).
        scale (int): The scale.

    Returns:
        dict: Dataset name -> list of (GT path, LR path).

    Raises:
        PairingError: A folder without that layout or without pairs.
    """
    return {dataset_name(d): find_pairs(d, scale) for d in folders}


def score_model(fast, benchmarks, scale, max_memory=None, max_pixels=None, bytes_per_pixel=None,
                tile_pad=OTHER_PAD):
    """Mean Y-PSNR/SSIM of a prepared model on each benchmark.

    Args:
        fast (callable): The prepared network (``FastSR``).
        benchmarks (dict): ``load_benchmarks`` result.
        scale (int): The scale (also the crop border).
        max_memory (int | None): Memory budget of one forward in bytes (None: half of the memory available).
        max_pixels (int | None): Refuse larger images (default ``images.MAX_PIXELS``).
        bytes_per_pixel (float | None): The model's estimated forward memory per input pixel (None: unknown,
            whole images unless they run out of memory).
        tile_pad (int): Tile overlap when tiles are needed. Default: ``OTHER_PAD``.

    Returns:
        dict: Dataset name -> ``{'psnr', 'ssim', 'images'}``.

    Raises:
        InputError: An image that cannot be read or is too large, or a budget too small for any tile (a plain
            ``InputError``, so that it stops the command rather than counting as a model's failure).
    """
    up = Upscaler(fast, None, getattr(fast, 'device', 'cpu'), getattr(fast, 'precision', 'fp32'), None, tile_pad,
                  scale=scale, max_memory=max_memory, bytes_per_pixel=bytes_per_pixel,
                  log=lambda message: print(message.replace('[mrnet]', '[bench]'), flush=True))
    try:
        return {dataset: evaluate(up, pairs, scale, max_pixels) for dataset, pairs in benchmarks.items()}
    except (ImageError, MemoryBudgetError) as err:
        raise InputError(str(err)) from err
