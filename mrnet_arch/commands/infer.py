"""``mrnet infer``: super-resolve your own images (no ground truth needed) with
``mrnet_arch.inference.upscaler.Upscaler``.

Image kinds are kept (8 or 16 bits, gray, alpha: see ``mrnet_arch.inference.upscaler``). In an output folder, each
output keeps its input's file format (JPEG written at quality 95) and name, plus ``--suffix``. For a single input
image, an ``--output`` with an image extension is the output file, written in the format of its extension
(``--input photo.png --output photo_x2.jpg`` writes a JPEG). Paths are relative to the working directory. An
output that would replace an input is refused before anything is written, as is an existing output without
``--overwrite``.

Photos are processed upright: the EXIF orientation is applied when the image is read, and the output
carries the input's ICC profile and EXIF data with the orientation set to 1 (JPEG, PNG and WebP outputs,
written by Pillow; ``mrnet_arch.storage.images``). CMYK inputs are processed as RGB (their CMYK profile is not
carried); palette images as RGB, or RGBA with a transparent colour.
The file types are ``mrnet_arch.storage.images.IMAGE_EXTENSIONS`` (those of ``mrnet prepare``); ``.ppm`` files
are read as colour and ``.pgm`` files as grayscale, so their outputs can be written in the same format. Images
are read and written by ``mrnet_arch.storage.images`` (outputs atomically: an output file that exists is complete).
An image whose header claims more than ``--max-pixels`` pixels is refused before it is decoded.

``--precision auto`` (default): bf16 on a GPU and on CPUs with native bf16 (AMX, AVX512-BF16), fp32 elsewhere
(``mrnet_arch.inference.precision.resolve_precision``); bf16 / fp16 run through
``mrnet_arch.inference.fast.prepare_fast`` (autocast, the output head kept in float32); ``fp16`` needs
``--device cuda``.

Memory: the memory of one forward is estimated from the arch and the image size (``mrnet_arch.inference.memory``);
above the budget (``--max-memory``, default half of the memory available now) the image runs in tiles, and the
output is assembled in its final 8- or 16-bit type. ``--tile N`` forces N x N tiles. Each tile runs with
``--tile-pad P`` extra input pixels on every side and keeps only its own part of the output. The default pad is
the model's receptive-field radius (``mrnet_arch.archs.mrnet_config.receptive_radius``): every kept output pixel
then sees exactly the input it sees untiled, so tiled and untiled outputs agree up to float rounding (far below
1/255). A smaller pad is faster but only approximately equal.
"""
import argparse
import os
import sys
from os import path as osp

from mrnet_arch.commandline.arguments import add_weights_arguments
from mrnet_arch.commandline.cli_paths import same_file
from mrnet_arch.errors import InputError
from mrnet_arch.inference.device import resolve_device
from mrnet_arch.inference.precision import AUTO
from mrnet_arch.inference.precision import AUTOCAST_PRECISIONS as PRECISIONS
from mrnet_arch.inference.upscaler import Upscaler
from mrnet_arch.models.mrnet_tiling import MemoryBudgetError, parse_memory
from mrnet_arch.storage import images
from mrnet_arch.storage.images import IMAGE_EXTENSIONS, MAX_PIXELS, ImageError
from mrnet_arch.storage.weights import load_model

__all__ = ['build_parser', 'main', 'plan_outputs']


def list_inputs(path):
    """The image files of ``path`` (a file, or a folder's image files by name; not recursive)."""
    if osp.isdir(path):
        return [osp.join(path, f) for f in images.list_images(path)]
    if osp.isfile(path):
        return [path]
    raise InputError(f'--input {path}: no such file or folder')


def output_path(input_file, output_dir, suffix):
    """``output_dir/<input stem><suffix><input extension>``."""
    stem, ext = osp.splitext(osp.basename(input_file))
    return osp.join(output_dir, f'{stem}{suffix}{ext}')


def is_output_file(input_path, output):
    """Whether ``output`` is an output file rather than a folder: it has an image extension
    (``IMAGE_EXTENSIONS``) and is no existing folder.

    Raises:
        InputError: It names an image file but ``input_path`` is a folder, or ``output`` is an existing file
            that is no image (a folder was expected).
    """
    if osp.isdir(output):
        return False
    if osp.splitext(output)[1].lower() in IMAGE_EXTENSIONS:
        if osp.isdir(input_path):
            raise InputError(f'--output {output} names an image file, but --input {input_path} is a folder: give an '
                             'output folder')
        return True
    if osp.exists(output):
        raise InputError(f'--output {output} is a file, not a folder (an output file needs an image extension: '
                         f'{", ".join(IMAGE_EXTENSIONS)})')
    return False


def plan_output_file(input_file, output, suffix, overwrite):
    """``[output]`` for one input image written to the file ``output``, refusing to replace the input and (without
    ``overwrite``) an existing file.

    Raises:
        InputError: ``output`` is the input file, ``suffix`` is given, or ``output`` exists and ``overwrite``
            is False.
    """
    if same_file(output, input_file):
        raise InputError(f'--output {output} is the input file: inputs are never overwritten, choose another name')
    if suffix:
        raise InputError(f'--suffix is for an output folder; --output {output} is the output file itself')
    if osp.exists(output) and not overwrite:
        raise InputError(f'--output {output} exists: pass --overwrite to replace it')
    return [output]


def plan_outputs(inputs, output_dir, suffix, overwrite):
    """Map inputs to output paths in the folder ``output_dir``, refusing to overwrite inputs and (without
    ``overwrite``) outputs.

    Raises:
        InputError: The output folder is an input folder, two inputs map to output names that differ
            only in case (one file on case-insensitive file systems), an output is an input file, or
            outputs exist and ``overwrite`` is False.
    """
    real = osp.realpath

    def folded(p):  # one file on a case-insensitive file system (macOS, Windows) whatever the case
        return osp.normcase(real(p)).casefold()

    input_dirs = {real(osp.dirname(osp.abspath(f))) for f in inputs}
    if real(output_dir) in input_dirs or (osp.isdir(output_dir)
                                          and any(osp.samefile(output_dir, d) for d in input_dirs)):
        raise InputError(f'--output {output_dir} is the folder of the inputs: choose another folder, inputs are '
                         'never overwritten')
    outputs = [output_path(f, output_dir, suffix) for f in inputs]
    input_set = {real(f) for f in inputs}
    clash = [o for o in outputs if real(o) in input_set]
    if clash:
        raise InputError(f'output paths {clash} are input files: inputs are never overwritten')
    seen = {}
    for i, o in enumerate(outputs):
        j = seen.setdefault(folded(o), i)
        if j != i:
            raise InputError(f'{inputs[j]} and {inputs[i]} map to output names that differ only in case '
                             f'({osp.basename(o)}), which is the same file on case-insensitive file systems: '
                             'process them separately or rename one')
    existing = [o for o in outputs if osp.exists(o)]
    if existing and not overwrite:
        raise InputError(f'{len(existing)} output file(s) exist, e.g. {existing[:3]}: pass --overwrite to replace')
    return outputs


def build_parser():
    parser = argparse.ArgumentParser(prog='mrnet infer', description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_weights_arguments(parser)
    parser.add_argument('--input', required=True, help='an image file or a folder of images (' +
                        ', '.join(IMAGE_EXTENSIONS) + ')')
    parser.add_argument('--output', required=True,
                        help='output folder (created; not the folder of the inputs), or, for a single input image, '
                        'the output file, in the format of its image extension (photo_x2.png, photo_x2.jpg). '
                        'Relative to the working directory; an input is never overwritten')
    parser.add_argument('--scale', type=int, help="scale; default the weights' (first) scale")
    parser.add_argument('--tile', type=int, default=0, help='tile size in input pixels; 0 (default): whole image')
    parser.add_argument('--tile-pad', type=int, default=None,
                        help="tile overlap in input pixels; default the model's receptive-field radius "
                        '(tiled output then equals untiled up to float rounding)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--precision', choices=(AUTO, ) + PRECISIONS, default=AUTO,
                        help='auto (default: bf16 on a GPU or a CPU with native bf16, else fp32), fp32, bf16 or '
                        'fp16 (CUDA only): autocast, output head in float32')
    parser.add_argument('--max-memory', default=None, metavar='SIZE',
                        help='memory budget of one forward, e.g. 2G or 512M; larger images run in tiles '
                        '(default: half of the memory available now)')
    parser.add_argument('--max-pixels', type=int, default=MAX_PIXELS, metavar='N',
                        help=f'refuse images with more pixels, read from the header (default {MAX_PIXELS:,})')
    parser.add_argument('--suffix', default='', help='added to each output file name before the extension')
    parser.add_argument('--overwrite', action='store_true', help='replace existing output files')
    return parser


def main(argv=None):
    """Run ``mrnet infer``; returns 0 if every image was written, 1 if some failed. Bad input raises
    ``InputError`` (or ``WeightsError``, ``MemoryBudgetError``) before anything is written: ``mrnet_arch.cli``
    turns it into a message and exit status 2."""
    args = build_parser().parse_args(argv)
    from tqdm import tqdm
    for option, value in (('--tile', args.tile), ('--tile-pad', args.tile_pad)):
        if value is not None and value < 0:
            raise InputError(f'{option} must be >= 0, got {value}')
    if args.max_pixels < 1:
        raise InputError(f'--max-pixels must be >= 1, got {args.max_pixels}')
    max_memory = None if args.max_memory is None else parse_memory(args.max_memory)
    device = resolve_device(args.device)
    if args.precision == 'fp16' and device.type != 'cuda':
        raise InputError(f'--precision fp16 needs CUDA (the device is {device}): use --device cuda, or '
                         '--precision bf16 or fp32 on the CPU')
    inputs = list_inputs(args.input)
    if not inputs:
        raise InputError(f'--input {args.input}: no images ({", ".join(IMAGE_EXTENSIONS)})')
    if is_output_file(args.input, args.output):
        outputs = plan_output_file(inputs[0], args.output, args.suffix, args.overwrite)
    else:
        outputs = plan_outputs(inputs, args.output, args.suffix, args.overwrite)
    for src in inputs:  # header sizes first: a decompression bomb stops the command before anything is written
        images.check_pixels(src, images.read_metadata(src).size, args.max_pixels)
    net, config = load_model(args.weights, scale=args.scale, device=device, prefer_ema=not args.no_ema)
    upscaler = Upscaler(net, config, device, args.precision, args.tile, args.tile_pad, max_memory=max_memory,
                        log=lambda message: tqdm.write(message, file=sys.stderr))
    upscaler.check_budget()
    for folder in dict.fromkeys(osp.dirname(osp.abspath(o)) for o in outputs):
        os.makedirs(folder, exist_ok=True)
    failed = []
    for src, dst in zip(tqdm(inputs, desc=f'x{upscaler.scale} {upscaler.precision}', unit='img', file=sys.stderr),
                        outputs):
        try:
            upscaler.upscale_file(src, dst, max_pixels=args.max_pixels)
        except (ImageError, MemoryBudgetError) as err:
            tqdm.write(f'skipped: {err}', file=sys.stderr)
            failed.append(src)
    print(f'mrnet infer: {len(inputs) - len(failed)} of {len(inputs)} image(s) written to {args.output}'
          + (f'; {len(failed)} failed: {", ".join(failed)}' if failed else ''), file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    from mrnet_arch.cli import run_command
    sys.exit(run_command('mrnet infer', main, None))
