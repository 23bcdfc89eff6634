"""Multi-scale training (section 4.5): one scale per iteration, validation per scale, test at every scale."""
import glob
import re
from os import path as osp

import cv2
import pytest
import torch
from torch.utils.data import DataLoader

from _photos import REPO, load_yaml, multiscale_data, run_mrnet, save_yaml
from mrnet_arch.data.multiscale_dataset import MultiScalePairedImageDataset
from mrnet_arch.models.mrnet_model import scale_schedule

SCALES = [2, 3, 4]
TINY_NET = {'num_feat': 8, 'num_block': 1, 'num_recursions': [2, 2, 2]}


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """A project root with tiny DIV2K LMDBs (48 px tiles) and a tiny Set5 from real photos."""
    root = tmp_path_factory.mktemp('msroot')
    return multiscale_data(root, {'0001.png': ('astronaut', 96, 96), '0002.png': ('coffee', 72, 96)},
                           {'baby.png': ('chelsea', 60, 72), 'bird.png': ('astronaut', 48, 60)}, SCALES)


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
def test_training_samples_hold_every_scale(data_root, workers):
    """Through BasicSR's EnlargedSampler and a DataLoader (with and without workers), every training batch
    holds a patch pair of every scale, LR patches of lq_size and HR patches of lq_size * s."""
    from basicsr.data.data_sampler import EnlargedSampler
    dataset = _dataset(data_root)
    sampler = EnlargedSampler(dataset, num_replicas=2, rank=1, ratio=3)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers, drop_last=True)
    batches = 0
    for batch in loader:
        for s in SCALES:
            assert batch[f'lq_x{s}'].shape == (2, 3, 8, 8)
            assert batch[f'gt_x{s}'].shape == (2, 3, 8 * s, 8 * s)
            assert list(batch[f'lq_path_x{s}']) == list(batch['gt_path'])  # LMDB keys: the same sub-images
        batches += 1
    assert batches == len(sampler) // 2


def test_a_patch_pair_of_one_scale_matches_bicubic_of_its_hr_patch(data_root):
    """LR and HR patches of a scale come from the same place: the LR patch is close to the MATLAB-bicubic
    downscale of its HR patch (tiles are cut before downscaling, so borders differ slightly)."""
    from basicsr.utils.matlab_functions import imresize
    dataset = _dataset(data_root, use_hflip=False, use_rot=False, lq_size=12)
    sample = dataset[0]
    for s in SCALES:
        gt = sample[f'gt_x{s}'].permute(1, 2, 0).numpy()
        lq = sample[f'lq_x{s}'].permute(1, 2, 0).numpy()
        down = imresize(gt, 1 / s)
        assert abs(down[2:-2, 2:-2] - lq[2:-2, 2:-2]).mean() < 0.02, s


def _float_first_sample(dataset, index):
    """A training sample as the dataset made it before it cropped the uint8 images: every image converted to
    float32 first (``imfrombytes(float32=True)``), then cropped, flipped and rotated (the reference)."""
    from basicsr.data.transforms import augment, paired_random_crop
    from basicsr.utils import bgr2ycbcr, imfrombytes, img2tensor
    base = dataset.datasets[SCALES[0]]
    gt_path = base.paths[index]['gt_path']
    img_gt = imfrombytes(dataset._client.get(gt_path, 'gt'), float32=True)
    sample = {'gt_path': gt_path}
    for scale in SCALES:
        lq_path = dataset.datasets[scale].paths[index]['lq_path']
        img_lq = imfrombytes(dataset._client.get(lq_path, f'lq_x{scale}'), float32=True)
        gt, lq = paired_random_crop(img_gt, img_lq, int(dataset.opt['lq_size']) * scale, scale, gt_path)
        gt, lq = augment([gt, lq], dataset.opt['use_hflip'], dataset.opt['use_rot'])
        if dataset.opt.get('color') == 'y':
            gt, lq = bgr2ycbcr(gt, y_only=True)[..., None], bgr2ycbcr(lq, y_only=True)[..., None]
        gt, lq = img2tensor([gt, lq], bgr2rgb=True, float32=True)
        sample.update({f'lq_x{scale}': lq, f'gt_x{scale}': gt, f'lq_path_x{scale}': lq_path})
    return sample


@pytest.mark.parametrize('extra', [{}, {'color': 'y'}])
def test_training_samples_are_bit_equal_to_the_float_first_path(data_root, extra):
    """Cropping the uint8 images first gives the samples of converting whole images first, for the same random
    state (flips in place on the HR image included)."""
    import random
    dataset = _dataset(data_root, **extra)
    dataset[0]  # opens the LMDBs
    for seed in range(4):
        for index in range(len(dataset)):
            random.seed(seed)
            new = dataset[index]
            random.seed(seed)
            old = _float_first_sample(dataset, index)
            assert new.keys() == old.keys()
            for key, value in old.items():
                if torch.is_tensor(value):
                    assert new[key].dtype == value.dtype == torch.float32 and torch.equal(new[key], value), key
                else:
                    assert new[key] == value


def test_the_model_trains_each_iteration_at_the_scheduled_scale(data_root):
    from basicsr.models import build_model
    opt = _train_opt(data_root)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    opt['path'] = {'pretrain_network_g': None, 'strict_load_g': True, 'models': str(data_root / 'm'),
                   'training_states': str(data_root / 's')}
    model = build_model(opt)
    batch = next(iter(DataLoader(_dataset(data_root), batch_size=2)))
    seen = []
    for it in range(1, 7):
        model.feed_data(batch)
        model.optimize_parameters(it)
        seen.append(model.scale)
        assert model.output.shape[-1] == 8 * model.scale
    assert seen == [scale_schedule(SCALES, 0, k) for k in range(6)]


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
