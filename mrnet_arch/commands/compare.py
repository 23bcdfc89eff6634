"""``mrnet compare``: the SR outputs of several models side by side, per image, as paper-style figures and a
static HTML page, with the scores of ``mrnet bench``.

Models are model specs as ``mrnet bench --models`` takes them (``mrnet_arch.measurement.specs``: presets, registered
archs ``ARCH:k=v``, option files with their ``path: pretrain_network_g``, weight files ``LABEL=FILE.pth`` or
``.safetensors``, labels ``LABEL=...``); weights come from the option file, the weight file or
``--weights LABEL=PATH``, and define the network (an MRNet preset takes the size of its weights and says so;
weights that fit no network of the spec stop the command with one line naming the tensors). A model with
parameters but no weights is refused (its output would be noise). ``Bicubic`` (the registered MATLAB-bicubic
arch) is always compared.

Inputs: benchmark folders in BasicSR's Set5 layout (``GTmod12/`` + ``LRbicx<scale>/``, ``--benchmarks``) and
pairs of GT and LR folders (``--pairs GT_DIR LR_DIR``, files paired by name, the LR name optionally ending in
``x<scale>``).

Scores: ``mrnet_arch.measurement.evaluation``, the evaluator of ``mrnet bench``: the SR image of an LR image through
``upscale_image`` (the model prepared by ``prepare_fast`` in fp32, channels_last, as bench), Y-channel PSNR/SSIM
with ``crop_border = scale`` (``y_metrics``), means per dataset with ``mean_metrics``; so the whole-image
scores equal bench's on the same folder and model. Crop scores are of the crop shown, whole.

The crop (``--crop x,y,w,h``, the same box for every image, or chosen per image where the models differ most:
``mrnet_arch.reports.crops.choose_crop``).

Tiling (``--tile N``): when asked, when a model's forward on a whole image would exceed the memory budget
(``--max-memory``, default half of the memory available now; ``mrnet_arch.inference.upscaler.Upscaler``), or when
a model runs out of memory anyway (then tiles of 512, 256, ... input pixels are tried). The overlap
(``--tile-pad``) defaults to the receptive-field radius for MRNet (then the tiled output equals the untiled one
up to float rounding: on a real photo at most 1 grey level apart, whole-image PSNR within 0.01 dB;
``docs/compare.md``), 4 for Bicubic (exact) and 32 for other archs
(an approximation for archs with a wider or global receptive field). ``scores.json`` records the tile used.

Paths on the command line are relative to the working directory. Output (``--output DIR``, refused when it is
not empty, unless ``--overwrite``, and when it is or holds an input folder): ``index.html`` (scores table,
figures, before/after sliders; self-contained), ``scores.json``, ``figures/<image>.png`` and
``images/<image>/<model>.png`` (each SR image, and ``GT.png``).
"""
import argparse
import os
import re
import sys
import time
from os import path as osp

import numpy as np
import torch

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from mrnet_arch.archs.mrnet_config import receptive_radius
from mrnet_arch.commandline.cli_paths import inside
from mrnet_arch.commandline.plugins import add_import_argument, import_modules
from mrnet_arch.errors import InputError
from mrnet_arch.inference.device import resolve_device
from mrnet_arch.inference.fast import prepare_fast
from mrnet_arch.inference.upscaler import OTHER_PAD, Upscaler, mrnet_arch_config, sizing
from mrnet_arch.measurement import specs as model_specs
from mrnet_arch.measurement.complexity import count_params
from mrnet_arch.measurement.evaluation import PairingError, dataset_name, find_pairs, mean_metrics, pair_by_stem
from mrnet_arch.measurement.machine import machine_info
from mrnet_arch.models import mrnet_tiling
from mrnet_arch.models.mrnet_options import registry_lookup
from mrnet_arch.reports import crops, figure, page
from mrnet_arch.storage.images import MAX_PIXELS, ImageError, image_size, read_image, write_image

PROG = 'mrnet compare'
BICUBIC = 'Bicubic'
BICUBIC_PAD = 4  # MATLAB bicubic reads 2 input pixels on each side
_UNSAFE = re.compile(r'[^A-Za-z0-9._-]+')


class CompareError(InputError):
    """A problem with the command's inputs; the message names the option, file or model."""


def safe_name(text, taken=None):
    """A file name from ``text``: letters, digits, ``.``, ``_`` and ``-`` kept, other runs replaced by ``_``,
    no leading or trailing ``.``, ``_`` or ``-``; made unique (``_2``, ``_3``, ..., case-insensitively) against
    ``taken``, which is updated."""
    name = _UNSAFE.sub('_', str(text)).strip('._-') or 'image'
    if taken is None:
        return name
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f'{name}_{n}'
    taken.add(candidate.lower())
    return candidate


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='example: mrnet compare --models mine=options/test_MRNet_x2.yml '
                                '--benchmarks datasets/Set5 --scale 2 --output compare_x2')
    p.add_argument('--models', nargs='+', default=[],
                   help=f'presets {", ".join(model_specs.PRESET_NAMES)}, ARCH:k=v,..., option YAMLs, weight files '
                   '(.pth, .safetensors: the network is built from them), optionally LABEL=...; as mrnet bench '
                   '--models. Bicubic is always added')
    p.add_argument('--weights', nargs='+', default=[], metavar='LABEL=PATH', help='weights of a model by label')
    p.add_argument('--benchmarks', nargs='+', default=[], metavar='DIR',
                   help='folders with GTmod12/ and LRbicx{scale}/ (Set5 layout)')
    p.add_argument('--pairs', nargs=2, action='append', default=[], metavar=('GT_DIR', 'LR_DIR'),
                   help='a GT folder and its LR folder (same names, or the LR name ending in x{scale}); repeatable')
    p.add_argument('--scale', type=int, default=2)
    p.add_argument('--output', required=True, metavar='DIR',
                   help='folder for index.html, scores.json, figures/ (relative to the working directory; not an '
                   'input folder, nor one that holds one)')
    p.add_argument('--overwrite', action='store_true', help='write into a non-empty --output folder')
    p.add_argument('--crop', default=None, metavar='X,Y,W,H',
                   help='crop box in GT pixels for every image (default: chosen per image where the models '
                   'differ most)')
    p.add_argument('--device', default='auto', help='auto (cuda if available), cpu, cuda or cuda:N')
    p.add_argument('--tile', type=int, default=0,
                   help='run the models tile by tile, N x N input pixels (default 0: whole images, tiles only '
                   'when a model runs out of memory)')
    p.add_argument('--tile-pad', type=int, default=None,
                   help='tile overlap in input pixels (default: the receptive-field radius for MRNet, 4 for '
                   f'Bicubic, {OTHER_PAD} for other archs)')
    p.add_argument('--max-memory', default=None, metavar='SIZE',
                   help='memory budget of one forward, e.g. 2G; larger images run in tiles (default: half of the '
                   'memory available now)')
    p.add_argument('--max-pixels', type=int, default=MAX_PIXELS, metavar='N',
                   help=f'refuse images with more pixels, read from the header (default {MAX_PIXELS:,})')
    p.add_argument('--title', default=None, help='page title')
    add_import_argument(p)
    return p


def check_output(folder, overwrite):
    """Refuse a non-empty output folder unless ``overwrite``; refuse a file in its place."""
    if osp.exists(folder) and not osp.isdir(folder):
        raise CompareError(f'--output {folder} is a file, not a folder')
    if osp.isdir(folder) and os.listdir(folder) and not overwrite:
        raise CompareError(f'--output {folder} is not empty; pass --overwrite to write into it (files of the '
                           'same name are replaced) or choose another folder')


def load_specs(args):
    """The model specs, Bicubic included, with their weights, checked (labels unique, weights present)."""
    specs = [model_specs.parse_model_spec(m, args.scale) for m in args.models]
    if not any(s.arch == BICUBIC for s in specs):
        specs.insert(0, model_specs.parse_model_spec(BICUBIC, args.scale))
    from basicsr.utils.registry import ARCH_REGISTRY
    for spec in specs:
        if spec.arch is not None and registry_lookup(ARCH_REGISTRY, spec.arch) is None:  # None: a weight file
            raise CompareError(f'arch {spec.arch!r} (model {spec.label!r}) is not registered: a preset '
                               f'({", ".join(model_specs.PRESET_NAMES)}), a registered arch, an option file, or an '
                               "arch of another plugin after --import MODULE")
    labels = [s.label for s in specs]
    for label in labels:
        if labels.count(label) > 1:
            raise CompareError(f'two models are labelled {label!r}: give labels, e.g. small=MRNet:num_feat=32')
        if label == page.GT_NAME:
            raise CompareError(f'a model may not be labelled {page.GT_NAME!r} (the ground truth): give another label')
    model_specs.assign_weights(specs, args.weights)
    for spec in specs:  # every weights file read and checked against its network before any model runs
        note = spec.resolve()
        if note:
            print(f'[compare] {note}', flush=True)
    return specs


def load_inputs(args):
    """``[(dataset, [(GT path, LR path), ...]), ...]`` of ``--benchmarks`` and ``--pairs``."""
    if not args.benchmarks and not args.pairs:
        raise CompareError('no inputs: give --benchmarks DIR (Set5 layout) or --pairs GT_DIR LR_DIR')
    datasets = []
    try:
        for folder in args.benchmarks:
            if not osp.isdir(folder):
                raise CompareError(f'--benchmarks {folder}: folder not found')
            datasets.append((dataset_name(folder), find_pairs(folder, args.scale)))
        for gt_dir, lr_dir in args.pairs:
            for folder in (gt_dir, lr_dir):
                if not osp.isdir(folder):
                    raise CompareError(f'--pairs {gt_dir} {lr_dir}: folder not found: {folder}')
            pairs = pair_by_stem(gt_dir, lr_dir, suffixes=('', f'x{args.scale}'), require_all=True)
            if not pairs:
                raise CompareError(f'--pairs {gt_dir} {lr_dir}: no images in {gt_dir}')
            datasets.append((dataset_name(gt_dir), pairs))
    except PairingError as err:
        raise CompareError(str(err)) from err
    return datasets


def plan_images(datasets, scale, crop_text, max_pixels=None):
    """One entry per image: name, file stem, GT and LR paths, dataset, crop box (None: automatic).

    Every size is read from the file headers first, so a bad ``--crop`` or an LR image of the wrong size
    stops the command before any model runs; the message names the image. So does an image of more than
    ``max_pixels`` pixels (default ``images.MAX_PIXELS``).
    """
    several = len(datasets) > 1
    taken, plan = set(), []
    for dataset, pairs in datasets:
        for gt_path, lr_path in pairs:
            stem = osp.splitext(osp.basename(gt_path))[0]
            name = f'{dataset}/{stem}' if several else stem
            (gt_size, gt_problem), (lr_size, lr_problem) = (image_size(p, max_pixels) for p in (gt_path, lr_path))
            if gt_problem or lr_problem:
                raise CompareError(f'{name}: {gt_problem or lr_problem}')
            (gh, gw), (lh, lw) = gt_size, lr_size
            if lh * scale < gh or lw * scale < gw:
                raise CompareError(f'{name}: the LR image {lr_path} is {lw}x{lh}; x{scale} gives '
                                   f'{lw * scale}x{lh * scale}, smaller than the GT {gw}x{gh} ({gt_path}): is '
                                   f'--scale {scale} right?')
            box = None
            if crop_text is not None:
                try:
                    box = crops.parse_crop(crop_text, (gh, gw))
                except ValueError as err:
                    raise CompareError(f'{name} ({gt_path}): {err}') from err
            plan.append({'name': name, 'file': safe_name(name, taken), 'gt': gt_path, 'lr': lr_path,
                         'dataset': dataset, 'crop': box})
    return plan


# --------------------------------------------------------------------------------------------------
# Running the models
# --------------------------------------------------------------------------------------------------
def default_tile_pad(spec, scale):
    """The tile overlap of a model: MRNet's receptive-field radius, ``BICUBIC_PAD``, else ``OTHER_PAD``."""
    config = mrnet_arch_config(spec.arch, spec.kwargs)
    if config is not None:
        return receptive_radius(config, scale)
    return BICUBIC_PAD if spec.arch == BICUBIC else OTHER_PAD


def super_resolve(fast, lr, scale, tile=0, tile_pad=0, max_memory=None, bytes_per_pixel=None):
    """The SR image of one LR image, as ``mrnet bench`` scores it (``measurement.evaluation.upscale_image``), through
    ``mrnet_arch.inference.upscaler.Upscaler``.

    Args:
        fast (callable): The prepared network (``FastSR``).
        lr (np.ndarray): uint8 BGR LR image.
        scale (int): The scale.
        tile (int): Tile size in input pixels; 0: chosen from the memory budget (whole when it fits), and on
            running out of memory anyway tiles of ``MEMORY_TILES`` (the first that works).
        tile_pad (int): Tile overlap in input pixels.
        max_memory (int | None): Memory budget of one forward in bytes (None: half of the memory available).
        bytes_per_pixel (float | None): The model's memory per input pixel (None: unknown).

    Returns:
        tuple[np.ndarray, int]: The uint8 BGR SR image and the tile used (0: whole).
    """
    up = _upscaler(fast, scale, tile, tile_pad, max_memory, bytes_per_pixel)
    return up.upscale(lr), up.last_tile


def _upscaler(fast, scale, tile, tile_pad, max_memory, bytes_per_pixel):
    return Upscaler(fast, None, getattr(fast, 'device', 'cpu'), 'fp32', tile or None, tile_pad, scale=scale,
                    max_memory=max_memory, bytes_per_pixel=bytes_per_pixel,
                    log=lambda message: print(message.replace('[mrnet]', '[compare]'), flush=True))


def run_models(specs, plan, args, device):
    """Every model's SR image of every image (uint8 BGR, cut to the GT size), and the tile each used."""
    outputs = [{} for _ in plan]
    runs = {}
    for spec in specs:
        net = spec.build()
        if count_params(net) > 0 and not spec.weights:
            raise CompareError(f'model {spec.label!r} ({spec.source}) has no weights: its output would be noise; '
                               'give an option file with path: pretrain_network_g, or --weights '
                               f'{spec.label}=PATH')
        per_pixel = sizing(net, args.scale, mrnet_arch_config(spec.arch, spec.kwargs))[1]
        fast = prepare_fast(model_specs.PadCrop(net, spec.multiple, args.scale), device, 'fp32')
        pad = default_tile_pad(spec, args.scale) if args.tile_pad is None else args.tile_pad
        up = _upscaler(fast, args.scale, args.tile, pad, args.max_memory, per_pixel)
        start, tiles = time.perf_counter(), []
        for item, out in zip(plan, outputs):
            try:
                out[spec.label] = up.upscale(read_image(item['lr'], color=True, max_pixels=args.max_pixels))
            except (ImageError, mrnet_tiling.MemoryBudgetError) as err:
                raise CompareError(str(err)) from err
            tiles.append(up.last_tile)
        runs[spec.label] = {'arch': spec.arch, 'kwargs': spec.kwargs, 'source': spec.source,
                            'weights': spec.weights_path(), 'tile': sorted(set(tiles)), 'tile_pad': pad,
                            'seconds': time.perf_counter() - start}
        print(f'[compare] {spec.label:>16}: {len(plan)} image(s) in {runs[spec.label]["seconds"]:.1f} s'
              + (f', tiles {runs[spec.label]["tile"]} (pad {pad})' if any(tiles) else ''), flush=True)
        del up, fast, net
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return outputs, runs


# --------------------------------------------------------------------------------------------------
# Scores, figures, page
# --------------------------------------------------------------------------------------------------
def _rgb(bgr):
    return np.ascontiguousarray(bgr[..., ::-1])


def compare_image(item, gt, outputs, scale, out_dir):
    """Scores, crop and figure of one image; writes its SR images and figure. Returns its page entry."""
    gh, gw = gt.shape[:2]
    for label, sr in outputs.items():
        if sr.shape[0] < gh or sr.shape[1] < gw:
            raise CompareError(f'{item["name"]}: {label} gives {sr.shape[1]}x{sr.shape[0]}, smaller than the GT '
                               f'{gw}x{gh}')
    rgb = {label: _rgb(sr[:gh, :gw]) for label, sr in outputs.items()}
    gt_rgb = _rgb(gt)
    box = item['crop'] or crops.choose_crop(gt_rgb, rgb)
    scores = crops.score_images(gt_rgb, rgb, box, crop_border=scale)  # whole images: y_metrics, as mrnet bench
    folder = osp.join(out_dir, 'images', item['file'])
    os.makedirs(folder, exist_ok=True)
    taken = {page.GT_NAME.lower()}
    for label, sr in rgb.items():
        write_image(osp.join(folder, safe_name(label, taken) + '.png'), _rgb(sr))
    write_image(osp.join(folder, page.GT_NAME + '.png'), gt)
    fig = osp.join(out_dir, 'figures', item['file'] + '.png')
    os.makedirs(osp.dirname(fig), exist_ok=True)
    figure.render_figure(gt_rgb, rgb, box, scores, name=item['name'], path=fig)
    return {'name': item['name'], 'gt': gt_rgb, 'outputs': rgb, 'scores': scores, 'crop': box, 'figure': fig}


def dataset_means(plan, entries, labels):
    """``{dataset: {model: mean_metrics}}``: the numbers ``mrnet bench --benchmarks`` reports (a mean that is
    not finite, from an output equal to its GT, as None, as on the page)."""
    means = {}
    for dataset in dict.fromkeys(item['dataset'] for item in plan):
        rows = [entry['scores'] for item, entry in zip(plan, entries) if item['dataset'] == dataset]
        means[dataset] = {label: {k: page.json_number(v) if k != 'images' else v
                                  for k, v in mean_metrics([r[label] for r in rows]).items()} for label in labels}
    return means


def run(argv=None):
    """Run the comparison.

    Args:
        argv (list[str] | None): The options (default: ``sys.argv[1:]``).

    Returns:
        dict: ``{'html', 'json', 'figures', 'images': [page entries], 'datasets': means}``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    import_modules(args.imports)
    if args.scale < 1:
        raise CompareError(f'--scale must be >= 1, got {args.scale}')
    for option, value in (('--tile', args.tile), ('--tile-pad', args.tile_pad)):
        if value is not None and value < 0:
            raise CompareError(f'{option} must be >= 0, got {value}')
    if args.max_pixels < 1:
        raise CompareError(f'--max-pixels must be >= 1, got {args.max_pixels}')
    try:
        args.max_memory = None if args.max_memory is None else mrnet_tiling.parse_memory(args.max_memory)
    except mrnet_tiling.MemoryBudgetError as err:
        raise CompareError(str(err)) from err
    check_output(args.output, args.overwrite)
    for folder in args.benchmarks + [f for pair in args.pairs for f in pair]:
        if inside(folder, args.output):
            raise CompareError(f'--output {args.output} is or holds the input folder {folder}: choose a folder '
                               'outside the inputs, they are never overwritten')
    device = resolve_device(args.device)
    specs = load_specs(args)
    plan = plan_images(load_inputs(args), args.scale, args.crop, args.max_pixels)
    print(f'[compare] {len(specs)} models ({", ".join(s.label for s in specs)}) on {len(plan)} image(s), '
          f'x{args.scale}, {device}', flush=True)
    outputs, runs = run_models(specs, plan, args, device)

    os.makedirs(args.output, exist_ok=True)
    entries = []
    for item, sr in zip(plan, outputs):
        try:
            gt = read_image(item['gt'], color=True, max_pixels=args.max_pixels)
        except ImageError as err:
            raise CompareError(str(err)) from err
        entries.append(compare_image(item, gt, sr, args.scale, args.output))
    labels = [s.label for s in specs]
    means = dataset_means(plan, entries, labels)
    extra = {'scale': args.scale, 'crop_border': args.scale, 'datasets': means, 'runs': runs,
             'files': {e['name']: {'gt': item['gt'], 'lr': item['lr'], 'figure': osp.relpath(e['figure'], args.output)}
                       for item, e in zip(plan, entries)},
             'machine': machine_info(device), 'argv': argv}
    paths = page.write_page(args.output, entries, title=args.title or f'Visual comparison, x{args.scale}',
                            extra=extra)
    for dataset, by_model in means.items():
        print(f'\n{dataset}: Y-channel PSNR (dB) / SSIM, crop border {args.scale}')
        for label in page.order_models(labels):
            print(f'  {label:>16}  {by_model[label]["psnr"]:.2f} / {by_model[label]["ssim"]:.4f}')
    figures = [e['figure'] for e in entries]
    print(f'\n[compare] page:    {paths["html"]}\n[compare] scores:  {paths["json"]}\n'
          f'[compare] figures: {osp.dirname(figures[0])}/ ({len(figures)})', flush=True)
    return dict(paths, figures=figures, images=entries, datasets=means)


def main(argv=None):
    """``mrnet compare``; returns 0."""
    run(argv)
    return 0
