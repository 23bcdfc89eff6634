"""``mrnet infer``: super-resolve your own images (no ground truth needed).

Image kinds are kept:

- 8-bit and 16-bit images stay 8-bit and 16-bit (processed as float in [0, 1]);
- grayscale stays grayscale: for an RGB model the gray channel is replicated to RGB and the output is
  converted back to one channel (ITU-R BT.601 luma, as ``cv2.COLOR_BGR2GRAY``); a 1-channel model
  processes each channel of a colour image separately;
- RGBA: the RGB channels go through the model; the alpha channel is upscaled with bicubic
  interpolation (``cv2.INTER_CUBIC``) and clipped to its range.

The output keeps the input's file format (JPEG written at quality 95) and name, plus ``--suffix``.
The file types are ``mrnet prepare``'s (``mrnet_arch.prepare.IMAGE_EXTENSIONS``); ``.ppm`` files are
read as colour and ``.pgm`` files as grayscale, so their outputs can be written in the same format.

``--precision bf16`` / ``fp16`` runs the network through ``mrnet_arch.fast.prepare_fast`` (autocast, the
output head kept in float32); ``fp16`` needs ``--device cuda``.

Tiling (``--tile N``) cuts the input into N x N tiles, runs each with ``--tile-pad P`` extra input
pixels on every side and keeps only the tile's own part of the output. The default pad is the
model's receptive-field radius (``mrnet_arch.weights.receptive_radius``): every kept output pixel
then sees exactly the input it sees untiled, so tiled and untiled outputs agree up to float rounding
(far below 1/255). A smaller pad is faster but only approximately equal.
"""
import argparse
import os
import sys
from os import path as osp

import cv2
import numpy as np
import torch

from mrnet_arch.fast import prepare_fast
from mrnet_arch.prepare import IMAGE_EXTENSIONS
from mrnet_arch.weights import WeightsError, add_weights_arguments, load_model, receptive_radius

PRECISIONS = ('fp32', 'bf16', 'fp16')
_MAX_VALUES = {np.dtype(np.uint8): 255., np.dtype(np.uint16): 65535.}


class ImageError(Exception):
    """An input image that cannot be read or processed."""


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


def read_image(path):
    """Read an image as (float32 HWC array in [0, 1] with 1, 3 or 4 channels, BGR order; its dtype).

    Raises:
        ImageError: The file cannot be decoded or has an unsupported bit depth.
    """
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f'cannot read image {path} (missing, corrupt or not an image)')
    if img.dtype not in _MAX_VALUES:
        raise ImageError(f'{path}: unsupported pixel type {img.dtype}, expected 8-bit or 16-bit integers')
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] not in (1, 3, 4):
        raise ImageError(f'{path}: unsupported channel count {img.shape[2]}, expected 1, 3 or 4')
    return img.astype(np.float32) / _MAX_VALUES[img.dtype], img.dtype


def _to_dtype(img, dtype):
    """Float [0, 1] array -> ``dtype`` (clipped and rounded)."""
    return (np.clip(img, 0, 1) * _MAX_VALUES[np.dtype(dtype)]).round().astype(dtype)


class Upscaler:
    """Applies a loaded network to images (numpy, BGR(A) float [0, 1]), keeping their kind.

    Args:
        net (torch.nn.Module): The network; prepared in place by ``mrnet_arch.fast.prepare_fast``
            (eval mode, moved to ``device``; in bf16/fp16 its output head wrapped to run in float32).
        config (dict): Its config (``mrnet_arch.weights.load_model``).
        device (torch.device): Device to run on.
        precision (str): 'fp32', 'bf16' or 'fp16' (autocast; fp16 needs CUDA). Default: 'fp32'.
        tile (int | None): Tile size in input pixels (None: whole image). Default: None.
        tile_pad (int | None): Tile overlap; None: the receptive-field radius. Default: None.
    """

    def __init__(self, net, config, device, precision='fp32', tile=None, tile_pad=None):
        from basicsr.utils import img2tensor, tensor2img
        self._img2tensor, self._tensor2img = img2tensor, tensor2img
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        self.device = torch.device(device)
        self.net = prepare_fast(net, self.device, precision, channels_last=False)
        self.scale = int(config['upscale'])
        self.in_ch = int(config['num_in_ch'])
        self.tile = tile
        self.tile_pad = receptive_radius(config) if tile_pad is None else int(tile_pad)

    @torch.no_grad()
    def _run(self, img):
        """HWC float BGR (or gray) array with ``self.in_ch`` or 1/3 channels -> upscaled HWC array."""
        c = img.shape[2]
        x = self._img2tensor(img, bgr2rgb=c == 3, float32=True).unsqueeze(0)
        if self.in_ch == 1 and c > 1:  # 1-channel model: each channel on its own
            x = x.transpose(0, 1)
        elif self.in_ch == 3 and c == 1:  # RGB model, gray image: replicate
            x = x.expand(-1, 3, -1, -1)
        x = x.to(self.device)
        y = tiled_forward(self.net, x, self.scale, self.tile, self.tile_pad).float()
        if self.in_ch == 1 and c > 1:
            y = y.transpose(0, 1)
        out = self._tensor2img(y, rgb2bgr=y.shape[1] == 3, out_type=np.float32, min_max=(0, 1))
        if out.ndim == 2:
            out = out[:, :, None]
        if c == 1 and out.shape[2] == 3:
            out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)[:, :, None]
        return out

    def upscale(self, img):
        """Super-resolve one image.

        Args:
            img (np.ndarray): HWC float32 in [0, 1], BGR order, 1, 3 or 4 (BGRA) channels.

        Returns:
            np.ndarray: HWC float32 in [0, 1] with the same channels, ``scale`` times larger.
        """
        if img.shape[2] != 4:
            return self._run(img)
        h, w = img.shape[:2]
        alpha = cv2.resize(img[:, :, 3], (w * self.scale, h * self.scale), interpolation=cv2.INTER_CUBIC)
        return np.concatenate([self._run(img[:, :, :3]), np.clip(alpha, 0, 1)[:, :, None]], axis=2)


def list_inputs(path):
    """The image files of ``path`` (a file, or a folder's image files by name; not recursive)."""
    if osp.isdir(path):
        return sorted(
            osp.join(path, f) for f in os.listdir(path)
            if f.lower().endswith(IMAGE_EXTENSIONS) and osp.isfile(osp.join(path, f)))
    if osp.isfile(path):
        return [path]
    raise FileNotFoundError(f'--input {path}: no such file or folder')


def output_path(input_file, output_dir, suffix):
    """``output_dir/<input stem><suffix><input extension>``."""
    stem, ext = osp.splitext(osp.basename(input_file))
    return osp.join(output_dir, f'{stem}{suffix}{ext}')


def plan_outputs(inputs, output_dir, suffix, overwrite):
    """Map inputs to output paths, refusing to overwrite inputs and (without ``overwrite``) outputs.

    Raises:
        ValueError: The output folder is an input folder, two inputs map to output names that differ
            only in case (one file on case-insensitive file systems), an output is an input file, or
            outputs exist and ``overwrite`` is False.
    """
    real = osp.realpath

    def folded(p):  # one file on a case-insensitive file system (macOS, Windows) whatever the case
        return osp.normcase(real(p)).casefold()

    input_dirs = {real(osp.dirname(osp.abspath(f))) for f in inputs}
    if real(output_dir) in input_dirs or (osp.isdir(output_dir)
                                          and any(osp.samefile(output_dir, d) for d in input_dirs)):
        raise ValueError(f'--output {output_dir} is the folder of the inputs: choose another folder, inputs are '
                         'never overwritten')
    outputs = [output_path(f, output_dir, suffix) for f in inputs]
    input_set = {real(f) for f in inputs}
    clash = [o for o in outputs if real(o) in input_set]
    if clash:
        raise ValueError(f'output paths {clash} are input files: inputs are never overwritten')
    seen = {}
    for i, o in enumerate(outputs):
        j = seen.setdefault(folded(o), i)
        if j != i:
            raise ValueError(f'{inputs[j]} and {inputs[i]} map to output names that differ only in case ({osp.basename(o)}), '
                             'which is the same file on case-insensitive file systems: process them separately '
                             'or rename one')
    existing = [o for o in outputs if osp.exists(o)]
    if existing and not overwrite:
        raise ValueError(f'{len(existing)} output file(s) exist, e.g. {existing[:3]}: pass --overwrite to replace')
    return outputs


def write_image(path, img, dtype):
    """Write a float [0, 1] HWC image as ``dtype``; raises ``ImageError`` if it cannot be written."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.lower().endswith(('.jpg', '.jpeg')) else []
    data = _to_dtype(img, dtype)
    if data.shape[2] == 1:
        data = data[:, :, 0]
    if not cv2.imwrite(path, data, params):
        raise ImageError(f'cannot write {path}')


def resolve_device(name):
    """'auto' -> CUDA if available else CPU; 'cuda' or 'cuda:N' without CUDA is a ``ValueError``."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f'--device {name}: not a device ({err})') from err
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {name}: CUDA is not available (use --device cpu or auto)')
    return device


def build_parser():
    parser = argparse.ArgumentParser(prog='mrnet infer', description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_weights_arguments(parser)
    parser.add_argument('--input', required=True, help='an image file or a folder of images (' +
                        ', '.join(IMAGE_EXTENSIONS) + ')')
    parser.add_argument('--output', required=True, help='output folder (created; must not be an input folder)')
    parser.add_argument('--scale', type=int, help="scale; default the weights' (first) scale")
    parser.add_argument('--tile', type=int, default=0, help='tile size in input pixels; 0 (default): whole image')
    parser.add_argument('--tile-pad', type=int, default=None,
                        help="tile overlap in input pixels; default the model's receptive-field radius "
                        '(tiled output then equals untiled up to float rounding)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='fp32 (default), bf16 or fp16 (CUDA only): autocast, output head in float32')
    parser.add_argument('--suffix', default='', help='added to each output file name before the extension')
    parser.add_argument('--overwrite', action='store_true', help='replace existing output files')
    return parser


def main(argv=None):
    """Run ``mrnet infer``; returns 0 if every image was written, 1 if some failed, 2 on usage errors."""
    args = build_parser().parse_args(argv)
    from tqdm import tqdm
    try:
        for option, value in (('--tile', args.tile), ('--tile-pad', args.tile_pad)):
            if value is not None and value < 0:
                raise ValueError(f'{option} must be >= 0, got {value}')
        device = resolve_device(args.device)
        if args.precision == 'fp16' and device.type != 'cuda':
            raise ValueError(f'--precision fp16 needs CUDA (the device is {device}): use --device cuda, or '
                             '--precision bf16 or fp32 on the CPU')
        inputs = list_inputs(args.input)
        if not inputs:
            raise ValueError(f'--input {args.input}: no images ({", ".join(IMAGE_EXTENSIONS)})')
        outputs = plan_outputs(inputs, args.output, args.suffix, args.overwrite)
        net, config = load_model(args.weights, scale=args.scale, device=device, prefer_ema=not args.no_ema)
    except (ValueError, FileNotFoundError, WeightsError) as err:
        print(f'mrnet infer: error: {err}', file=sys.stderr)
        return 2
    os.makedirs(args.output, exist_ok=True)
    upscaler = Upscaler(net, config, device, args.precision, args.tile, args.tile_pad)
    failed = []
    for src, dst in zip(tqdm(inputs, desc=f'x{upscaler.scale}', unit='img', file=sys.stderr), outputs):
        try:
            img, dtype = read_image(src)
            write_image(dst, upscaler.upscale(img), dtype)
        except ImageError as err:
            tqdm.write(f'skipped: {err}', file=sys.stderr)
            failed.append(src)
    print(f'mrnet infer: {len(inputs) - len(failed)} of {len(inputs)} image(s) written to {args.output}'
          + (f'; {len(failed)} failed: {", ".join(failed)}' if failed else ''), file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
