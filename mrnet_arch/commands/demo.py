"""``mrnet demo``: MRNet x2 on real photos, end to end on a CPU, in BasicSR's own pipelines.

1. Builds a small real-photo dataset from the colour photographs that ship in scikit-image's data
   folder, split by image: ``TRAIN_PHOTOS`` for training, ``HELDOUT_PHOTOS`` held out. Training photos
   are cut into sub-images with ``mrnet prepare div2k``'s code (HR mod-cropped, LR by MATLAB bicubic,
   LMDBs by basicsr's ``make_lmdb_from_imgs``), so the demo exercises the DIV2K loader path; the
   held-out photos get the benchmark layout (``GTmod12``, ``LRbicx2``).
2. Fine-tunes MRNet x2 with ``options/demo/train_MRNet_demo_x2.yml`` (300 iterations) through BasicSR's train
   pipeline, starting from the demo weights shipped in ``mrnet_arch/demo_weights/`` (see its
   ``PROVENANCE.md``) unless ``--from-scratch`` is given.
3. Evaluates the trained model on the held-out photos with BasicSR's test pipeline
   (``options/demo/test_MRNet_demo_x2.yml``), then prints Y-channel PSNR/SSIM of MRNet and of bicubic
   (MATLAB bicubic of the same LR image) per photo.
4. Shows what it did: per held-out photo a figure (Bicubic | MRNet | GT crops, with their scores) and a static
   page with all of them (``mrnet_arch.reports.figure`` and ``page``, the library of ``mrnet compare``), and prints
   where the figures, the page, the SR images and the scores are.

When the package holds the pretrained weights of the CPU campaign (``mrnet_arch/pretrained/``: paper-size
MRNet-S x2 plus a bicubic global skip, see its ``PROVENANCE.md`` and ``MODEL_CARD.md``), steps 3 and 4 add them
as a third model, ``PRETRAINED_LABEL``: run on the same LR images by ``Upscaler`` and scored by the same
``y_metrics``, in the printed table, ``demo_results.json``, the figures and the page. The campaign never trained on
the demo's held-out photos either (``mrnet_arch/photo_data/holdout.txt``). Without the file the demo compares
Bicubic and MRNet only.

The option files and weights come with the package (``mrnet_arch.project.shipped_options_dir()``,
``package_dir()``), so the demo runs from a wheel install as from a checkout. Its data, ``experiments/`` and
``results/`` go under the project root: ``$MRNET_ROOT``, else the source checkout, else the working
directory; the train and test runs get that root as ``MRNET_ROOT``. The command takes no path arguments (this
fixed layout is the one exception to the rule that paths given on the command line are relative to the working
directory).

The demo model is smaller than the paper's (``num_feat`` 32, ``num_block`` 4, T = 3 instead of 64 / 10 /
4): on 2 CPU cores the paper-size model runs about ten times fewer iterations in the same time, far too
few to leave bicubic behind within the demo's 3 minutes.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from os import path as osp

import numpy as np

import mrnet_arch  # noqa: F401  (compat fixes before basicsr)
from basicsr.utils.matlab_functions import imresize
from mrnet_arch.commandline.optional import require
from mrnet_arch.dataprep.prepare import prepare_benchmark, prepare_div2k
from mrnet_arch.errors import RunError
from mrnet_arch.inference.device import resolve_device
from mrnet_arch.measurement.evaluation import pair_by_stem, y_metrics
from mrnet_arch.measurement.machine import machine_info
from mrnet_arch.project import package_dir, pretrained_weights, project_root, shipped_options_dir
from mrnet_arch.reports import crops, figure, page
from mrnet_arch.storage.files import write_json
from mrnet_arch.storage.images import read_image

TRAIN_PHOTOS = ('astronaut.png', 'hubble_deep_field.jpg', 'ihc.png', 'motorcycle_left.png', 'motorcycle_right.png',
                'rocket.jpg')
HELDOUT_PHOTOS = ('chelsea.png', 'coffee.png')
SCALE = 2
NAME = 'MRNet_demo_x2'
OPTIONS = shipped_options_dir()
TRAIN_YML = osp.join(OPTIONS, 'demo', 'train_MRNet_demo_x2.yml')
TEST_YML = osp.join(OPTIONS, 'demo', 'test_MRNet_demo_x2.yml')
DEMO_WEIGHTS = osp.join(package_dir(), 'demo_weights', 'MRNet_demo_x2.pth')
PRETRAINED = pretrained_weights()  # compared as a third model when the package holds them
PRETRAINED_LABEL = 'MRNet-S x2 (pretrained)'
DATA_DIR = 'datasets/demo'
SUB_IMAGE = (120, 60)  # HR sub-image size and step; training crops 64 px HR patches from them


def skimage_data_dir():
    """scikit-image's data folder (installed with basicsr)."""
    import skimage
    folder = osp.join(osp.dirname(skimage.__file__), 'data')
    missing = [p for p in TRAIN_PHOTOS + HELDOUT_PHOTOS if not osp.isfile(osp.join(folder, p))]
    if missing:
        raise RunError(f'scikit-image data folder {folder} lacks {missing}')
    return folder


def build_dataset(root, workers=1):
    """Copy the photos and prepare the training LMDBs and the held-out benchmark folders (idempotent)."""
    src = skimage_data_dir()
    data = osp.join(root, DATA_DIR)
    for split, photos in (('train', TRAIN_PHOTOS), ('heldout', HELDOUT_PHOTOS)):
        folder = osp.join(data, 'photos', split)
        os.makedirs(folder, exist_ok=True)
        for photo in photos:
            if not osp.isfile(osp.join(folder, photo)):
                shutil.copy2(osp.join(src, photo), folder)
    prepare_div2k(osp.join(data, 'photos', 'train'), osp.join(data, 'train'), scales=[SCALE], workers=workers,
                  crop_size=SUB_IMAGE[0], step=SUB_IMAGE[1])
    return prepare_benchmark(osp.join(data, 'photos', 'heldout'), osp.join(data, 'heldout'), scales=[SCALE])


def _run(args, log_hint, root):
    """Run a subprocess with ``MRNET_ROOT=root`` (experiments and results under the demo's root, not beside the
    option files of an installed package); stop the demo if it fails."""
    print(f'$ {" ".join(args)}', flush=True)
    proc = subprocess.run(args, env=dict(os.environ, MRNET_ROOT=root))
    if proc.returncode != 0:
        raise RunError(f'{log_hint} failed (exit {proc.returncode}); see the log above.')


def load_pretrained(path=None):
    """An ``Upscaler`` (float32, on the demo's device) of the shipped pretrained weights, or None without them.

    Args:
        path (str | None): The weights. Default: ``PRETRAINED``.

    Returns:
        Upscaler | None: Ready to run, or None when the file does not exist.

    Raises:
        mrnet_arch.storage.weights.WeightsError: The file exists but is not MRNet weights.
    """
    from mrnet_arch.inference.upscaler import Upscaler
    path = PRETRAINED if path is None else path
    return Upscaler.from_weights(path, device='auto', precision='fp32') if osp.isfile(path) else None


def evaluate(sr_dir, gt_dir, lr_dir, scale=SCALE, images=None, pretrained=None):
    """Y-channel PSNR/SSIM (crop border = scale) of the SR images, of MATLAB bicubic upsampling and, if given,
    of the pretrained weights on the same LR images.

    Args:
        sr_dir (str): BasicSR's SR images (``<name>_<NAME>.png``).
        gt_dir (str): GT images.
        lr_dir (str): LR images (same names as the GT).
        scale (int): The scale. Default: ``SCALE``.
        images (dict | None): If given, filled with ``{photo: {'gt', 'bicubic', 'mrnet'[, 'pretrained']}}``,
            uint8 BGR arrays.
        pretrained (Upscaler | None): The pretrained weights (``load_pretrained``), scored as ``'pretrained'``.

    Returns:
        dict: Per photo ``{'mrnet': metrics, 'bicubic': metrics[, 'pretrained': metrics], 'sr_image': path}``,
        and ``'_mean'``.
    """
    rows = {}
    methods = ('mrnet', 'bicubic') + (('pretrained', ) if pretrained is not None else ())
    lr_of = dict(pair_by_stem(gt_dir, lr_dir, require_all=True))
    for gt_path, sr_path in pair_by_stem(gt_dir, sr_dir, suffixes=(f'_{NAME}', ), require_all=True):
        gt, lr, sr = (read_image(p, color=True) for p in (gt_path, lr_of[gt_path], sr_path))
        bic = np.clip(np.round(imresize(lr.astype(np.float32) / 255., scale) * 255.), 0, 255).astype(np.uint8)
        stem = osp.splitext(osp.basename(gt_path))[0]
        rows[stem] = {'mrnet': y_metrics(sr, gt, scale), 'bicubic': y_metrics(bic, gt, scale), 'sr_image': sr_path}
        if images is not None:
            images[stem] = {'gt': gt, 'bicubic': bic, 'mrnet': sr[:gt.shape[0], :gt.shape[1]]}
        if pretrained is not None:
            out = pretrained.upscale(lr)
            rows[stem]['pretrained'] = y_metrics(out, gt, scale)
            if images is not None:
                images[stem]['pretrained'] = out[:gt.shape[0], :gt.shape[1]]
    for method in methods:
        rows.setdefault('_mean', {})[method] = {
            k: float(np.mean([r[method][k] for n, r in rows.items() if not n.startswith('_')]))
            for k in ('psnr', 'ssim')
        }
    return rows


def show(images, out_dir, scale=SCALE):
    """Per photo a figure (Bicubic | MRNet [| ``PRETRAINED_LABEL``] | GT crops, where the models differ most, with
    their scores) and the page with all of them (``index.html`` and ``scores.json``); the scores are those of
    ``evaluate``.

    Args:
        images (dict): ``{photo: {'gt', 'bicubic', 'mrnet'[, 'pretrained']}}`` uint8 BGR arrays, as ``evaluate``
            fills them.
        out_dir (str): Folder for ``index.html``, ``scores.json`` and ``figures/<photo>.png``.
        scale (int): The scale (the crop border of the whole-image scores). Default: ``SCALE``.

    Returns:
        dict: ``{'html': path, 'json': path, 'figures': [paths]}``.
    """
    entries = []
    for photo, imgs in images.items():
        gt = np.ascontiguousarray(imgs['gt'][..., ::-1])
        outputs = {'Bicubic': np.ascontiguousarray(imgs['bicubic'][..., ::-1]),
                   'MRNet': np.ascontiguousarray(imgs['mrnet'][..., ::-1])}
        if 'pretrained' in imgs:
            outputs[PRETRAINED_LABEL] = np.ascontiguousarray(imgs['pretrained'][..., ::-1])
        box = crops.choose_crop(gt, outputs)
        scores = crops.score_images(gt, outputs, box, crop_border=scale)
        path = osp.join(out_dir, 'figures', f'{photo}.png')
        os.makedirs(osp.dirname(path), exist_ok=True)
        figure.render_figure(gt, outputs, box, scores, name=photo, path=path)
        entries.append({'name': photo, 'gt': gt, 'outputs': outputs, 'scores': scores, 'crop': box, 'figure': path})
    models = 'MRNet and pretrained MRNet-S' if any('pretrained' in imgs for imgs in images.values()) else 'MRNet'
    paths = page.write_page(out_dir, entries, title=f'mrnet demo: {models} x{scale} vs bicubic on held-out photos')
    return dict(paths, figures=[e['figure'] for e in entries])


def report(rows):
    """The printed table of ``evaluate``'s rows: per photo and the mean, PSNR/SSIM of bicubic, MRNet and its gain
    over bicubic, and, when the rows have them, of the pretrained weights and their gain."""
    pretrained = 'pretrained' in rows['_mean']
    head = f'{"photo":<12} {"bicubic PSNR/SSIM":>20} {"MRNet PSNR/SSIM":>20} {"gain":>8}'
    lines = [head + (f' {"pretrained PSNR/SSIM":>22} {"gain":>8}' if pretrained else '')]
    for name, r in rows.items():
        label = 'mean' if name == '_mean' else name
        b, m = r['bicubic'], r['mrnet']
        line = (f'{label:<12} {b["psnr"]:>11.2f}/{b["ssim"]:.4f} {m["psnr"]:>11.2f}/{m["ssim"]:.4f} '
                f'{m["psnr"] - b["psnr"]:>+7.2f}')
        if pretrained:
            p = r['pretrained']
            line += f' {p["psnr"]:>13.2f}/{p["ssim"]:.4f} {p["psnr"] - b["psnr"]:>+7.2f}'
        lines.append(line)
    return '\n'.join(lines)


def build_parser():
    parser = argparse.ArgumentParser(prog='mrnet demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, default=None,
                        help=f'training iterations (default: total_iter of {TRAIN_YML})')
    parser.add_argument('--from-scratch', action='store_true',
                        help='do not start from the shipped demo weights (how they were made: PROVENANCE.md)')
    parser.add_argument('--lr', type=float, default=None, help='learning rate (default: from the YAML)')
    parser.add_argument('--name', default=None, help=f'experiment name (default: {NAME}; '
                        'an existing experiment of that name is archived by BasicSR, not overwritten)')
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    require(['skimage'], 'the demo')  # its photos; before anything is written
    start = time.time()
    root = project_root()
    for path in (TRAIN_YML, TEST_YML) + (() if args.from_scratch else (DEMO_WEIGHTS, )):
        if not osp.isfile(path):
            raise RunError(f'{path} not found: the installed package is incomplete '
                           '(reinstall it: pip install mrnet_arch, or pip install -e . in a checkout)')
    pretrained = load_pretrained()  # read before anything is written: a broken file stops the demo here
    print(f'[demo 1/4] real-photo dataset under {osp.join(root, DATA_DIR)} '
          f'(train: {", ".join(TRAIN_PHOTOS)}; held out: {", ".join(HELDOUT_PHOTOS)})', flush=True)
    folders = build_dataset(root)

    name = args.name or NAME
    force = [f'name={name}']
    if args.iters is not None:
        force.append(f'train:total_iter={args.iters}')
    if args.lr is not None:
        force.append(f'train:optim_g:lr={args.lr}')
    force.append('path:pretrain_network_g=' + ('~' if args.from_scratch else DEMO_WEIGHTS))
    print(f'[demo 2/4] training MRNet x{SCALE} ({TRAIN_YML}) '
          "through BasicSR's train pipeline", flush=True)
    mrnet = [sys.executable, '-m', 'mrnet_arch']
    _run(mrnet + ['train', '-opt', TRAIN_YML, '--force_yml'] + force, 'training', root)
    weights = osp.join(root, 'experiments', name, 'models', 'net_g_latest.pth')

    print(f'[demo 3/4] testing on the held-out photos ({TEST_YML}) '
          "through BasicSR's test pipeline", flush=True)
    _run(mrnet + ['test', '-opt', TEST_YML, '--force_yml', f'path:pretrain_network_g={weights}'], 'testing',
         root)
    sr_dir = osp.join(root, 'results', NAME, 'visualization', 'DemoHeldout')
    if pretrained is not None:
        print(f'and the pretrained weights {PRETRAINED} ({PRETRAINED_LABEL}; how they were made: PROVENANCE.md '
              'beside them) on the same LR images', flush=True)
    images = {}
    rows = evaluate(sr_dir, folders['gt'], folders[SCALE], images=images, pretrained=pretrained)
    out = osp.join(root, 'results', NAME, 'demo_results.json')
    write_json(out, {
        'command': ' '.join(['mrnet demo'] + argv),
        'weights': weights,
        'pretrained_weights': PRETRAINED if pretrained is not None else None,
        'minutes': (time.time() - start) / 60,
        'machine': machine_info(resolve_device('auto')),
        'results': rows,
    }, indent=1)
    print('\nY-channel PSNR (dB) / SSIM on the held-out photos, x2, crop border 2:')
    print(report(rows))
    shown_models = 'Bicubic | MRNet | ' + (f'{PRETRAINED_LABEL} | ' if pretrained is not None else '') + 'GT'
    print(f'\n[demo 4/4] figures and page of the held-out photos ({shown_models})', flush=True)
    shown = show(images, osp.join(root, 'results', NAME, 'compare'))
    gain = rows['_mean']['mrnet']['psnr'] - rows['_mean']['bicubic']['psnr']
    print(f'\nMRNet {"beats" if gain > 0 else "is below"} bicubic by {gain:+.2f} dB on average '
          f'({(time.time() - start) / 60:.1f} min in all).')
    print(f'figures:   {", ".join(shown["figures"])}\npage:      {shown["html"]}\n'
          f'SR images: {sr_dir}\nweights:   {weights}\nscores:    {out}')
    if pretrained is not None:
        print(f'pretrained: {PRETRAINED}')
    return 0
