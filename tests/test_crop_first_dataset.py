"""``CropFirstPairedImageDataset`` gives BasicSR's ``PairedImageDataset``'s samples bit for bit (lmdb and disk, train
and val, every option), converting only the patch; the option files use it; a bad file is named."""
import random
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

from _photos import REPO, load_yaml, write_photos
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.registry import DATASET_REGISTRY
from mrnet_arch.data.crop_first_dataset import CropFirstPairedImageDataset
from mrnet_arch.dataprep.prepare import prepare_div2k


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Sub-image folders and LMDBs (x2, 48 px tiles) of real photos, and a val set whose GT is not a multiple of 2."""
    root = tmp_path_factory.mktemp('cropfirst')
    hr = write_photos(str(root / 'HR'), {'a.png': ('astronaut', 96, 120), 'b.png': ('coffee', 96, 96),
                                         'c.png': ('camera', 96, 96)})
    paths = prepare_div2k(hr, str(root / 'out'), scales=[2], crop_size=48, step=48)
    val_gt = write_photos(str(root / 'val_gt'), {'v.png': ('chelsea', 51, 47), 'w.png': ('camera', 40, 42)})
    val_lq = str(root / 'val_lq')
    write_photos(val_lq, {'v.png': ('coffee', 25, 23), 'w.png': ('camera', 20, 21)})
    return {'lmdb': (paths['hr'][1], paths[2][1]), 'disk': (paths['hr'][0], paths[2][0]), 'val': (val_gt, val_lq)}


def _opt(data, backend, phase, **extra):
    gt, lq = data['val'] if phase == 'val' else data[backend]
    opt = {'name': 'x', 'phase': phase, 'scale': 2, 'dataroot_gt': gt, 'dataroot_lq': lq, 'filename_tmpl': '{}',
           'io_backend': {'type': 'disk' if phase == 'val' else backend}}
    if phase == 'train':
        opt.update(gt_size=24, use_hflip=True, use_rot=True)
    opt.update(extra)
    return opt


def _samples(cls, opt, seed, rounds=3):
    dataset = cls(dict(opt, io_backend=dict(opt['io_backend'])))
    random.seed(seed)
    np.random.seed(seed)
    return [dataset[i] for _ in range(rounds) for i in range(len(dataset))]


@pytest.mark.parametrize('backend,phase,extra', [
    ('lmdb', 'train', {}),
    ('disk', 'train', {}),
    ('lmdb', 'train', {'color': 'y'}),
    ('lmdb', 'train', {'mean': [0.4, 0.45, 0.5], 'std': [0.2, 0.25, 0.3]}),
    ('disk', 'val', {}),
    ('disk', 'val', {'color': 'y'}),
])
def test_samples_are_bit_equal_to_paired_image_dataset(data, backend, phase, extra):
    opt = _opt(data, backend, phase, **extra)
    old = _samples(PairedImageDataset, opt, seed=7)
    new = _samples(CropFirstPairedImageDataset, opt, seed=7)
    assert len(old) == len(new) >= 6
    for a, b in zip(old, new):
        assert a.keys() == b.keys() and (a['lq_path'], a['gt_path']) == (b['lq_path'], b['gt_path'])
        for key in ('lq', 'gt'):
            assert a[key].dtype == b[key].dtype == torch.float32 and a[key].shape == b[key].shape
            assert torch.equal(a[key], b[key])
    if phase == 'train':  # the draws differ between samples: flips and crops really ran
        assert any(not torch.equal(new[0]['gt'], s['gt']) for s in new[len(new) // 3::len(new) // 3])
    else:
        shapes = {osp.basename(s['gt_path']): tuple(s['gt'].shape[-2:]) for s in new}
        assert shapes == {'v.png': (50, 46), 'w.png': (40, 42)}  # GT cropped to 2x the LR, as PairedImageDataset does


def test_samples_through_a_dataloader_with_workers_are_those_of_paired_image_dataset(data):
    """With BasicSR's worker seeding (build_dataloader), batches from 2 workers equal the old dataset's."""
    from basicsr.data import build_dataloader
    batches = {}
    for cls in (PairedImageDataset, CropFirstPairedImageDataset):
        opt = _opt(data, 'lmdb', 'train', num_worker_per_gpu=2, batch_size_per_gpu=4, dataset_enlarge_ratio=1,
                   use_shuffle=False)
        loader = build_dataloader(cls(opt), opt, num_gpu=0, dist=False, sampler=None, seed=5)
        torch.manual_seed(0)  # the shuffled order
        batches[cls] = list(loader)
    old, new = batches.values()
    assert len(old) == len(new) > 1
    for a, b in zip(old, new):
        assert torch.equal(a['gt'], b['gt']) and torch.equal(a['lq'], b['lq']) and a['gt_path'] == b['gt_path']


def test_registered_and_a_bad_file_is_named(data, tmp_path):
    assert DATASET_REGISTRY.get('CropFirstPairedImageDataset') is CropFirstPairedImageDataset
    gt = write_photos(str(tmp_path / 'gt'), {'a.png': ('astronaut', 48, 48)})
    lq = write_photos(str(tmp_path / 'lq'), {'a.png': ('astronaut', 24, 24)})
    with open(osp.join(lq, 'a.png'), 'r+b') as f:
        f.truncate(60)  # a PNG cut short
    dataset = CropFirstPairedImageDataset({'name': 'x', 'phase': 'train', 'scale': 2, 'dataroot_gt': gt,
                                           'dataroot_lq': lq, 'io_backend': {'type': 'disk'}, 'gt_size': 24,
                                           'use_hflip': False, 'use_rot': False})
    with pytest.raises(RuntimeError, match=r'CropFirstPairedImageDataset: could not load lq=.*lq/a\.png, gt=.*'):
        dataset[0]
    with pytest.raises(IndexError):
        dataset[1]


def test_shipped_training_option_files_use_it():
    """Every single-scale training option file trains on CropFirstPairedImageDataset; its options are those of
    PairedImageDataset, so a BasicSR checkout can switch back by changing the type alone."""
    for name in ('train_MRNet_x2.yml', 'train_MRNet_x3.yml', 'train_MRNet_x4.yml', 'ablation/table1_mrm.yml',
                 'demo/train_MRNet_demo_x2.yml'):
        train = load_yaml(osp.join(REPO, 'options', name))['datasets']['train']
        assert train['type'] == 'CropFirstPairedImageDataset', name


def test_decoded_patch_is_the_uint8_crop(data):
    """No augmentation: the patch is the uint8 crop of the decoded sub-image at the drawn place, divided by 255."""
    opt = _opt(data, 'lmdb', 'train', use_hflip=False, use_rot=False)
    dataset = CropFirstPairedImageDataset(opt)
    random.seed(1)
    sample = dataset[0]
    random.seed(1)
    top, left = random.randint(0, 24 - 12), random.randint(0, 24 - 12)
    tile = cv2.imread(osp.join(data['disk'][0], sample['gt_path'] + '.png'))
    expected = tile[2 * top:2 * top + 24, 2 * left:2 * left + 24, ::-1].astype(np.float32) / 255.
    np.testing.assert_array_equal(sample['gt'].permute(1, 2, 0).numpy(), expected)


def test_bmp_pixels_are_what_imfrombytes_decodes():
    """The in-place BMP view equals OpenCV's decode for odd widths (padded rows) and real photo content; a gray or
    32-bit BMP, a PNG and cut-short bytes are left to imfrombytes."""
    from _photos import photo
    from basicsr.utils import imfrombytes
    from mrnet_arch.data.crop_first_dataset import bmp_pixels
    for height, width in ((48, 47), (31, 50), (1, 1), (40, 42)):
        img = photo('astronaut', height, width, top=100, left=100)
        content = cv2.imencode('.bmp', img)[1].tobytes()
        view = bmp_pixels(content)
        assert view is not None and not view.flags.writeable
        np.testing.assert_array_equal(view, imfrombytes(content))
        np.testing.assert_array_equal(view, img)
        assert bmp_pixels(content[:-1]) is None
    gray = cv2.imencode('.bmp', photo('camera', 20, 21))[1].tobytes()
    bgra = cv2.imencode('.bmp', np.dstack([photo('astronaut', 20, 21)] + [np.full((20, 21), 9, np.uint8)]))[1]
    png = cv2.imencode('.png', photo('astronaut', 20, 21))[1].tobytes()
    assert bmp_pixels(gray) is None and bmp_pixels(bgra.tobytes()) is None and bmp_pixels(png) is None
