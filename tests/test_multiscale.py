"""Multi-scale training (section 4.5): one scale per batch, validation per scale, test at every scale."""
import glob
import re
from os import path as osp

import cv2
import pytest
import torch
from torch.utils.data import DataLoader

from _photos import REPO, load_yaml, run_mrnet, save_yaml, write_photos
from mrnet_arch.data.multiscale_dataset import MultiScalePairedImageDataset, scale_schedule
from mrnet_arch.prepare import prepare_benchmark, prepare_div2k

SCALES = [2, 3, 4]
TINY_NET = {'num_feat': 8, 'num_block': 1, 'num_recursions': [2, 2, 2]}


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """A project root with tiny DIV2K LMDBs (48 px tiles) and a tiny Set5 from real photos."""
    root = tmp_path_factory.mktemp('msroot')
    hr = write_photos(str(root / 'raw_hr'), {'0001.png': ('astronaut', 96, 96), '0002.png': ('coffee', 72, 96)})
    prepare_div2k(hr, str(root / 'datasets' / 'DIV2K'), SCALES, crop_size=48, step=48)
    bench = write_photos(str(root / 'raw_set5'), {'baby.png': ('chelsea', 60, 72), 'bird.png': ('astronaut', 48, 60)})
    prepare_benchmark(bench, str(root / 'datasets' / 'Set5'), SCALES)
    return root


def _train_opt(root):
    opt = load_yaml(osp.join(REPO, 'options', 'train_MRNet_multiscale.yml'))
    opt['network_g'].update(TINY_NET)
    train = opt['datasets']['train']
    train.update(lq_size=8, batch_size_per_gpu=2, num_worker_per_gpu=0, dataset_enlarge_ratio=1)
    opt['train']['total_iter'] = 6
    opt['train']['scheduler']['milestones'] = [4]
    opt['val'].update(val_freq=3)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['num_gpu'] = 0
    return opt


def _dataset(root, **extra):
    opt = dict(name='tiny', type='MultiScalePairedImageDataset', phase='train', scales=SCALES, scale=2,
               dataroot_gt=str(root / 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb'),
               dataroots_lq=[str(root / f'datasets/DIV2K/DIV2K_train_LR_bicubic_X{s}_sub.lmdb') for s in SCALES],
               io_backend={'type': 'lmdb'}, lq_size=8, use_hflip=True, use_rot=True)
    opt.update(extra)
    return MultiScalePairedImageDataset(opt)


def test_scale_schedule_is_balanced_and_seeded():
    seq = [scale_schedule(SCALES, 0, k) for k in range(30)]
    for r in range(10):  # every round of 3 batches visits each scale once
        assert sorted(seq[3 * r:3 * r + 3]) == SCALES
    assert seq == [scale_schedule(SCALES, 0, k) for k in range(30)]
    assert seq != [scale_schedule(SCALES, 1, k) for k in range(30)]


@pytest.mark.parametrize('workers', [0, 2])
def test_batches_have_one_scale_and_ranks_agree(data_root, workers):
    """With BasicSR's EnlargedSampler for 2 ranks, every batch is at one scale, patch sizes follow it, and
    both ranks see the same scale at the same iteration."""
    from basicsr.data.data_sampler import EnlargedSampler
    per_rank = []
    for rank in range(2):
        dataset = _dataset(data_root)
        sampler = EnlargedSampler(dataset, num_replicas=2, rank=rank, ratio=6)
        loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers, drop_last=True)
        scales = []
        for batch in loader:
            s = int(batch['scale'][0])
            assert (batch['scale'] == s).all()
            assert batch['lq'].shape[-2:] == (8, 8)
            assert batch['gt'].shape[-2:] == (8 * s, 8 * s)
            scales.append(s)
        per_rank.append(scales)
    assert per_rank[0] == per_rank[1]
    assert set(per_rank[0]) == set(SCALES)


def test_dataset_option_errors(data_root):
    with pytest.raises(ValueError, match='dataroots_lq'):
        _dataset(data_root, dataroots_lq=[str(data_root / 'datasets/DIV2K/DIV2K_train_LR_bicubic_X2_sub.lmdb')])
    with pytest.raises(FileNotFoundError, match='LR of x3 not found: .*missing_X3'):
        roots = [str(data_root / f'datasets/DIV2K/DIV2K_train_LR_bicubic_X{s}_sub.lmdb') for s in SCALES]
        _dataset(data_root, dataroots_lq=[roots[0], str(data_root / 'missing_X3'), roots[2]])
    with pytest.raises(ValueError, match='lq_size'):
        _dataset(data_root, gt_size=96)


def test_multiscale_train_then_test_each_scale(data_root):
    root = data_root
    yml = save_yaml(_train_opt(root), root / 'train_ms.yml')
    run_mrnet(['train', '-opt', yml], root)
    exp = root / 'experiments' / 'MRNet_multiscale'
    log = open(glob.glob(str(exp / 'train_*.log'))[0], encoding='utf-8').read()
    for s in SCALES:  # validation per scale at iterations 3 and 6, and BasicSR's final one
        assert len(re.findall(rf'Validation Set5_x{s}\n\s+# psnr: ', log)) == 3, log[-3000:]
    ckpt = torch.load(exp / 'models' / 'net_g_latest.pth', map_location='cpu', weights_only=True)['params']
    assert {k.split('.')[1] for k in ckpt if k.startswith('reconstruction.')} == {'x2', 'x3', 'x4'}

    opt = load_yaml(osp.join(REPO, 'options', 'test_MRNet_multiscale.yml'))
    opt['network_g'].update(TINY_NET)
    opt['num_gpu'] = 0
    opt['datasets'] = {k: v for k, v in opt['datasets'].items() if v['name'].startswith('Set5_')}
    assert sorted(v['scales'][0] for v in opt['datasets'].values()) == SCALES
    yml = save_yaml(opt, root / 'test_ms.yml')
    run_mrnet(['test', '-opt', yml], root)
    results = root / 'results' / 'MRNet_multiscale'
    log = open(glob.glob(str(results / 'test_*.log'))[0], encoding='utf-8').read()
    for s in SCALES:
        assert re.search(rf'Validation Set5_x{s}\n\s+# psnr: \d+\.\d+', log), log[-3000:]
        for name in ('baby', 'bird'):
            sr = cv2.imread(str(results / 'visualization' / f'Set5_x{s}' / f'{name}_MRNet_multiscale.png'))
            gt = cv2.imread(str(root / 'datasets' / 'Set5' / 'GTmod12' / f'{name}.png'))
            assert sr.shape == gt.shape  # the output of scale s matches the GT of that scale
