"""``mrnet demo`` end to end in a temporary project root, shortened to a few iterations: the real-photo
dataset, BasicSR's train and test pipelines from the shipped demo weights, the comparison with bicubic, and
the figures and page it ends with (their scores are the demo's own)."""
import json
import os
import subprocess
import sys
from os import path as osp

import cv2
import lmdb

from _tiny import env
from mrnet_arch.commands import demo


def test_demo_short_run(tmp_path):
    root = str(tmp_path)
    out = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'demo', '--iters', '4'], cwd=root, env=env(root),
                         capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]

    # the dataset: training photos as sub-image LMDBs with equal keys, held-out photos in benchmark layout
    data = osp.join(root, 'datasets', 'demo')
    keys = []
    for name in ('DIV2K_train_HR_sub.lmdb', 'DIV2K_train_LR_bicubic_X2_sub.lmdb'):
        with lmdb.open(osp.join(data, 'train', name), readonly=True, lock=False) as env_:
            with env_.begin() as txn:
                keys.append(sorted(k.decode() for k, _ in txn.cursor()))
    assert keys[0] == keys[1] and len(keys[0]) > 100
    assert {k.rsplit('_s', 1)[0] for k in keys[0]} == {osp.splitext(p)[0] for p in demo.TRAIN_PHOTOS}
    assert sorted(os.listdir(osp.join(data, 'heldout', 'GTmod12'))) == sorted(demo.HELDOUT_PHOTOS)

    # training went through BasicSR's pipeline from the shipped weights, testing through the test pipeline
    assert f'Loading MRNet model from {demo.DEMO_WEIGHTS}' in log
    assert osp.isfile(osp.join(root, 'experiments', demo.NAME, 'models', 'net_g_latest.pth'))
    with open(osp.join(root, 'results', demo.NAME, 'demo_results.json'), encoding='utf-8') as f:
        results = json.load(f)['results']
    assert not osp.exists(osp.join(osp.dirname(demo.TRAIN_YML), 'experiments'))  # nothing beside the options
    for photo in demo.HELDOUT_PHOTOS:
        stem = osp.splitext(photo)[0]
        assert osp.isfile(results[stem]['sr_image'])
    mean = results['_mean']
    assert 'Y-channel PSNR' in out.stdout and 'beats bicubic' in out.stdout
    assert mean['mrnet']['psnr'] > mean['bicubic']['psnr']  # the shipped weights beat bicubic on held-out photos

    # the figures (one per held-out photo) and the page, printed, with the scores of demo_results.json
    shown = osp.join(root, 'results', demo.NAME, 'compare')
    stems = sorted(osp.splitext(p)[0] for p in demo.HELDOUT_PHOTOS)
    figures = [osp.join(shown, 'figures', f'{stem}.png') for stem in stems]
    for path in figures + [osp.join(shown, 'index.html')]:
        assert osp.isfile(path) and path in out.stdout, path
    gt = cv2.imread(osp.join(data, 'heldout', 'GTmod12', demo.HELDOUT_PHOTOS[0]))
    fig = cv2.imread(figures[sorted(demo.HELDOUT_PHOTOS).index(demo.HELDOUT_PHOTOS[0])])
    assert fig.shape[1] > 2 * 240 and fig.shape[0] >= 240  # a thumbnail beside three zoomed crops
    assert gt is not None
    with open(osp.join(shown, 'scores.json'), encoding='utf-8') as f:
        page = json.load(f)
    assert page['models'] == ['Bicubic', 'MRNet']
    assert sorted(e['name'] for e in page['images']) == stems
    for entry in page['images']:
        for model, key in (('Bicubic', 'bicubic'), ('MRNet', 'mrnet')):
            for metric in ('psnr', 'ssim'):
                assert entry['scores'][model][metric] == results[entry['name']][key][metric]
    for model, key in (('Bicubic', 'bicubic'), ('MRNet', 'mrnet')):
        assert page['mean'][model] == results['_mean'][key]
