"""``torchrun --nproc_per_node=2 mrnet_arch/train.py -opt ... --launcher pytorch`` on CPU (gloo), and the same on
two "nodes" (``--nnodes 2 --nproc_per_node 1``, two torchrun agents on this machine).

The run goes through ``tests/launch_train.py``, which makes every rank write its final weights and its own
count of validation passes, so the test can see that DDP kept the ranks identical and that only rank 0
validated.
"""
import os
import signal
import socket
import subprocess
import sys
import time
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


def _agents(tmp_path, tag, port, *launcher_args, node1_root=None):
    """Start two torchrun agents, one per "node" (node ranks 0 and 1 on this machine, one process each),
    rendezvousing on 127.0.0.1. ``node1_root``: another project root for node 1 (a node that does not share
    the experiment folder)."""
    procs = []
    for node in (0, 1):
        out = open(tmp_path / f'{tag}_node{node}.out', 'w')
        command = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=2', '--nproc_per_node=1',
                   f'--node_rank={node}', '--master_addr=127.0.0.1', f'--master_port={port}',
                   osp.join(_tiny.REPO, 'tests', 'launch_train.py'), *launcher_args]
        root = str(node1_root) if node and node1_root else str(tmp_path)
        procs.append((subprocess.Popen(command, cwd=str(tmp_path), env=_tiny.env(root), stdout=out,
                                       stderr=subprocess.STDOUT), out))
    return procs


def _output(tmp_path, tag, node):
    return (tmp_path / f'{tag}_node{node}.out').read_text(errors='replace')


def _descendants(pid):
    """The process ids of every process below ``pid`` (from /proc; torchrun starts its workers in their own
    sessions, so killing the agent's process group would leave them running)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_agents(procs):
    """SIGKILL both agents and all their workers, as a lost allocation would."""
    for proc, _ in procs:
        for pid in ([proc.pid] + _descendants(proc.pid)) if proc.poll() is None else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for proc, out in procs:
        proc.wait(timeout=60)
        out.close()


def _samples(folder, rank):
    """``{epoch: [sample indices]}`` that rank ``rank`` loaded (``launch_train.py --record-samples``)."""
    seen = {}
    for line in (folder / f'samples_rank{rank}.txt').read_text().splitlines():
        epoch, index = map(int, line.split())
        seen.setdefault(epoch, []).append(index)
    return seen


def test_torchrun_two_nodes_one_process_each_then_auto_resume_after_both_are_killed(tmp_path):
    """``torchrun --nnodes 2 --nproc_per_node 1`` as two agents (node ranks 0 and 1) on this machine: one
    experiment folder and one log per run (global rank 0), disjoint samples per epoch, equal weights, and
    ``--auto_resume`` after SIGKILL of both agents (refused while one node does not see the experiment folder)."""
    train = _tiny.make_pairs(str(tmp_path / 'data' / 'train'), n=4, size=48)
    opt = _tiny.train_options('nodes', train, None, total_iter=6, save_freq=2, batch=1)
    yml = _tiny.write_yml(opt, str(tmp_path / 'nodes.yml'))
    samples, dumps = tmp_path / 'samples', tmp_path / 'dumps'
    exp = tmp_path / 'experiments' / 'nodes'
    procs = _agents(tmp_path, 'first', _free_port(), '--pause-after-save', '2', '--record-samples', str(samples),
                    '--', '-opt', yml, '--launcher', 'pytorch')
    try:
        deadline = time.time() + 400
        while not all('[launch_train] paused at 2' in _output(tmp_path, 'first', n) for n in (0, 1)):
            assert time.time() < deadline and all(p.poll() is None for p, _ in procs), \
                _output(tmp_path, 'first', 0)[-3000:] + _output(tmp_path, 'first', 1)[-3000:]
            time.sleep(0.5)
        assert [f for f in os.listdir(exp) if f.endswith('.log')] and len(os.listdir(tmp_path / 'experiments')) == 2
    finally:
        _kill_agents(procs)
    logs = [f for f in os.listdir(exp) if f.endswith('.log')]
    assert len(logs) == 1 and 'World size (gpu number): 2' in (exp / logs[0]).read_text()
    assert sorted(os.listdir(exp / 'models')) == ['net_g_2.pth']

    # a node that does not see the experiment folder would start from iteration 0: every rank stops instead
    (tmp_path / 'node1').mkdir()
    procs = _agents(tmp_path, 'apart', _free_port(), '--', '-opt', yml, '--launcher', 'pytorch', '--auto_resume',
                    node1_root=tmp_path / 'node1')
    try:
        codes = [proc.wait(timeout=400) for proc, _ in procs]
    finally:
        _kill_agents(procs)
    assert codes[0] != 0 and codes[1] != 0
    for node in (0, 1):
        assert ('the ranks would start from different training states (rank 0: iteration 2, rank 1: no state)'
                in _output(tmp_path, 'apart', node)), _output(tmp_path, 'apart', node)[-3000:]
    assert len([f for f in os.listdir(exp) if f.endswith('.log')]) == 1

    procs = _agents(tmp_path, 'second', _free_port(), '--dump-rank-weights', str(dumps), '--record-samples',
                    str(samples), '--', '-opt', yml, '--launcher', 'pytorch', '--auto_resume')
    try:
        codes = [proc.wait(timeout=400) for proc, _ in procs]
    finally:
        _kill_agents(procs)
    assert codes == [0, 0], _output(tmp_path, 'second', 0)[-3000:] + _output(tmp_path, 'second', 1)[-3000:]
    assert os.listdir(tmp_path / 'experiments') == ['nodes']  # one folder, nothing archived, the lock removed
    logs = sorted(f for f in os.listdir(exp) if f.endswith('.log'))
    assert len(logs) == 2  # one per run, written by global rank 0 only
    # an epoch is 2 iterations (4 images, 2 ranks, batch 1): the state of iteration 2 closes epoch 0, so the resumed
    # run starts at epoch 1 (compat fix 6; BasicSR would repeat epoch 0)
    assert 'Resuming training from epoch: 1, iter: 2' in (exp / logs[1]).read_text()

    rank0, rank1 = _samples(samples, 0), _samples(samples, 1)
    # the loader fetches one batch past the last iteration
    assert sorted(rank0) == sorted(rank1)
    complete = [e for e in rank0 if len(set(rank0[e])) == len(set(rank1[e])) == 2]
    assert complete[:2] == [0, 1], (rank0, rank1)
    for epoch in rank0:
        assert not set(rank0[epoch]) & set(rank1[epoch]), (epoch, rank0[epoch], rank1[epoch])
        assert set(rank0[epoch]) | set(rank1[epoch]) <= {0, 1, 2, 3}
    for epoch in complete:
        assert set(rank0[epoch]) | set(rank1[epoch]) == {0, 1, 2, 3}, epoch
    weights = [torch.load(dumps / f'net_g_rank{r}.pth', weights_only=True) for r in (0, 1)]
    assert [w['rank'] for w in weights] == [0, 1] and weights[0]['iter'] == weights[1]['iter']
    saved = torch.load(exp / 'models' / 'net_g_latest.pth', weights_only=True)['params']
    for key, value in saved.items():
        assert torch.equal(weights[0]['params'][key], weights[1]['params'][key]), key
        assert torch.equal(weights[0]['params'][key], value), key
