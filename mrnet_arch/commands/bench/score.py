"""Scoring of ``mrnet bench``: Y-channel PSNR/SSIM of a prepared model on benchmark folders, with the shared
evaluation (``mrnet_arch.core.evaluation``: BasicSR's metrics, crop border = scale)."""
from mrnet_arch.core.evaluation import PairingError, dataset_name, evaluate, find_pairs
from mrnet_arch.core.images import ImageError


def load_benchmarks(folders, scale, prog):
    """The (GT, LR) pairs of each benchmark folder, by dataset name.

    Args:
        folders (list[str]): Folders in BasicSR's Set5 layout (``GTmod12/`` + ``LRbicx{scale}/``).
        scale (int): The scale.
        prog (str): Command name that starts error messages.

    Returns:
        dict: Dataset name -> list of (GT path, LR path).

    Raises:
        SystemExit: A folder without that layout or without pairs.
    """
    try:
        return {dataset_name(d): find_pairs(d, scale) for d in folders}
    except PairingError as err:
        raise SystemExit(f'{prog}: {err}') from err


def score_model(fast, benchmarks, scale, prog):
    """Mean Y-PSNR/SSIM of a prepared model on each benchmark.

    Args:
        fast (callable): The prepared network (``FastSR``).
        benchmarks (dict): ``load_benchmarks`` result.
        scale (int): The scale (also the crop border).
        prog (str): Command name that starts error messages.

    Returns:
        dict: Dataset name -> ``{'psnr', 'ssim', 'images'}``.

    Raises:
        SystemExit: An image that cannot be read.
    """
    try:
        return {dataset: evaluate(fast, pairs, scale) for dataset, pairs in benchmarks.items()}
    except ImageError as err:
        raise SystemExit(f'{prog}: {err}') from err
