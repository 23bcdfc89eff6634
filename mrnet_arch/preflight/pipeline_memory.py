"""The evaluation memory check of ``mrnet test`` and ``mrnet train`` (validation).

BasicSR's evaluation holds every image whole, beside the forward: the LQ, GT and output as float tensors, their
``tensor2img`` copies and the float64 arrays of PSNR and SSIM. ``check_evaluation_memory`` estimates that from the
largest image of each validation and test set (``HELD_BYTES_PER_GT_PIXEL``) and refuses, before anything is
created, a set whose largest image would not fit in the memory available; ``mrnet infer`` has no such limit, as it
tiles and assembles its output in the final 8- or 16-bit type. The forward itself runs in tiles within the memory
budget in ``MRNetModel.test()`` (``mrnet_arch/models/mrnet_tiling.py``).
"""
from mrnet_arch.models import mrnet_tiling
from mrnet_arch.preflight.check_report import CheckError

# Host memory that BasicSR's evaluation holds per output (GT) pixel of one image, beside the forward, with PSNR
# and SSIM on Y and the image saved: the peak RSS rose by 146 bytes per GT pixel on a 3600x3600 photo and by 145
# per added pixel from 2400x2400 to 3600x3600 (benchmarks/evaluation_memory.py on a 2-core Intel Xeon,
# benchmarks/results/evaluation_memory_cpu_20261202.json); 1.2 times that.
HELD_BYTES_PER_GT_PIXEL = 175


def check_evaluation_memory(largest, available=None):
    """Refuse validation and test sets whose largest image would not fit in memory in BasicSR's evaluation.

    Args:
        largest (dict): ``{phase key: (name, h, w)}``, the largest image at the output size of each set (as
            returned by ``dataset_checks.check_datasets``).
        available (int | None): Bytes; default: the host memory available now (``mrnet_tiling.available_memory``),
            unknown means no check.

    Raises:
        CheckError: Naming the set, the image, the memory needed and the memory available.
    """
    available = mrnet_tiling.available_memory('cpu') if available is None else available
    if available is None:
        return
    for phase_key, (name, h, w) in largest.items():
        needed = HELD_BYTES_PER_GT_PIXEL * h * w
        if needed > available:
            raise CheckError(
                f'datasets:{phase_key}: {name} is {w}x{h} at the output size; BasicSR\'s evaluation holds it '
                f'whole as float copies (about {mrnet_tiling.format_bytes(needed)} with the metrics), more than the '
                f'{mrnet_tiling.format_bytes(available)} of memory available. Leave it out of the set, or upscale it '
                'with mrnet infer, which tiles it within the memory budget (--max-memory).')
