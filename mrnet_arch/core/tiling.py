"""Running an SR network tile by tile, for inputs too large to run whole: the tile boxes, the tensor forward
``tiled_forward`` and ``tiled_upscale``, which writes each tile straight into the output image in its final
pixel type (no full-size float buffer).

With ``tile_pad`` at least the network's receptive-field radius (``mrnet_arch.core.arch_info.receptive_radius``
for MRNet), every kept output pixel sees exactly the input it sees untiled, so tiled and untiled outputs
agree up to float rounding. A smaller pad is faster but only approximately equal.
"""
import numpy as np


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
            yield (y0, y1, x0, x1), (max(y0 - tile_pad, 0), min(y1 + tile_pad, h), max(x0 - tile_pad, 0),
                                     min(x1 + tile_pad, w))


def tiled_forward(net, x, scale, tile=None, tile_pad=0):
    """Run ``net`` on ``x`` whole or tile by tile (the output is one tensor: for images too large for a
    float output, ``tiled_upscale``).

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
