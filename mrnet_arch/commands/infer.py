"""``mrnet infer``: super-resolve your own images (no ground truth needed).

Image kinds are kept:

- 8-bit and 16-bit images stay 8-bit and 16-bit (processed as float in [0, 1]);
- grayscale stays grayscale: for an RGB model the gray channel is replicated to RGB and the output is
  converted back to one channel (ITU-R BT.601 luma, as ``cv2.COLOR_BGR2GRAY``); a 1-channel model
  processes each channel of a colour image separately;
- RGBA: the RGB channels go through the model; the alpha channel is upscaled with bicubic
  interpolation (``cv2.INTER_CUBIC``) and clipped to its range.

The output keeps the input's file format (JPEG written at quality 95) and name, plus ``--suffix``.

Photos are processed upright: the EXIF orientation is applied when the image is read, and the output
carries the input's ICC profile and EXIF data with the orientation set to 1 (JPEG, PNG and WebP outputs;
``mrnet_arch.core.images.add_metadata``). CMYK inputs are processed as RGB (their CMYK profile is not
carried); palette images as RGB, or RGBA with a transparent colour.
The file types are ``mrnet_arch.core.images.IMAGE_EXTENSIONS`` (those of ``mrnet prepare``); ``.ppm`` files
are read as colour and ``.pgm`` files as grayscale, so their outputs can be written in the same format. Images
are read and written by ``mrnet_arch.core.images`` (outputs atomically: an output file that exists is complete).

``--precision bf16`` / ``fp16`` runs the network through ``mrnet_arch.core.fast.prepare_fast`` (autocast, the
output head kept in float32); ``fp16`` needs ``--device cuda``.

Tiling (``--tile N``, ``mrnet_arch.core.tiling.tiled_forward``) cuts the input into N x N tiles, runs each
with ``--tile-pad P`` extra input pixels on every side and keeps only the tile's own part of the output. The
default pad is the model's receptive-field radius (``mrnet_arch.core.arch_info.receptive_radius``): every kept
output pixel then sees exactly the input it sees untiled, so tiled and untiled outputs agree up to float rounding
(far below 1/255). A smaller pad is faster but only approximately equal.
"""
import argparse
import os
import sys
from os import path as osp

import cv2
import numpy as np
import torch

from mrnet_arch.core import images
from mrnet_arch.core.arch_info import receptive_radius
from mrnet_arch.core.arguments import add_weights_arguments
from mrnet_arch.core.device import resolve_device
from mrnet_arch.core.fast import prepare_fast
from mrnet_arch.core.images import IMAGE_EXTENSIONS, ImageError
from mrnet_arch.core.precision import AUTOCAST_PRECISIONS as PRECISIONS
from mrnet_arch.core.tiling import tiled_forward
from mrnet_arch.core.weights import WeightsError, load_model


class Upscaler:
    """Applies a loaded network to images (numpy, BGR(A) float [0, 1]), keeping their kind.

    Args:
        net (torch.nn.Module): The network; prepared in place by ``mrnet_arch.core.fast.prepare_fast``
            (eval mode, moved to ``device``; in bf16/fp16 its output head wrapped to run in float32).
        config (dict): Its config (``mrnet_arch.core.weights.load_model``).
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
        return [osp.join(path, f) for f in images.list_images(path)]
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
            raise ValueError(f'{inputs[j]} and {inputs[i]} map to output names that differ only in case '
                             f'({osp.basename(o)}), which is the same file on case-insensitive file systems: '
                             'process them separately or rename one')
    existing = [o for o in outputs if osp.exists(o)]
    if existing and not overwrite:
        raise ValueError(f'{len(existing)} output file(s) exist, e.g. {existing[:3]}: pass --overwrite to replace')
    return outputs


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
            img, dtype = images.to_float(images.read_image(src))
            images.write_image(dst, images.from_float(upscaler.upscale(img), dtype), metadata=images.read_metadata(src))
        except ImageError as err:
            tqdm.write(f'skipped: {err}', file=sys.stderr)
            failed.append(src)
    print(f'mrnet infer: {len(inputs) - len(failed)} of {len(inputs)} image(s) written to {args.output}'
          + (f'; {len(failed)} failed: {", ".join(failed)}' if failed else ''), file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
