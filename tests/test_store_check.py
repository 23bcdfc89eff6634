"""Damaged stores: LMDB pages overwritten, LMDB values that do not decode, images cut short, ``meta_info.txt``
lines without a size. ``mrnet prepare verify`` lists every bad key or file; the option checks and the loaders name
the store and the key.

The LMDBs are prepared from real photos (``tests/_tiny.py``) by ``mrnet prepare``'s builder, then damaged on disk.
"""
import os
import shutil
import struct
import subprocess
import sys
from os import path as osp

import lmdb
import pytest

import _tiny
from mrnet_arch import compat
from mrnet_arch.commands import prepare
from mrnet_arch.dataprep import lmdb_store, store_check
from mrnet_arch.preflight import checks
from mrnet_arch.preflight.checks import CheckError

PAGE = 4096


@pytest.fixture(scope='module')
def stores(tmp_path_factory):
    """A clean LR/GT pair of LMDBs (6 photos, x2) and their image folders."""
    root = tmp_path_factory.mktemp('stores')
    lq, gt = _tiny.make_pairs(str(root / 'data'), n=6, size=64)
    for folder in (lq, gt):
        assert lmdb_store.build_lmdb(folder, folder + '.lmdb')
    return root, lq, gt


def _copy(stores, tmp_path, name='GT'):
    root = stores[0]
    target = str(tmp_path / f'{name}.lmdb')
    shutil.copytree(str(root / 'data' / f'{name}.lmdb'), target)
    return target


def _root_page(data_mdb):
    """The page number of the main B-tree's root, from the newer of LMDB's two meta pages."""
    with open(data_mdb, 'rb') as f:
        pages = [f.read(PAGE), f.read(PAGE)]
    metas = []
    for page in pages:  # page header 16 bytes; meta: magic, version, address, mapsize, free db (48), main db (48)
        root = struct.unpack_from('<Q', page, 16 + 24 + 48 + 40)[0]
        txnid = struct.unpack_from('<Q', page, 16 + 24 + 96 + 8)[0]
        metas.append((txnid, root))
    return max(metas)[1]


def _overwrite_root_page(lmdb_path):
    """Overwrite the flags of the root page of ``data.mdb``: LMDB reports MDB_CORRUPTED for every key."""
    data = osp.join(lmdb_path, 'data.mdb')
    page = _root_page(data)
    with open(data, 'r+b') as f:
        f.seek(page * PAGE + 8)
        f.write(b'\x13' * 6)


def _verify(*paths):
    return subprocess.run([sys.executable, '-m', 'mrnet_arch', 'prepare', 'verify', *map(str, paths)],
                          env=_tiny.env(os.getcwd()), capture_output=True, text=True, timeout=120)


def test_clean_stores_pass(stores):
    _, lq, gt = stores
    proc = _verify(lq + '.lmdb', gt + '.lmdb', gt)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [f'[prepare verify] {lq}.lmdb: 6 keys, all good',
                                        f'[prepare verify] {gt}.lmdb: 6 keys, all good',
                                        f'[prepare verify] {gt}: 6 files, all good']


def test_overwritten_pages_are_named_by_verify_and_by_mrnet_train(stores, tmp_path):
    _, lq, gt = stores
    damaged = _copy(stores, tmp_path)
    _overwrite_root_page(damaged)
    with pytest.raises(lmdb.CorruptedError):  # what basicsr and the checks met before: a traceback naming no store
        with lmdb.open(damaged, readonly=True, lock=False).begin() as txn:
            txn.get(b'0000')

    proc = _verify(damaged)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == f'[prepare verify] {damaged}: 6 bad of 6 keys:'
    assert [line.split(':')[0].strip() for line in lines[1:]] == [f'{i:04d}' for i in range(6)]
    assert all(f'{damaged}/data.mdb is damaged where this key is stored (CorruptedError' in line and 'MDB_CORRUPTED'
               in line for line in lines[1:])

    opt = _tiny.train_options('corrupt', (lq + '.lmdb', damaged), total_iter=2)
    opt['datasets']['train']['io_backend'] = {'type': 'lmdb'}
    root = tmp_path / 'root'
    root.mkdir()
    run = _tiny.run_train(_tiny.write_yml(opt, str(tmp_path / 'corrupt.yml')), str(root))
    assert run.returncode == 2  # bad input: the option checks name the store
    assert 'Traceback' not in run.stderr
    last = run.stderr.strip().splitlines()
    assert any(f'datasets:train:dataroot_gt: {damaged}/data.mdb is damaged (rebuild it or copy it again; '
               f'`mrnet prepare verify {damaged}` lists every bad key)' in line for line in last), run.stderr[-2000:]
    assert '0000 (mdb_cursor_get: MDB_CORRUPTED' in run.stderr
    assert not (root / 'experiments').exists()


def test_undecodable_value_is_named_by_verify_and_by_the_loader(stores, tmp_path):
    _, lq, _ = stores
    damaged = _copy(stores, tmp_path)
    env = lmdb.open(damaged)
    with env.begin(write=True) as txn:
        txn.put(b'0002', b'not an image at all')
        txn.put(b'0004', b'')
    env.close()
    proc = _verify(damaged)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[1:] == [
        "  0002: its value (19 bytes, starting b'not an i') does not decode as an image",
        '  0004: its value is empty']

    from basicsr.data.paired_image_dataset import PairedImageDataset
    opt = {'name': 't', 'type': 'PairedImageDataset', 'dataroot_lq': lq + '.lmdb', 'dataroot_gt': damaged,
           'io_backend': {'type': 'lmdb'}, 'phase': 'val', 'scale': 2}
    dataset = PairedImageDataset(opt)
    index = [p['gt_path'] for p in dataset.paths].index('0002')
    with compat.pipeline_fixes():
        with pytest.raises(RuntimeError) as info:
            dataset[index]
    assert f'could not load lq=key 0002 of {lq}.lmdb, gt=key 0002 of {damaged}' in str(info.value)
    assert 'mrnet prepare verify' in str(info.value)


def test_meta_info_lines_without_a_size_or_a_value(stores, tmp_path):
    _, lq, _ = stores
    damaged = _copy(stores, tmp_path)
    with open(osp.join(damaged, 'meta_info.txt'), 'a', encoding='utf-8') as f:
        f.write('0007.bmp\n0008.bmp (64,64,3) 0\n')
    proc = _verify(damaged)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[1:] == [
        f"  0007: {damaged}/meta_info.txt line 7 '0007.bmp' has no size behind the key (expected \"<key>.png "
        '(h,w,c) <level>")',
        '  0008: listed in meta_info.txt but not in data.mdb']

    opt = _tiny.train_options('meta', (lq + '.lmdb', damaged), total_iter=2)
    opt['datasets']['train']['io_backend'] = {'type': 'lmdb'}
    with pytest.raises(CheckError) as info:
        checks.check_options(_tiny.parse(_tiny.write_yml(opt, str(tmp_path / 'meta.yml')), str(tmp_path)))
    assert f'{damaged}/meta_info.txt has lines basicsr cannot use' in str(info.value)
    assert "line 7: '0007.bmp' (key 0007: no size behind it" in str(info.value)


def test_image_folder_with_a_cut_short_and_a_damaged_image(stores, tmp_path):
    folder = tmp_path / 'GT'
    shutil.copytree(stores[2], folder)
    cut = folder / '0001.png'
    data = cut.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    damaged = folder / '0003.png'
    data = bytearray(damaged.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b'\x00' * 64  # inside the pixel data: the header and end marker are intact
    damaged.write_bytes(bytes(data))
    (folder / 'notes.txt').write_text('x')

    report = store_check.verify(str(folder))
    assert report.checked == 7
    assert [p.split(':')[0] for p in report.problems] == ['0001.png', '0003.png', 'notes.txt']
    assert 'cut short (no end-of-image marker' in report.problems[0]
    assert 'not a readable image file' in report.problems[1]
    assert 'not an image' in report.problems[2]

    assert prepare.main(['verify', str(folder), stores[1]]) == 1  # one bad store of two: status 1
    assert prepare.main(['verify', stores[1]]) == 0
    assert prepare.main(['verify', str(tmp_path / 'nothing')]) == 1
