"""``mrnet prepare photos --source debian`` (``mrnet_arch.dataprep.photo_sets``, ``dataprep.debian_photos``): real
photos from a Debian package -> LMDBs + held-out set; the command's own checks.

The end-to-end test fetches ONE small package (scribus-template, 1.8 MB, 7 photos) with ``apt-get download``.
It is skipped, with the reason, only when apt-get is missing or the download is refused (no network, no
package lists); anything after the download failing is a failure.
"""
import hashlib
import json
import os
import shutil
import struct
from os import path as osp

import cv2
import lmdb
import pytest

from mrnet_arch.cli import main as mrnet
from mrnet_arch.dataprep import debian_photos as mpd
from mrnet_arch.dataprep import photo_sets
from mrnet_arch.dataprep.photo_sets import build as build_set


def main(argv):
    """``mrnet prepare``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['prepare', *argv])


PACKAGE = 'scribus-template'
MANIFEST = mpd.DEFAULT_MANIFEST  # shipped in mrnet_arch/photo_data/
# The package's photos in the manifest
ROWS = [r['file'][len(PACKAGE) + 2:] for r in mpd.read_manifest(MANIFEST) if r['package'] == PACKAGE]


def _sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _lmdb_keys(path):
    env = lmdb.open(path, readonly=True, lock=False, readahead=False)
    try:
        with env.begin() as txn:
            return [k.decode() for k, _ in txn.cursor()]
    finally:
        env.close()


def test_shipped_manifest_and_holdout_list():
    rows = mpd.read_manifest(MANIFEST)
    assert len(rows) == 92 and all(r['licence'].strip() for r in rows)
    debian_holdout, skimage_holdout = mpd.read_holdout()
    assert len(debian_holdout) + len(skimage_holdout) >= 8
    assert set(debian_holdout) <= {r['file'] for r in rows}  # every named photo is in the manifest
    assert tuple(r['file'] for r in rows if r['split'] == 'holdout') == tuple(sorted(debian_holdout))
    assert set(skimage_holdout) == {'coffee', 'chelsea'}
    every = {r['package'] for r in rows}
    chosen = mpd.select_packages(rows)
    assert set(mpd.DEFAULT_SKIP) & set(chosen) == set() and set(chosen) | set(mpd.DEFAULT_SKIP) == every
    for row in rows:  # every package with photos used by default has a known path inside it
        if row['package'] in chosen:
            assert row['package'] in mpd.PACKAGE_PATHS


def test_eet_entry_reads_the_photo_bytes():
    jpeg, other = b'\xff\xd8\xff\xe0fake jpeg\xff\xd9', b'not this one'
    names = [b'edje/file\0', b'edje/images/0\0']
    header_len = 12 + 24 * 2
    name_offs = [header_len, header_len + len(names[0])]
    data_offs = [name_offs[1] + len(names[1])]
    data_offs.append(data_offs[0] + len(other))
    blob = struct.pack('>III', mpd.EET_MAGIC, 2, 0)
    blob += struct.pack('>6I', data_offs[0], len(other), 0, name_offs[0], len(names[0]), 0)
    blob += struct.pack('>6I', data_offs[1], len(jpeg), 0, name_offs[1], len(names[1]), 0)
    blob += names[0] + names[1] + other + jpeg
    assert mpd.eet_entry(blob, 'edje/images/0') == jpeg
    with pytest.raises(KeyError):
        mpd.eet_entry(blob, 'edje/images/1')
    with pytest.raises(ValueError):
        mpd.eet_entry(b'\0' * 64, 'edje/images/0')


def test_debian_source_one_package(tmp_path, monkeypatch):
    cache, out = tmp_path / 'cache', tmp_path / 'photos'
    try:  # the only step that may legitimately fail here: the download
        deb = mpd.fetch_deb(PACKAGE, str(cache / 'debs'), {})
    except mpd.FetchError as err:
        pytest.skip(f'apt-get download {PACKAGE} refused or unreachable here: {str(err).splitlines()[0]}')
    assert osp.isfile(deb)
    max_side = 512  # below the photos' 800-1024 px: exercises the MATLAB-bicubic downscale
    result = build_set(str(out), scale=2, workers=1, source='debian', manifest=MANIFEST, cache=str(cache),
                       packages=[PACKAGE], max_side=max_side)

    # paths.json, as the skimage source writes it
    with open(out / 'paths.json', encoding='utf-8') as f:
        paths = json.load(f)
    assert paths == json.loads(json.dumps(result))
    assert paths['source'] == 'debian' and paths['scale'] == 2

    # provenance: every photo, with package, version, path, licence, hashes that match the files, split
    with open(out / 'provenance.json', encoding='utf-8') as f:
        prov = json.load(f)
    photos = {p['file']: p for p in prov['photos']}
    assert sorted(photos) == sorted(f'{PACKAGE}__{f}' for f in ROWS) and len(ROWS) == 7
    md = (out / 'PROVENANCE.md').read_text(encoding='utf-8')
    for name, p in photos.items():
        assert p['package'] == PACKAGE and p['version'] and p['licence']
        assert p['path'].startswith('/usr/share/scribus/templates/') and p['path'].endswith('.jpg')
        assert p['sha256_original'] == _sha256(cache / 'originals' / name)
        assert p['sha256_hr'] == _sha256(out / p['hr'])
        assert p['hr'] == f"{p['split']}_HR/{osp.splitext(name)[0]}.webp"
        hr = cv2.imread(str(out / p['hr']), cv2.IMREAD_UNCHANGED)
        assert hr.ndim == 3 and hr.shape[2] == 3 and hr.dtype.name == 'uint8'
        assert (hr == mpd.to_hr(str(cache / 'originals' / name), max_side)[0]).all()  # lossless WebP
        assert max(hr.shape[:2]) == max_side and [hr.shape[1], hr.shape[0]] == p['hr_size']
        assert name in md and p['sha256_hr'] in md

    # split by photo: disjoint, complete, the same as in paths.json, both sides non-empty
    train = {n for n, p in photos.items() if p['split'] == 'train'}
    holdout = {n for n, p in photos.items() if p['split'] == 'holdout'}
    assert train and holdout and not train & holdout and train | holdout == set(photos)
    assert set(paths['train_photos']) == train and set(paths['holdout_photos']) == holdout
    assert holdout == {n for n in mpd.read_holdout()[0] if n.startswith(PACKAGE)}

    # LMDBs: tiles of the training photos only, GT and LR keys equal; held-out set in Set5 layout
    stem = lambda n: osp.splitext(n)[0]  # noqa: E731
    gt_keys, lq_keys = _lmdb_keys(paths['train_gt']), _lmdb_keys(paths['train_lq'])
    assert gt_keys and gt_keys == lq_keys and len(gt_keys) == paths['tiles']
    assert {k.rsplit('_s', 1)[0] for k in gt_keys} == {stem(n) for n in train}
    for lmdb_path in (paths['train_gt'], paths['train_lq']):
        assert osp.isfile(osp.join(lmdb_path, 'meta_info.txt')) and osp.isfile(osp.join(lmdb_path, 'data.mdb'))
    gt_dir, lr_dir = osp.join(paths['holdout'], 'GTmod12'), osp.join(paths['holdout'], 'LRbicx2')
    assert sorted(os.listdir(gt_dir)) == sorted(os.listdir(lr_dir)) == sorted(stem(n) + '.png' for n in holdout)
    for name in os.listdir(gt_dir):
        gt, lr = cv2.imread(osp.join(gt_dir, name)), cv2.imread(osp.join(lr_dir, name))
        assert gt.shape[0] % 12 == 0 and gt.shape[1] % 12 == 0
        assert lr.shape[:2] == (gt.shape[0] // 2, gt.shape[1] // 2)

    # a second run is served from the cache (no apt-get) and gives the same files
    os.remove(deb)
    again = build_set(str(out), scale=2, workers=1, source='debian', manifest=MANIFEST, cache=str(cache),
                      packages=[PACKAGE], max_side=max_side)
    assert again == result
    with open(out / 'provenance.json', encoding='utf-8') as f:
        assert json.load(f) == prov

    # offline rebuild: the HR photos and provenance alone (--hr-only), copied elsewhere, without the package
    # cache, give the same tiles
    pack = tmp_path / 'pack'
    hr_only = build_set(str(pack), scale=2, workers=1, source='debian', manifest=MANIFEST,
                        cache=str(cache), packages=[PACKAGE], max_side=max_side, hr_only=True)
    assert hr_only['train_gt'] is None and sorted(os.listdir(pack)) == sorted(
        ['PROVENANCE.md', 'holdout_HR', 'provenance.json', 'train_HR'])
    shutil.rmtree(cache)
    copy = tmp_path / 'copy'
    shutil.copytree(pack, copy)
    offline = build_set(str(copy), scale=2, workers=1, source='debian', manifest=MANIFEST,
                        cache=str(cache), packages=[PACKAGE], max_side=max_side)
    assert not cache.exists()
    assert offline['tiles'] == result['tiles'] and offline['train_photos'] == result['train_photos']
    assert _lmdb_keys(offline['train_gt']) == gt_keys
    # a photo that does not match its recorded sha256 is not served offline: the packages are read again
    hr_file = copy / prov['photos'][0]['hr']
    hr_file.write_bytes(hr_file.read_bytes()[:-1])

    def no_network(rows, cache_dir):
        raise mpd.FetchError(f'fetch of {len(rows)} photos')
    monkeypatch.setattr(mpd, 'extract_originals', no_network)
    with pytest.raises(mpd.FetchError, match=f'fetch of {len(ROWS)} photos'):
        build_set(str(copy), scale=2, workers=1, source='debian', manifest=MANIFEST, cache=str(cache),
                  packages=[PACKAGE], max_side=max_side)


def test_photos_command_refuses_bad_options_before_writing(tmp_path, capsys):
    """``mrnet prepare photos``: a missing manifest, --hr-only without the debian source and an unknown package
    stop with a message naming the option, and nothing is written."""
    out = tmp_path / 'out'
    cases = [(['--source', 'debian', '--manifest', str(tmp_path / 'none.tsv')], '--manifest'),
             (['--hr-only'], '--hr-only is for --source debian'),
             (['--source', 'debian', '--manifest', MANIFEST, '--packages', 'no-such-package',
               '--cache', str(tmp_path / 'cache')], "--packages: not in the manifest: ['no-such-package']")]
    for args, message in cases:
        capsys.readouterr()
        assert main(['photos', '--output', str(out), '--workers', '1'] + args) == 2
        err = capsys.readouterr().err
        assert err.startswith('mrnet prepare: error: ') and message in err and 'Traceback' not in err
        assert not out.exists() and not (tmp_path / 'cache').exists()


def test_all_source_puts_debian_and_skimage_photos_together(tmp_path):
    cache, out = tmp_path / 'cache', tmp_path / 'photos'
    try:  # the only step that may legitimately fail here: the download
        mpd.fetch_deb(PACKAGE, str(cache / 'debs'), {})
    except mpd.FetchError as err:
        pytest.skip(f'apt-get download {PACKAGE} refused or unreachable here: {str(err).splitlines()[0]}')
    paths = build_set(str(out), scale=2, workers=1, source='all', manifest=MANIFEST, cache=str(cache),
                      packages=[PACKAGE], max_side=256, crop_size=96, step=96)
    debian_holdout, skimage_holdout = mpd.read_holdout()
    assert paths['source'] == 'all'
    assert set(paths['holdout_photos']) == {n for n in debian_holdout if n.startswith(PACKAGE)} | set(skimage_holdout)
    train = set(paths['train_photos'])
    assert set(photo_sets.TRAIN_PHOTOS) <= train and not train & set(paths['holdout_photos'])
    assert {f'{PACKAGE}__{f}' for f in ROWS} - set(debian_holdout) <= train
    # the training LMDB holds tiles of both sources' training photos and of no held-out photo
    stems = {k.rsplit('_s', 1)[0] for k in _lmdb_keys(paths['train_gt'])}
    assert stems == {osp.splitext(n)[0] for n in train}
    held_out = sorted(os.listdir(osp.join(paths['holdout'], 'GTmod12')))
    assert held_out == sorted(f'{osp.splitext(n)[0]}.png' for n in paths['holdout_photos'])
