"""Running an SR network tile by tile, for inputs too large to run whole.

With ``tile_pad`` at least the network's receptive-field radius (``mrnet_arch.core.arch_info.receptive_radius``
for MRNet), every kept output pixel sees exactly the input it sees untiled, so tiled and untiled outputs
agree up to float rounding. A smaller pad is faster but only approximately equal.
"""


def tiled_forward(net, x, scale, tile=None, tile_pad=0):
    """Run ``net`` on ``x`` whole or tile by tile.

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
    if tile < 1 or tile_pad < 0:
        raise ValueError(f'tile must be >= 1 and tile_pad >= 0, got {tile} and {tile_pad}')
    out = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
            py1, px1 = min(y1 + tile_pad, h), min(x1 + tile_pad, w)
            part = net(x[:, :, py0:py1, px0:px1])
            if out is None:
                out = part.new_empty(b, part.shape[1], h * scale, w * scale)
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                part[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    return out
