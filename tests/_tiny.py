"""A tiny paired super-resolution dataset and training YAML for the reliability tests.

GT images are crops of scikit-image's photos (astronaut, chelsea, coffee, ...); LR images are MATLAB-style
bicubic downscales (``basicsr.utils.matlab_functions.imresize``), written as PNG folders and, on request,
as LMDBs (``basicsr.utils.lmdb_util.make_lmdb_from_imgs``).
"""
import os
import subprocess
import sys
from os import path as osp

import cv2
import numpy as np
import yaml

import mrnet_arch  # noqa: F401  (basicsr compat fixes; must come before any basicsr import)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'cat', 'immunohistochemistry')


def photo_crop(index, size):
    """An RGB uint8 ``size`` x ``size`` crop of a scikit-image photo (index wraps around the photos)."""
    from skimage import data
    img = getattr(data, PHOTOS[index % len(PHOTOS)])()
    h, w = img.shape[:2]
    top = (h - size) // 2 + 7 * (index // len(PHOTOS))
    left = (w - size) // 2
    return np.ascontiguousarray(img[top:top + size, left:left + size, :3])


def make_pairs(root, n=4, size=48, scale=2, names=None):
    """Write ``n`` GT crops of ``size`` px and their x``scale`` LR images as PNG folders.

    Args:
        root (str): Folder to create ``GT/`` and ``LR/`` in.
        n (int): Number of pairs.
        size (int): GT side in pixels (a multiple of ``scale``).
        scale (int): Downscale factor.
        names (list[str] | None): File stems; default ``0000``, ``0001``, ...

    Returns:
        tuple[str, str]: The LR (LQ) and GT folders.
    """
    from mrnet_arch.dataprep.prepare import bicubic_downscale
    lq_dir, gt_dir = osp.join(root, 'LR'), osp.join(root, 'GT')
    os.makedirs(lq_dir, exist_ok=True)
    os.makedirs(gt_dir, exist_ok=True)
    for i in range(n):
        stem = names[i] if names else f'{i:04d}'
        gt = photo_crop(i, size)
        lq = bicubic_downscale(gt, scale)
        cv2.imwrite(osp.join(gt_dir, f'{stem}.png'), cv2.cvtColor(gt, cv2.COLOR_RGB2BGR))
        cv2.imwrite(osp.join(lq_dir, f'{stem}.png'), cv2.cvtColor(lq, cv2.COLOR_RGB2BGR))
    return lq_dir, gt_dir


def make_lmdbs(lq_dir, gt_dir):
    """LMDB copies (``<folder>.lmdb`` with ``meta_info.txt``) of an LR and a GT folder.

    Returns:
        tuple[str, str]: The LR and GT LMDB folders.
    """
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    out = []
    for folder in (lq_dir, gt_dir):
        names = sorted(f for f in os.listdir(folder) if f.endswith('.png'))
        lmdb_path = folder.rstrip('/') + '.lmdb'
        make_lmdb_from_imgs(folder, lmdb_path, names, [osp.splitext(f)[0] for f in names], n_thread=1)
        out.append(lmdb_path)
    return tuple(out)


def train_options(name, train, val=None, total_iter=20, save_freq=5, val_freq=1000, gt_size=32, batch=2,
                  milestones=(1000, ), seed=10, augment=True):
    """The option dict of a tiny MRNet x2 training run on CPU.

    Args:
        name (str): Experiment name.
        train (tuple[str, str]): LR and GT folders of the training set.
        val (tuple[str, str] | None): LR and GT folders of the validation set (PSNR), or None.
        total_iter (int): Iterations.
        save_freq (int): ``logger:save_checkpoint_freq``.
        val_freq (int): ``val:val_freq``.
        gt_size (int): GT patch size.
        batch (int): Batch size.
        milestones (tuple[int]): MultiStepLR milestones (lr halves at each).
        seed (int): ``manual_seed``.
        augment (bool): Flips and rotations.

    Returns:
        dict: Options, as a BasicSR YAML would hold them.
    """
    def dataset(phase_name, folders, is_train):
        d = {'name': phase_name, 'type': 'PairedImageDataset', 'dataroot_lq': folders[0], 'dataroot_gt': folders[1],
             'io_backend': {'type': 'disk'}}
        if is_train:
            d.update(gt_size=gt_size, use_hflip=augment, use_rot=augment, num_worker_per_gpu=0,
                     batch_size_per_gpu=batch, dataset_enlarge_ratio=1, prefetch_mode=None)
        return d

    opt = {
        'name': name, 'model_type': 'MRNetModel', 'scale': 2, 'num_gpu': 0, 'manual_seed': seed,
        'datasets': {'train': dataset('tiny_train', train, True)},
        'network_g': {'type': 'MRNet', 'num_feat': 8, 'num_block': 1, 'num_recursion': 2, 'upscale': 2},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0,
            'optim_g': {'type': 'Adam', 'lr': 1.0e-3, 'weight_decay': 0, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': list(milestones), 'gamma': 0.5},
            'total_iter': total_iter, 'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': save_freq, 'use_tb_logger': False,
                   'wandb': {'project': None, 'resume_id': None}},
    }
    if val is not None:
        opt['datasets']['val'] = dataset('tiny_val', val, False)
        opt['val'] = {'val_freq': val_freq, 'save_img': False,
                      'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2, 'test_y_channel': False}}}
    return opt


def write_yml(opt, path):
    """Write ``opt`` as YAML to ``path``; returns ``path``."""
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def parse(yml, root, is_train=True):
    """``basicsr.utils.options.parse_options`` on ``yml`` (as the train/test pipelines call it)."""
    from basicsr.utils.options import parse_options
    argv = sys.argv
    sys.argv = ['mrnet', '-opt', yml]
    try:
        return parse_options(root, is_train=is_train)[0]
    finally:
        sys.argv = argv


def env(root, **extra):
    """Environment for a training subprocess: project root ``root``, one thread, the checkout importable."""
    e = dict(os.environ, MRNET_ROOT=root, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    e['PYTHONPATH'] = REPO + os.pathsep + e.get('PYTHONPATH', '')
    e.update(extra)
    return e


def run_train(yml, root, *args, cwd=None, timeout=240, **kwargs):
    """Run ``python -m mrnet_arch train -opt yml *args`` to completion; returns the CompletedProcess."""
    return subprocess.run([sys.executable, '-m', 'mrnet_arch', 'train', '-opt', yml, *args], cwd=cwd or root,
                          env=env(root), capture_output=True, text=True, timeout=timeout, **kwargs)
