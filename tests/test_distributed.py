"""``torchrun --nproc_per_node=2 mrnet_arch/train.py -opt ... --launcher pytorch`` on CPU (gloo).

The run goes through ``tests/launch_train.py``, which makes every rank write its final weights and its own
count of validation passes, so the test can see that DDP kept the ranks identical and that only rank 0
validated.
"""
import os
import socket
import subprocess
import sys
from os import path as osp

import torch

import _tiny


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_torchrun_two_cpu_ranks(tmp_path):
    train = _tiny.make_pairs(str(tmp_path / 'data' / 'train'), n=4, size=48)
    val = _tiny.make_pairs(str(tmp_path / 'data' / 'val'), n=2, size=40)
    opt = _tiny.train_options('ddp', train, val, total_iter=4, save_freq=2, val_freq=2, batch=1)
    yml = _tiny.write_yml(opt, str(tmp_path / 'ddp.yml'))
    dumps = tmp_path / 'dumps'
    command = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2',
               f'--master_port={_free_port()}', osp.join(_tiny.REPO, 'tests', 'launch_train.py'),
               '--dump-rank-weights', str(dumps), '--', '-opt', yml, '--launcher', 'pytorch']
    run = subprocess.run(command, cwd=str(tmp_path), env=_tiny.env(str(tmp_path)),
                         capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]

    exp = tmp_path / 'experiments' / 'ddp'
    logs = [f for f in os.listdir(exp) if f.endswith('.log')]
    assert len(logs) == 1
    log = (exp / logs[0]).read_text()
    assert 'World size (gpu number): 2' in log and 'dist: True' in log
    # validation at iterations 2 and 4 and after the final save, each once
    assert log.count('Validation tiny_val') == 3

    rank0 = torch.load(dumps / 'net_g_rank0.pth', weights_only=True)
    rank1 = torch.load(dumps / 'net_g_rank1.pth', weights_only=True)
    assert (rank0['rank'], rank1['rank']) == (0, 1)
    assert (rank0['validations'], rank1['validations']) == (3, 0)
    assert rank0['iter'] == rank1['iter']
    saved = torch.load(exp / 'models' / 'net_g_latest.pth', weights_only=True)['params']
    assert rank0['params'].keys() == rank1['params'].keys() == saved.keys()
    for key, value in saved.items():
        assert torch.equal(rank0['params'][key], rank1['params'][key]), key
        assert torch.equal(rank0['params'][key], value), key
