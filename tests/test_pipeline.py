"""BasicSR's own train and test pipelines end to end through the plugin's entry points, on a tiny config:
train with validation and checkpoints, continue with --auto_resume, then test the saved weights."""
import os
import re
import subprocess
import sys
from os import path as osp

import torch

from _tiny import REPO, env, make_pairs, parse, train_options, write_yml

TRAIN_PY = osp.join(REPO, 'mrnet_arch', 'train.py')
TEST_PY = osp.join(REPO, 'mrnet_arch', 'test.py')


def _run(script, yml, root, *args):
    out = subprocess.run([sys.executable, script, '-opt', yml, *args], cwd=root, env=env(root), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out.stdout + out.stderr


def test_train_resume_then_test(tmp_path):
    root = str(tmp_path)
    train = make_pairs(osp.join(root, 'train'), n=4, size=48)
    val = make_pairs(osp.join(root, 'val'), n=2, size=40)
    opt = train_options('pipe', train, val, total_iter=4, save_freq=2, val_freq=2)
    yml = write_yml(opt, osp.join(root, 'train.yml'))

    log = _run(TRAIN_PY, yml, root)
    exp = osp.join(root, 'experiments', 'pipe')
    for f in ('models/net_g_2.pth', 'models/net_g_4.pth', 'models/net_g_latest.pth', 'training_states/4.state'):
        assert osp.isfile(osp.join(exp, f)), f
    assert len(re.findall(r'Validation tiny_val\s+# psnr: [0-9.]+', log)) == 3  # iters 2, 4 and the final one
    state4 = torch.load(osp.join(exp, 'training_states', '4.state'), weights_only=True)
    assert state4['iter'] == 4

    # continue to 8 iterations from the saved state (from another working directory)
    opt['train']['total_iter'] = 8
    write_yml(opt, yml)
    log = subprocess.run([sys.executable, TRAIN_PY, '-opt', yml, '--auto_resume'], cwd=REPO, env=env(root),
                         capture_output=True, text=True, timeout=300)
    assert log.returncode == 0, (log.stdout + log.stderr)[-4000:]
    assert 'Resuming training from epoch' in log.stderr + log.stdout
    assert re.search(r'iter: 4\b', log.stdout + log.stderr)
    assert osp.isfile(osp.join(exp, 'models', 'net_g_8.pth'))
    assert torch.load(osp.join(exp, 'training_states', '8.state'), weights_only=True)['iter'] == 8
    assert os.listdir(osp.join(root, 'experiments')) == ['pipe']  # resumed in place, nothing archived

    # test pipeline on the saved weights
    test_opt = {
        'name': 'pipe_test', 'model_type': 'MRNetModel', 'scale': 2, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'test_1': {'name': 'tiny_val', 'type': 'PairedImageDataset', 'dataroot_lq': val[0],
                                'dataroot_gt': val[1], 'io_backend': {'type': 'disk'}}},
        'network_g': opt['network_g'],
        'path': {'pretrain_network_g': osp.join(exp, 'models', 'net_g_latest.pth'), 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2, 'test_y_channel': True}}},
    }
    test_yml = write_yml(test_opt, osp.join(root, 'test.yml'))
    parsed = parse(test_yml, root, is_train=False)
    assert parsed['path']['results_root'] == osp.join(root, 'results', 'pipe_test')
    log = _run(TEST_PY, test_yml, root)
    psnr = float(re.search(r'Validation tiny_val\s+# psnr: ([0-9.]+)', log).group(1))
    assert 5 < psnr < 60
    sr = osp.join(root, 'results', 'pipe_test', 'visualization', 'tiny_val', '0000_pipe_test.png')
    assert osp.isfile(sr)
