"""``mrnet_arch.preflight.checks`` on ``MultiScalePairedImageDataset``: every scale's LR root and files are checked
like a ``PairedImageDataset`` of that scale, and errors name ``dataroots_lq[i]`` and the file."""
import os
import shutil
from os import path as osp

import cv2
import pytest

from _photos import REPO, load_yaml, multiscale_data, run_mrnet, save_yaml
from mrnet_arch.preflight.checks import CheckError, check_datasets

SCALES = [2, 3, 4]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """Tiny DIV2K-like LMDBs (48 px HR tiles, LR of x2, x3, x4) and a tiny Set5 layout from real photos."""
    root = tmp_path_factory.mktemp('ms_checks')
    return multiscale_data(root, {'0001.png': ('astronaut', 96, 96), '0002.png': ('coffee', 72, 96)},
                           {'baby.png': ('chelsea', 60, 72), 'bird.png': ('astronaut', 48, 60)}, SCALES)


@pytest.fixture()
def root(data_root, tmp_path):
    """A fresh copy of the data (tests damage it)."""
    shutil.copytree(str(data_root / 'datasets'), str(tmp_path / 'datasets'))
    return tmp_path


def _train(root, **extra):
    div2k = root / 'datasets' / 'DIV2K'
    opt = {'name': 'DIV2K', 'type': 'MultiScalePairedImageDataset', 'scales': list(SCALES),
           'dataroot_gt': str(div2k / 'DIV2K_train_HR_sub.lmdb'),
           'dataroots_lq': [str(div2k / f'DIV2K_train_LR_bicubic_X{s}_sub.lmdb') for s in SCALES],
           'io_backend': {'type': 'lmdb'}, 'lq_size': 8, 'scale': 2, 'phase': 'train'}
    opt.update(extra)
    return opt


def _val(root, scales=(2, 3, 4), single=False):
    set5 = root / 'datasets' / 'Set5'
    opt = {'name': 'Set5', 'type': 'MultiScalePairedImageDataset', 'scales': list(scales),
           'dataroot_gt': str(set5 / 'GTmod12'), 'io_backend': {'type': 'disk'}, 'scale': 2, 'phase': 'val'}
    if single:
        opt['dataroot_lq'] = str(set5 / f'LRbicx{scales[0]}')
    else:
        opt['dataroots_lq'] = [str(set5 / f'LRbicx{s}') for s in scales]
    return opt


def _check(**datasets):
    check_datasets({'scale': 2, 'datasets': datasets})


def test_good_sets_pass(root):
    _check(train=_train(root), val_1=_val(root), val_2=_val(root, scales=[3], single=True))


def test_missing_lr_root_of_one_scale_is_named(root):
    train = _train(root)
    missing = train['dataroots_lq'][1]
    shutil.rmtree(missing)
    with pytest.raises(CheckError, match=r'datasets:train:dataroots_lq\[1\]: .*X3_sub\.lmdb/data\.mdb not found'):
        _check(train=train)
    val = _val(root)
    shutil.rmtree(val['dataroots_lq'][2])
    with pytest.raises(CheckError, match=r'datasets:val:dataroots_lq\[2\]: folder not found: .*LRbicx4'):
        _check(val=val)


def test_one_list_entry_per_scale(root):
    train = _train(root)
    train['dataroots_lq'] = train['dataroots_lq'][:2]
    with pytest.raises(CheckError, match=r'datasets:train:dataroots_lq must list one LR folder or LMDB per scale '
                       r'of \[2, 3, 4\]'):
        _check(train=train)
    train = _train(root)
    del train['dataroots_lq']
    with pytest.raises(CheckError, match='datasets:train: give dataroots_lq'):
        _check(train=train)
    with pytest.raises(CheckError, match=r"datasets:train:scales must be a list of distinct positive integers.*"
                       r"\[2, 2\]"):
        _check(train=_train(root, scales=[2, 2], dataroots_lq=_train(root)['dataroots_lq'][:2]))


def test_lmdb_keys_missing_in_one_scale(root):
    train = _train(root)
    meta = osp.join(train['dataroots_lq'][2], 'meta_info.txt')
    lines = open(meta).read().splitlines(True)
    open(meta, 'w').write(''.join(lines[1:]))
    first = lines[0].split('.')[0]
    with pytest.raises(CheckError, match=rf'(?s)datasets:train: the LQ and GT LMDBs list different keys.*{first} only '
                       r'in .*HR_sub\.lmdb'):
        _check(train=train)
    open(meta, 'w').write(''.join(lines) + '9999_s001.png (16,16,3) 1\n')
    with pytest.raises(CheckError, match=r'(?s)datasets:train:dataroots_lq\[2\]: keys listed in meta_info\.txt but '
                       r'missing from .*X4_sub\.lmdb/data\.mdb:\s+9999_s001'):
        _check(train=train)


def test_lr_patch_larger_than_an_lr_image(root):
    with pytest.raises(CheckError, match=r'(?s)datasets:train:dataroots_lq\[2\]: GT/LQ sizes do not match scale 4.*'
                       r'is 12x12, smaller than gt_size 64 / scale 4'):
        _check(train=_train(root, lq_size=16))  # x2 (24 px) and x3 (16 px) LR tiles fit; x4 (12 px) does not
    with pytest.raises(CheckError, match='datasets:train:gt_size: use lq_size'):
        _check(train=_train(root, gt_size=32))


def test_unpaired_unreadable_and_wrong_size_files_of_one_scale(root):
    val = _val(root)
    lr3 = val['dataroots_lq'][1]
    os.rename(osp.join(lr3, 'bird.png'), osp.join(lr3, 'birdx3.png'))
    with pytest.raises(CheckError, match=r"(?s)datasets:val: the LQ folder .*LRbicx3 and the GT folder .* do not "
                       r"pair up by name.*filename_tmpl: '\{\}x3'"):
        _check(val=val)
    os.rename(osp.join(lr3, 'birdx3.png'), osp.join(lr3, 'bird.png'))

    bad = osp.join(val['dataroots_lq'][2], 'baby.png')
    data = open(bad, 'rb').read()
    open(bad, 'wb').write(data[:len(data) // 2])
    with pytest.raises(CheckError, match=rf'(?s)datasets:val:dataroots_lq\[2\]: unreadable images.*{bad}: cut short'):
        _check(val=val)

    gt = cv2.imread(osp.join(val['dataroot_gt'], 'baby.png'))
    cv2.imwrite(bad, cv2.resize(gt, (gt.shape[1] // 2, gt.shape[0] // 2), interpolation=cv2.INTER_AREA))  # x2 LR
    with pytest.raises(CheckError, match=rf'(?s)datasets:val:dataroots_lq\[2\]: GT/LQ sizes do not match scale 4.*'
                       rf'baby\.png is 60x72 but {bad} is 30x36'):
        _check(val=val)


def test_gt_up_to_scale_minus_one_pixels_larger_passes_for_validation(root):
    """Validation GT may be at most ``scale - 1`` pixels larger than ``scale`` x LR at each scale (BasicSR crops)."""
    val = _val(root, scales=[3, 4])
    gt_path = osp.join(val['dataroot_gt'], 'baby.png')
    gt = cv2.imread(gt_path)  # 60x72: x3 LR 20x24, x4 LR 15x18
    cv2.imwrite(gt_path, cv2.copyMakeBorder(gt, 0, 2, 0, 2, cv2.BORDER_REFLECT))  # 62x74: +2 <= 3 - 1, 4 - 1
    _check(val=val)
    cv2.imwrite(gt_path, cv2.copyMakeBorder(gt, 0, 3, 0, 3, cv2.BORDER_REFLECT))  # 63x75: +3 > 3 - 1
    with pytest.raises(CheckError, match=r'(?s)datasets:val:dataroots_lq\[0\]: GT/LQ sizes do not match scale 3.*'
                       r'baby\.png is 63x75 but .*baby\.png is 20x24: for scale 3 GT must be 60x72 \(up to 2 more'):
        _check(val=val)


def test_mrnet_train_stops_before_creating_the_experiment(root):
    """Through ``mrnet train`` (parse, then checks): a damaged LR LMDB of one scale stops the run by name, before
    ``experiments/`` exists."""
    opt = load_yaml(osp.join(REPO, 'options', 'train_MRNet_multiscale.yml'))
    opt['datasets']['train'].update(lq_size=8, num_worker_per_gpu=0, batch_size_per_gpu=2)
    opt['network_g'].update(num_feat=8, num_block=1, num_recursions=[2, 2, 2])
    opt['num_gpu'] = 0
    os.remove(osp.join(root, 'datasets', 'DIV2K', 'DIV2K_train_LR_bicubic_X3_sub.lmdb', 'meta_info.txt'))
    yml = save_yaml(opt, root / 'ms.yml')
    with pytest.raises(AssertionError, match=r'(?s)datasets:train:dataroots_lq\[1\]: .*X3_sub\.lmdb/meta_info\.txt '
                       r'not found'):
        run_mrnet(['train', '-opt', yml], root, timeout=300)
    assert not (root / 'experiments').exists()
