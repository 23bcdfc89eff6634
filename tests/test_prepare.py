"""``mrnet prepare div2k`` and ``mrnet prepare benchmark`` on small real photos."""
import math
import os
from os import path as osp

import cv2
import lmdb
import numpy as np
import pytest

from _photos import write_photos
from basicsr.metrics import calculate_psnr
from basicsr.utils import imfrombytes
from basicsr.utils.matlab_functions import imresize
from mrnet_arch.cli import main as mrnet
from mrnet_arch.dataprep import prepare


def main(argv):
    """``mrnet prepare``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['prepare', *argv])


SCALES = (2, 3, 4)
# 108x120 after cropping to a multiple of 12; the coffee crop keeps 98 rows -> 96 rows
PHOTOS = {'0001.png': ('astronaut', 108, 120), '0002.png': ('coffee', 98, 96), '0003.png': ('camera', 96, 100)}


def matlab_lr(hr, s):
    """MATLAB bicubic of ``hr`` cropped to a multiple of ``s``, rounded: computed here from basicsr directly."""
    h, w = hr.shape[:2]
    out = imresize(hr[:h - h % s, :w - w % s].astype(np.float32) / 255., 1 / s)
    return np.clip(np.round(out * 255.), 0, 255).astype(np.uint8)


def read_lmdb(path):
    env = lmdb.open(path, readonly=True, lock=False)
    with env.begin() as txn:
        out = {k.decode(): cv2.imdecode(np.frombuffer(v, np.uint8), cv2.IMREAD_UNCHANGED) for k, v in txn.cursor()}
    env.close()
    return out


def starts(length, crop, step):
    """Expected tile offsets (extract_subimages with thresh_size 0) on a length cropped to a multiple of 12."""
    length -= length % 12
    out = list(range(0, length - crop + 1, step))
    return out + [length - crop] if length - (out[-1] + crop) > 0 else out


@pytest.fixture(scope='module')
def div2k(tmp_path_factory):
    root = tmp_path_factory.mktemp('div2k')
    hr = write_photos(str(root / 'DIV2K_train_HR'), PHOTOS)
    out = root / 'out'
    assert main(['div2k', '--hr', hr, '--output', str(out), '--scales', '2', '3', '4', '--crop-size', '48',
                 '--step', '36', '--workers', '1', '--lmdb-codec', 'png']) == 0
    return root, hr, out


def test_div2k_layout_keys_and_bicubic(div2k):
    root, hr_dir, out = div2k
    hr_lmdb = read_lmdb(str(out / 'DIV2K_train_HR_sub.lmdb'))
    expected_keys = set()
    for name in PHOTOS:
        h, w = cv2.imread(osp.join(hr_dir, name), cv2.IMREAD_UNCHANGED).shape[:2]
        n = len(starts(h, 48, 36)) * len(starts(w, 48, 36))
        expected_keys |= {f'{name[:4]}_s{i:03d}' for i in range(1, n + 1)}
    assert set(hr_lmdb) == expected_keys
    meta = open(out / 'DIV2K_train_HR_sub.lmdb' / 'meta_info.txt').read().split('\n')
    assert sorted(line.split(' ')[0] for line in meta if line) == sorted(f'{k}.png' for k in expected_keys)
    for s in SCALES:
        lr_lmdb = read_lmdb(str(out / f'DIV2K_train_LR_bicubic_X{s}_sub.lmdb'))
        assert set(lr_lmdb) == set(hr_lmdb)  # identical keys
        for name in PHOTOS:
            hr = cv2.imread(osp.join(hr_dir, name), cv2.IMREAD_UNCHANGED)
            lr = matlab_lr(hr, s)
            tops, lefts = starts(hr.shape[0], 48, 36), starts(hr.shape[1], 48, 36)
            for i, (t, l) in enumerate([(t, l) for t in tops for l in lefts], 1):  # noqa: E741
                key = f'{name[:4]}_s{i:03d}'
                np.testing.assert_array_equal(hr_lmdb[key], hr[t:t + 48, l:l + 48])
                np.testing.assert_array_equal(lr_lmdb[key], lr[t // s:t // s + 48 // s, l // s:l // s + 48 // s])
                tile = cv2.imread(str(out / 'DIV2K_train_LR_bicubic' / f'X{s}_sub' / f'{key}.png'),
                                  cv2.IMREAD_UNCHANGED)
                np.testing.assert_array_equal(tile, lr_lmdb[key])


def test_div2k_rerun_skips_finished_work(div2k, capsys):
    root, hr_dir, out = div2k
    lmdb_file = out / 'DIV2K_train_HR_sub.lmdb' / 'data.mdb'
    tile = out / 'DIV2K_train_HR_sub' / '0001_s001.png'
    before = (os.stat(lmdb_file).st_mtime_ns, os.stat(tile).st_mtime_ns)
    capsys.readouterr()
    assert main(['div2k', '--hr', hr_dir, '--output', str(out), '--crop-size', '48', '--step', '36',
                 '--workers', '1', '--lmdb-codec', 'png']) == 0
    text = capsys.readouterr().out
    assert '3 of 3 images already cut' in text
    assert text.count('is up to date') == 4
    assert (os.stat(lmdb_file).st_mtime_ns, os.stat(tile).st_mtime_ns) == before
    # other settings into the same output are refused, naming them
    capsys.readouterr()
    assert main(['div2k', '--hr', hr_dir, '--output', str(out), '--crop-size', '24', '--step', '36']) == 2
    assert 'crop_size' in capsys.readouterr().err


def test_div2k_official_lr_and_workers(tmp_path, monkeypatch):
    from mrnet_arch.dataprep import lmdb_store
    monkeypatch.setattr(prepare, 'MIN_TASKS_PER_WORKER', 1)  # two worker processes even for two images
    monkeypatch.setattr(lmdb_store, 'MIN_IMAGES_PER_WORKER', 1)
    hr = write_photos(str(tmp_path / 'HR'), {'0001.png': ('astronaut', 96, 120), '0002.png': ('chelsea', 96, 96)})
    official = {}
    for s in (2, 4):
        folder = tmp_path / 'DIV2K' / 'DIV2K_train_LR_bicubic' / f'X{s}'
        folder.mkdir(parents=True)
        for name in ('0001', '0002'):
            img = cv2.imread(osp.join(hr, f'{name}.png'))
            lr = 255 - matlab_lr(img, s)  # unlike a generated LR: proves the files are used
            cv2.imwrite(str(folder / f'{name}x{s}.png'), lr)
            official[name, s] = lr
    out = tmp_path / 'out'
    assert main(['div2k', '--hr', hr, '--lr-root', str(tmp_path / 'DIV2K'), '--output', str(out), '--scales', '2',
                 '4', '--crop-size', '48', '--step', '48', '--workers', '2']) == 0
    for s in (2, 4):
        lr_lmdb = read_lmdb(str(out / f'DIV2K_train_LR_bicubic_X{s}_sub.lmdb'))
        assert set(lr_lmdb) == set(read_lmdb(str(out / 'DIV2K_train_HR_sub.lmdb')))
        c = 48 // s
        np.testing.assert_array_equal(lr_lmdb['0001_s002'], official['0001', s][0:c, c:2 * c])


def test_official_lr_of_wrong_size_is_named(tmp_path, capsys):
    hr = write_photos(str(tmp_path / 'HR'), {'0001.png': ('astronaut', 96, 96)})
    folder = tmp_path / 'X2'
    folder.mkdir()
    cv2.imwrite(str(folder / '0001x2.png'), np.zeros((40, 48, 3), np.uint8))
    assert main(['div2k', '--hr', hr, '--lr-root', str(tmp_path), '--output', str(tmp_path / 'out'), '--scales',
                 '2', '--crop-size', '48', '--step', '48', '--workers', '1']) == 2
    err = capsys.readouterr().err
    assert '0001x2.png' in err and 'expected 48x48' in err


@pytest.mark.parametrize('dataset', ['div2k', 'benchmark'])
def test_unreadable_file_is_named(tmp_path, capsys, dataset):
    hr = write_photos(str(tmp_path / 'HR'), {'0001.png': ('astronaut', 96, 96)})
    with open(osp.join(hr, '0002.png'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n this is not an image')
    args = ['--hr', hr] if dataset == 'div2k' else ['--input', hr]
    assert main([dataset] + args + ['--output', str(tmp_path / 'out'), '--workers', '1']) == 2
    assert osp.join(hr, '0002.png') in capsys.readouterr().err
    with pytest.raises(prepare.PrepareError, match='0002.png'):
        prepare.read_image(osp.join(hr, '0002.png'))


def test_build_lmdb_is_atomic_and_skips(tmp_path):
    folder = write_photos(str(tmp_path / 'imgs'), {'a.png': ('astronaut', 24, 24), 'b.png': ('coffee', 24, 24)})
    target = str(tmp_path / 'x.lmdb')
    os.makedirs(tmp_path / '.x.tmp.lmdb')  # left by a killed run: never used as the result
    assert prepare.build_lmdb(folder, target) is True
    assert not osp.exists(tmp_path / '.x.tmp.lmdb')
    assert set(read_lmdb(target)) == {'a', 'b'}
    assert prepare.build_lmdb(folder, target) is False  # up to date: skipped
    write_photos(folder, {'c.png': ('chelsea', 24, 24)})
    assert prepare.build_lmdb(folder, target) is True  # the folder changed: rebuilt
    assert set(read_lmdb(target)) == {'a', 'b', 'c'}
    os.remove(osp.join(target, prepare.LMDB_DONE))  # an LMDB without the marker is not trusted
    with pytest.raises(prepare.PrepareError, match='x.lmdb exists but was not completed'):
        prepare.build_lmdb(folder, target)


def test_benchmark_layout_bicubic_and_gray(tmp_path):
    src = write_photos(str(tmp_path / 'Set5_HR'), {'baby.png': ('astronaut', 101, 110), 'gray.png': ('camera', 64, 75)})
    out = tmp_path / 'Set5'
    assert main(['benchmark', '--input', src, '--output', str(out), '--scales', '2', '3', '4', '--workers', '1']) == 0
    assert sorted(os.listdir(out)) == ['GTmod12', 'LRbicx2', 'LRbicx3', 'LRbicx4']
    for name in ('baby', 'gray'):
        hr = cv2.imread(osp.join(src, f'{name}.png'), cv2.IMREAD_UNCHANGED)
        gt = cv2.imread(str(out / 'GTmod12' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        h, w = hr.shape[:2]
        np.testing.assert_array_equal(gt, hr[:h - h % 12, :w - w % 12])
        assert gt.ndim == hr.ndim  # grayscale stays one channel
        for s in SCALES:
            lr = cv2.imread(str(out / f'LRbicx{s}' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(lr, matlab_lr(gt, s))
    # re-running skips complete images
    before = os.stat(out / 'LRbicx3' / 'baby.png').st_mtime_ns
    assert main(['benchmark', '--input', src, '--output', str(out), '--workers', '1']) == 0
    assert os.stat(out / 'LRbicx3' / 'baby.png').st_mtime_ns == before


def test_gray_y_psnr_follows_published_convention(tmp_path):
    """BasicSR decodes a one-channel GT as three equal channels, so its Y-PSNR is that of the gray image
    replicated to RGB (Y = 16 + 219/255 * gray, as EDSR/MATLAB evaluation), not PSNR on the gray values."""
    src = write_photos(str(tmp_path / 'src'), {'gray.png': ('camera', 48, 48)})
    prepare.prepare_benchmark(src, str(tmp_path / 'out'), [2])
    with open(tmp_path / 'out' / 'GTmod12' / 'gray.png', 'rb') as f:
        gt = (imfrombytes(f.read(), float32=True) * 255).round().astype(np.uint8)  # as PairedImageDataset reads
    assert gt.shape == (48, 48, 3) and (gt[..., 0] == gt[..., 2]).all()
    sr = np.clip(gt.astype(int) + np.random.default_rng(0).integers(-6, 7, gt.shape[:2])[..., None], 0, 255)
    sr = sr.astype(np.uint8)
    mse_gray = np.mean((sr[..., 0].astype(float) - gt[..., 0]) ** 2)
    published = 10 * math.log10(255**2 / (mse_gray * (219 / 255)**2))
    assert calculate_psnr(sr, gt, crop_border=0, test_y_channel=True) == pytest.approx(published, abs=0.02)
    assert calculate_psnr(sr, gt, crop_border=0, test_y_channel=True) - 10 * math.log10(255**2 / mse_gray) > 1.3


def test_relative_paths_are_the_working_directorys_and_defaults_the_project_roots(tmp_path, monkeypatch):
    """``--input in --output out`` read and write under the working directory, as in any shell tool; an
    ``--output`` left out is the default under the project root, where the option files read."""
    root, elsewhere = tmp_path / 'project', tmp_path / 'elsewhere'
    write_photos(str(elsewhere / 'in'), {'a.png': ('astronaut', 48, 48)})
    monkeypatch.setenv('MRNET_ROOT', str(root))
    monkeypatch.chdir(elsewhere)
    assert main(['benchmark', '--input', 'in', '--output', 'out', '--scales', '2', '--workers', '1']) == 0
    assert sorted(os.listdir(elsewhere / 'out')) == ['GTmod12', 'LRbicx2']
    assert not root.exists()
    assert main(['div2k', '--hr', 'in', '--scales', '2', '--workers', '1', '--crop-size', '24', '--step', '24']) == 0
    assert osp.isfile(root / 'datasets' / 'DIV2K' / 'DIV2K_train_HR_sub.lmdb' / 'data.mdb')
    assert sorted(os.listdir(elsewhere)) == ['in', 'out']


def test_an_input_folder_the_command_would_write_is_refused(tmp_path, capsys):
    """``--input datasets/Set5/GTmod12 --output datasets/Set5`` would replace the input images by their crops."""
    out = tmp_path / 'Set5'
    gt = write_photos(str(out / 'GTmod12'), {'a.png': ('astronaut', 50, 50)})
    before = (out / 'GTmod12' / 'a.png').read_bytes()
    assert main(['benchmark', '--input', gt, '--output', str(out), '--scales', '2', '--workers', '1']) == 2
    assert f'--input {gt} is a folder this command writes' in capsys.readouterr().err
    assert (out / 'GTmod12' / 'a.png').read_bytes() == before and sorted(os.listdir(out)) == ['GTmod12']
    with pytest.raises(prepare.PrepareError, match='--hr .* is a folder this command writes'):
        prepare.prepare_div2k(str(tmp_path / 'D' / 'DIV2K_train_HR_sub'), str(tmp_path / 'D'), scales=[2])


def test_div2k_refuses_names_differing_only_in_extension(tmp_path):
    hr = write_photos(str(tmp_path / 'HR'), {'a.png': ('astronaut', 48, 48), 'a.jpg': ('coffee', 48, 48)})
    with pytest.raises(prepare.PrepareError, match=r"share the name\(s\) \['a'\]"):
        prepare.prepare_div2k(hr, str(tmp_path / 'out'), scales=[2], crop_size=24, step=24)


def test_damaged_state_file_is_named(tmp_path):
    hr = write_photos(str(tmp_path / 'HR'), {'a.png': ('astronaut', 48, 48)})
    out = tmp_path / 'out'
    prepare.prepare_div2k(hr, str(out), scales=[2], crop_size=24, step=24)
    cfg = out / prepare.STATE_DIR / 'div2k_config.json'
    cfg.write_text('{"hr": ')  # cut short by a kill
    with pytest.raises(prepare.PrepareError, match='div2k_config.json is damaged'):
        prepare.prepare_div2k(hr, str(out), scales=[2], crop_size=24, step=24)


def test_dotted_names_give_keys_basicsr_can_read(tmp_path):
    """A '.' in an image name (``wallpapers-16.04__sea``) becomes '_' in its sub-images and LMDB keys, and
    BasicSR's PairedImageDataset reads every key of the LMDBs (it cuts meta_info names at the first '.')."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    hr = write_photos(str(tmp_path / 'HR'), {'wallpapers-16.04__sea.png': ('astronaut', 96, 96),
                                             'plain.png': ('coffee', 96, 96)})
    paths = prepare.prepare_div2k(hr, str(tmp_path / 'out'), scales=[2], crop_size=48, step=48)
    keys = sorted(read_lmdb(paths['hr'][1]))
    assert keys == [f'{stem}_s{i:03d}' for stem in ('plain', 'wallpapers-16_04__sea') for i in range(1, 5)]
    dataset = PairedImageDataset({
        'name': 'dotted', 'phase': 'train', 'scale': 2, 'dataroot_gt': paths['hr'][1], 'dataroot_lq': paths[2][1],
        'io_backend': {'type': 'lmdb'}, 'filename_tmpl': '{}', 'gt_size': 48, 'use_hflip': False, 'use_rot': False})
    assert sorted(p['gt_path'] for p in dataset.paths) == keys
    for i in range(len(dataset)):
        assert dataset[i]['gt'].shape == (3, 48, 48) and dataset[i]['lq'].shape == (3, 24, 24)


def test_names_that_clash_once_dots_become_underscores_are_refused(tmp_path):
    hr = write_photos(str(tmp_path / 'HR'), {'a.b.png': ('astronaut', 48, 48), 'a_b.png': ('coffee', 48, 48)})
    with pytest.raises(prepare.PrepareError, match=r"\[\['a.b.png', 'a_b.png'\]\] would give sub-images of the same"):
        prepare.prepare_div2k(hr, str(tmp_path / 'out'), scales=[2], crop_size=24, step=24)


def test_build_lmdb_refuses_dotted_keys(tmp_path):
    write_photos(str(tmp_path / 'tiles'), {'x.v2.png': ('astronaut', 24, 24)})
    with pytest.raises(prepare.PrepareError, match=r"\['x.v2.png'\] hold a '.' before the extension"):
        prepare.build_lmdb(str(tmp_path / 'tiles'), str(tmp_path / 'tiles.lmdb'))


def test_default_lmdb_codec_is_bmp_that_basicsr_reads_as_the_png_lmdb(div2k):
    """The default LMDB values are BMP, ``meta_info.txt`` keeps BasicSR's format (``key.ext (h,w,c) level``), and
    BasicSR's own PairedImageDataset gives the same samples from it as from the PNG level-1 LMDBs."""
    import random

    import torch

    from basicsr.data.paired_image_dataset import PairedImageDataset
    root, _, out = div2k
    lmdbs = {}
    for kind, folder in (('gt', out / 'DIV2K_train_HR_sub'), ('lq', out / 'DIV2K_train_LR_bicubic' / 'X2_sub')):
        target = str(root / f'bmp_{kind}.lmdb')
        assert prepare.build_lmdb(str(folder), target) is True
        lmdbs[kind] = target
        env = lmdb.open(target, readonly=True, lock=False)
        with env.begin() as txn:
            assert all(bytes(v[:2]) == b'BM' for _, v in txn.cursor())
        env.close()
        png = read_lmdb(str(folder) + '.lmdb' if kind == 'gt' else str(out / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'))
        bmp = read_lmdb(target)
        assert set(bmp) == set(png) and all(np.array_equal(bmp[k], png[k]) for k in png)
        for line in open(osp.join(target, 'meta_info.txt')).read().splitlines():
            key, shape, level = line.split(' ')
            assert key.endswith('.bmp') and level == '0'
            img = bmp[key[:-4]]
            assert shape == '({},{},{})'.format(*img.shape[:2], img.shape[2] if img.ndim == 3 else 1)

    def samples(gt, lq):
        dataset = PairedImageDataset({'name': 'x', 'phase': 'train', 'scale': 2, 'dataroot_gt': gt, 'dataroot_lq': lq,
                                      'io_backend': {'type': 'lmdb'}, 'gt_size': 24, 'use_hflip': True,
                                      'use_rot': True})
        random.seed(3)
        return [dataset[i] for i in range(len(dataset))]

    new = samples(lmdbs['gt'], lmdbs['lq'])
    old = samples(str(out / 'DIV2K_train_HR_sub.lmdb'), str(out / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'))
    assert len(new) == len(old) > 10
    assert all(torch.equal(a['gt'], b['gt']) and torch.equal(a['lq'], b['lq']) for a, b in zip(new, old))


def test_lmdb_codec_change_rebuilds_and_bad_codec_is_refused_first(tmp_path, capsys, monkeypatch):
    """Another codec rebuilds the LMDB; an unknown one stops ``mrnet prepare`` before anything is written; a write
    split over many transactions and a map grown on the way give every image."""
    import lmdb as lmdb_module

    from mrnet_arch.dataprep import lmdb_store
    folder = write_photos(str(tmp_path / 'imgs'), {f'{i}.png': (name, 40, 44) for i, name in
                                                   enumerate(['astronaut', 'coffee', 'chelsea', 'camera'])})
    target = str(tmp_path / 'x.lmdb')
    assert prepare.build_lmdb(folder, target, codec='png') is True
    assert prepare.build_lmdb(folder, target, codec='png') is False
    assert open(osp.join(target, 'meta_info.txt')).readline().endswith(' (40,44,3) 1\n')
    monkeypatch.setattr(lmdb_store, 'BATCH_BYTES', 1)  # one transaction per image
    real_open = lmdb_module.open
    monkeypatch.setattr(lmdb_store.lmdb, 'open', lambda path, map_size: real_open(path, map_size=16 << 10))
    assert prepare.build_lmdb(folder, target, codec='png0') is True
    monkeypatch.undo()
    values = read_lmdb(target)
    assert sorted(values) == ['0', '1', '2', '3'] and values['3'].shape == (40, 44)  # camera: gray
    for i, name in enumerate(['astronaut', 'coffee', 'chelsea', 'camera']):
        np.testing.assert_array_equal(values[str(i)], cv2.imread(osp.join(folder, f'{i}.png'), cv2.IMREAD_UNCHANGED))
    with pytest.raises(SystemExit):
        main(['div2k', '--hr', folder, '--output', str(tmp_path / 'out'), '--lmdb-codec', 'jpeg'])
    assert "--lmdb-codec: invalid choice: 'jpeg'" in capsys.readouterr().err
    with pytest.raises(prepare.PrepareError, match="--lmdb-codec 'jpeg': expected one of bmp, png, png0"):
        prepare.prepare_div2k(folder, str(tmp_path / 'out'), scales=[2], crop_size=24, step=24, lmdb_codec='jpeg')
    assert not osp.exists(tmp_path / 'out')
