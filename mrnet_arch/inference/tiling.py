"""Running an SR network tile by tile on a numpy image, for inputs too large to run whole: ``tiled_upscale`` writes
each tile straight into the output image in its final pixel type (no full-size float buffer). The tile boxes
(``tile_boxes``) and the tensor forward (``tiled_forward``) are in ``mrnet_arch/models/mrnet_tiling.py``
(torch-only, shared with ``MRNetModel.test()``).

With ``tile_pad`` at least the network's receptive-field radius (``mrnet_arch.archs.mrnet_config.receptive_radius``
for MRNet), every kept output pixel sees exactly the input it sees untiled, so tiled and untiled outputs
agree up to float rounding. A smaller pad is faster but only approximately equal.
"""
import numpy as np

from mrnet_arch.models.mrnet_tiling import tile_boxes


def tiled_upscale(run, img, scale, tile, tile_pad, out_channels=None, out_dtype=None):
    """Upscale a numpy image tile by tile into an output array of its final type.

    Each padded tile of ``img`` (as stored: its own pixel type) goes through ``run``, which returns the tile's
    output as a numpy array of ``out_dtype``; only the tile's own part is kept. So besides the output array,
    memory holds one tile at a time.

    Args:
        run (callable): ``(H_t, W_t, C) array -> (H_t*scale, W_t*scale, C') array`` of ``out_dtype``.
        img (np.ndarray): ``(H, W, C)`` input.
        scale (int): The scale.
        tile (int | None): Tile size in input pixels (None or 0: the whole image in one run).
        tile_pad (int): Overlap in input pixels.
        out_channels (int | None): C' (default: C).
        out_dtype (np.dtype | None): Output pixel type (default: ``img.dtype``).

    Returns:
        np.ndarray: ``(H*scale, W*scale, C')`` of ``out_dtype``.
    """
    h, w = img.shape[:2]
    out = np.empty((h * scale, w * scale, out_channels or img.shape[2]), out_dtype or img.dtype)
    for (y0, y1, x0, x1), (py0, py1, px0, px1) in tile_boxes(h, w, tile, tile_pad):
        part = run(img[py0:py1, px0:px1])
        oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
        out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
            part[oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    return out
