"""``mrnet demo`` end to end in a temporary project root, shortened to a few iterations: the real-photo
dataset, BasicSR's train and test pipelines from the shipped demo weights, the comparison with bicubic, and
the figures and page it ends with (their scores are the demo's own); and, in process on a tiny stand-in, the third
model the demo adds when the package holds the campaign's pretrained weights."""
import json
import os
import subprocess
import sys
from os import path as osp

import cv2
import lmdb
import numpy as np

from _tiny import env, make_pairs
from mrnet_arch.archs.mrnet_arch import MRNet
from mrnet_arch.commands import demo
from mrnet_arch.measurement.evaluation import y_metrics
from mrnet_arch.storage.images import read_image
from mrnet_arch.storage.weights import infer_config, save_safetensors


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
    # the pretrained weights are a third model exactly when the package holds them
    models = [('Bicubic', 'bicubic'), ('MRNet', 'mrnet')]
    if osp.isfile(demo.PRETRAINED):
        models.append((demo.PRETRAINED_LABEL, 'pretrained'))
    assert page['models'] == [model for model, _ in models]
    assert sorted(e['name'] for e in page['images']) == stems
    for entry in page['images']:
        for model, key in models:
            for metric in ('psnr', 'ssim'):
                assert entry['scores'][model][metric] == results[entry['name']][key][metric]
    for model, key in models:
        assert page['mean'][model] == results['_mean'][key]


def _pages(tmp_path, pretrained):
    """``evaluate``, ``report`` and ``show`` on two tiny held-out pairs whose 'MRNet' output is OpenCV's
    bicubic upscale; returns (rows, table, scores.json, gt folder, lr folder)."""
    lr_dir, gt_dir = make_pairs(str(tmp_path / 'data'), n=2, size=48, names=['a', 'b'])
    sr_dir = tmp_path / 'sr'
    sr_dir.mkdir(exist_ok=True)
    for stem in ('a', 'b'):
        lr = cv2.imread(osp.join(lr_dir, f'{stem}.png'))
        sr = cv2.resize(lr, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(sr_dir / f'{stem}_{demo.NAME}.png'), sr)
    images = {}
    rows = demo.evaluate(str(sr_dir), gt_dir, lr_dir, images=images, pretrained=pretrained)
    shown = demo.show(images, str(tmp_path / 'compare'))
    with open(shown['json'], encoding='utf-8') as f:
        page = json.load(f)
    return rows, demo.report(rows), page, gt_dir, lr_dir


def test_demo_adds_the_pretrained_weights(tmp_path, monkeypatch):
    # a tiny MRNet x2 with a bicubic global skip, written as the campaign ships its weights, stands in for them
    weights = tmp_path / 'pretrained.safetensors'
    net = MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=2, global_skip='bicubic').eval()
    save_safetensors(net, dict(infer_config(net.state_dict()), global_skip='bicubic'), str(weights))
    monkeypatch.setattr(demo, 'PRETRAINED', str(weights))
    up = demo.load_pretrained()
    assert up is not None and up.config['global_skip'] == 'bicubic' and up.precision == 'fp32'

    rows, table, page, gt_dir, lr_dir = _pages(tmp_path / 'with', up)
    for stem in ('a', 'b'):  # the demo's metric on the Upscaler's output of the same LR image
        gt, lr = (read_image(osp.join(d, f'{stem}.png'), color=True) for d in (gt_dir, lr_dir))
        assert rows[stem]['pretrained'] == y_metrics(up.upscale(lr), gt, demo.SCALE)
    assert rows['_mean']['pretrained']['psnr'] == np.mean([rows[s]['pretrained']['psnr'] for s in ('a', 'b')])
    assert 'pretrained PSNR/SSIM' in table.splitlines()[0]
    assert f'{rows["_mean"]["pretrained"]["psnr"]:.2f}/{rows["_mean"]["pretrained"]["ssim"]:.4f}' in table
    assert page['models'] == ['Bicubic', 'MRNet', demo.PRETRAINED_LABEL]
    assert page['mean'][demo.PRETRAINED_LABEL] == rows['_mean']['pretrained']
    assert osp.isfile(tmp_path / 'with' / 'compare' / 'figures' / 'a.png')

    # without the file the demo compares Bicubic and MRNet only, as before
    monkeypatch.setattr(demo, 'PRETRAINED', str(tmp_path / 'absent.safetensors'))
    assert demo.load_pretrained() is None
    rows, table, page, _, _ = _pages(tmp_path / 'without', None)
    assert 'pretrained' not in rows['_mean'] and 'pretrained' not in table
    assert page['models'] == ['Bicubic', 'MRNet']
