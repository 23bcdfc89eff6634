"""``mrnet demo``: MRNet x2 on real photos, end to end on a CPU, in BasicSR's own pipelines.

1. Builds a small real-photo dataset from the colour photographs that ship in scikit-image's data
   folder, split by image: ``TRAIN_PHOTOS`` for training, ``HELDOUT_PHOTOS`` held out. Training photos
   are cut into sub-images with ``mrnet prepare div2k``'s code (HR mod-cropped, LR by MATLAB bicubic,
   LMDBs by basicsr's ``make_lmdb_from_imgs``), so the demo exercises the DIV2K loader path; the
   held-out photos get the benchmark layout (``GTmod12``, ``LRbicx2``).
2. Trains MRNet x2 with ``options/demo/train_MRNet_demo_x2.yml`` through BasicSR's train pipeline,
   starting from the demo weights shipped in ``mrnet_arch/demo_weights/`` (see its ``PROVENANCE.md``)
   unless ``--from-scratch`` is given.
3. Evaluates the trained model on the held-out photos with BasicSR's test pipeline
   (``options/demo/test_MRNet_demo_x2.yml``), then prints Y-channel PSNR/SSIM of MRNet and of bicubic
   (MATLAB bicubic of the same LR image) per photo, and where the SR images are.

The demo model is smaller than the paper's (``num_feat`` 32, ``num_block`` 4, T = 3 instead of 64 / 10 /
4): on 2 CPU cores the paper-size model runs about ten times fewer iterations in the same time, far too
few to leave bicubic behind within the demo's 15 minutes.
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
from mrnet_arch.core.device import resolve_device
from mrnet_arch.core.evaluation import pair_by_stem, y_metrics
from mrnet_arch.core.files import write_json
from mrnet_arch.core.images import read_image
from mrnet_arch.core.machine import machine_info
from mrnet_arch.core.prepare import prepare_benchmark, prepare_div2k
from mrnet_arch.utils import project_root

TRAIN_PHOTOS = ('astronaut.png', 'hubble_deep_field.jpg', 'ihc.png', 'motorcycle_left.png', 'motorcycle_right.png',
                'rocket.jpg')
HELDOUT_PHOTOS = ('chelsea.png', 'coffee.png')
SCALE = 2
NAME = 'MRNet_demo_x2'
CHECKOUT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN_YML = osp.join(CHECKOUT, 'options', 'demo', 'train_MRNet_demo_x2.yml')
TEST_YML = osp.join(CHECKOUT, 'options', 'demo', 'test_MRNet_demo_x2.yml')
DEMO_WEIGHTS = osp.join(osp.dirname(osp.abspath(__file__)), 'demo_weights', 'MRNet_demo_x2.pth')
DATA_DIR = 'datasets/demo'
SUB_IMAGE = (120, 60)  # HR sub-image size and step; training crops 64 px HR patches from them


def skimage_data_dir():
    """scikit-image's data folder (installed with basicsr)."""
    import skimage
    folder = osp.join(osp.dirname(skimage.__file__), 'data')
    missing = [p for p in TRAIN_PHOTOS + HELDOUT_PHOTOS if not osp.isfile(osp.join(folder, p))]
    if missing:
        raise SystemExit(f'mrnet demo: scikit-image data folder {folder} lacks {missing}')
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


def _run(args, log_hint):
    print(f'$ {" ".join(args)}', flush=True)
    proc = subprocess.run(args)
    if proc.returncode != 0:
        raise SystemExit(f'mrnet demo: {log_hint} failed (exit {proc.returncode}); see the log above.')


def evaluate(sr_dir, gt_dir, lr_dir, scale=SCALE):
    """Y-channel PSNR/SSIM (crop border = scale) of the SR images and of MATLAB bicubic upsampling.

    Args:
        sr_dir (str): BasicSR's SR images (``<name>_<NAME>.png``).
        gt_dir (str): GT images.
        lr_dir (str): LR images (same names as the GT).
        scale (int): The scale. Default: ``SCALE``.

    Returns:
        dict: Per photo ``{'mrnet': metrics, 'bicubic': metrics, 'sr_image': path}``, and ``'_mean'``.
    """
    rows = {}
    lr_of = dict(pair_by_stem(gt_dir, lr_dir, require_all=True))
    for gt_path, sr_path in pair_by_stem(gt_dir, sr_dir, suffixes=(f'_{NAME}', ), require_all=True):
        gt, lr, sr = (read_image(p, color=True) for p in (gt_path, lr_of[gt_path], sr_path))
        bic = np.clip(np.round(imresize(lr.astype(np.float32) / 255., scale) * 255.), 0, 255).astype(np.uint8)
        stem = osp.splitext(osp.basename(gt_path))[0]
        rows[stem] = {'mrnet': y_metrics(sr, gt, scale), 'bicubic': y_metrics(bic, gt, scale), 'sr_image': sr_path}
    for method in ('mrnet', 'bicubic'):
        rows.setdefault('_mean', {})[method] = {
            k: float(np.mean([r[method][k] for n, r in rows.items() if not n.startswith('_')]))
            for k in ('psnr', 'ssim')
        }
    return rows


def report(rows):
    lines = [f'{"photo":<12} {"bicubic PSNR/SSIM":>20} {"MRNet PSNR/SSIM":>20} {"gain":>8}']
    for name, r in rows.items():
        label = 'mean' if name == '_mean' else name
        b, m = r['bicubic'], r['mrnet']
        lines.append(f'{label:<12} {b["psnr"]:>11.2f}/{b["ssim"]:.4f} {m["psnr"]:>11.2f}/{m["ssim"]:.4f} '
                     f'{m["psnr"] - b["psnr"]:>+7.2f}')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='mrnet demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, default=None,
                        help=f'training iterations (default: total_iter of {TRAIN_YML})')
    parser.add_argument('--from-scratch', action='store_true',
                        help='do not start from the shipped demo weights (how they were made: PROVENANCE.md)')
    parser.add_argument('--lr', type=float, default=None, help='learning rate (default: from the YAML)')
    parser.add_argument('--name', default=None, help=f'experiment name (default: {NAME}; '
                        'an existing experiment of that name is archived by BasicSR, not overwritten)')
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    start = time.time()
    root = project_root()
    for path in (TRAIN_YML, TEST_YML) + (() if args.from_scratch else (DEMO_WEIGHTS, )):
        if not osp.isfile(path):
            raise SystemExit(f'mrnet demo: {path} not found; the demo runs from a source checkout '
                             '(pip install -e .)')
    print(f'[demo 1/3] real-photo dataset under {osp.join(root, DATA_DIR)} '
          f'(train: {", ".join(TRAIN_PHOTOS)}; held out: {", ".join(HELDOUT_PHOTOS)})', flush=True)
    folders = build_dataset(root)

    name = args.name or NAME
    force = [f'name={name}']
    if args.iters is not None:
        force.append(f'train:total_iter={args.iters}')
    if args.lr is not None:
        force.append(f'train:optim_g:lr={args.lr}')
    force.append('path:pretrain_network_g=' + ('~' if args.from_scratch else DEMO_WEIGHTS))
    print(f'[demo 2/3] training MRNet x{SCALE} ({osp.relpath(TRAIN_YML, CHECKOUT)}) '
          "through BasicSR's train pipeline", flush=True)
    mrnet = [sys.executable, '-m', 'mrnet_arch']
    _run(mrnet + ['train', '-opt', TRAIN_YML, '--force_yml'] + force, 'training')
    weights = osp.join(root, 'experiments', name, 'models', 'net_g_latest.pth')

    print(f'[demo 3/3] testing on the held-out photos ({osp.relpath(TEST_YML, CHECKOUT)}) '
          "through BasicSR's test pipeline", flush=True)
    _run(mrnet + ['test', '-opt', TEST_YML, '--force_yml', f'path:pretrain_network_g={weights}'], 'testing')
    sr_dir = osp.join(root, 'results', NAME, 'visualization', 'DemoHeldout')
    rows = evaluate(sr_dir, folders['gt'], folders[SCALE])
    out = osp.join(root, 'results', NAME, 'demo_results.json')
    write_json(out, {
        'command': ' '.join(['mrnet demo'] + argv),
        'weights': weights,
        'minutes': (time.time() - start) / 60,
        'machine': machine_info(resolve_device('auto')),
        'results': rows,
    }, indent=1)
    print('\nY-channel PSNR (dB) / SSIM on the held-out photos, x2, crop border 2:')
    print(report(rows))
    gain = rows['_mean']['mrnet']['psnr'] - rows['_mean']['bicubic']['psnr']
    print(f'\nMRNet {"beats" if gain > 0 else "is below"} bicubic by {gain:+.2f} dB on average '
          f'({(time.time() - start) / 60:.1f} min in all).')
    print(f'SR images: {sr_dir}\nweights:   {weights}\nscores:    {out}')
    return 0
