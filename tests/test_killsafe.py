"""SIGKILL a real ``mrnet train`` at chosen training events and resume it with ``--auto_resume``.

The kill moments are training events, not delays: ``tests/launch_train.py`` runs the training in the child
process and kills it right after the save of an iteration, inside the write of a checkpoint (half of the
file on disk, not yet renamed) or inside the write of a training state. After each kill the test checks
what is on disk; at the end the resumed run must hold exactly the weights of an uninterrupted run, which
needs network, Adam state, LR scheduler, random generators (crops, flips) and, for the multi-scale model, the
scale schedule all restored.
"""
import glob
import os
import re
import signal
import subprocess
import sys
from os import path as osp

import pytest
import torch

import _tiny
from _photos import load_yaml, multiscale_data, save_yaml

LAUNCHER = osp.join(_tiny.REPO, 'tests', 'launch_train.py')


def _loads(path):
    try:
        torch.load(path, map_location='cpu', weights_only=True)
        return True
    except Exception:  # noqa: BLE001  (cut short or missing)
        return False


def _complete(exp):
    """Iterations whose ``.state`` and ``net_g_<iter>.pth`` both load."""
    found = []
    for state in glob.glob(osp.join(exp, 'training_states', '*.state')):
        it = int(osp.basename(state)[:-6])
        if _loads(state) and _loads(osp.join(exp, 'models', f'net_g_{it}.pth')):
            found.append(it)
    return sorted(found)


def _launch(yml, root, cwd, *hooks):
    """Run the launcher with ``hooks`` (e.g. ``--kill-after-save 20``) on ``yml`` with --auto_resume."""
    proc = subprocess.run([sys.executable, LAUNCHER, *hooks, '--', '-opt', yml, '--auto_resume'], cwd=cwd,
                          env=_tiny.env(root), capture_output=True, text=True, timeout=400)
    return proc.returncode, proc.stdout + proc.stderr


def _resumed_from(text):
    found = re.findall(r'Resuming training from epoch: \d+, iter: (\d+)\.', text)
    return int(found[-1]) if found else None


def _temp_files(exp):
    return sorted(osp.relpath(p, exp) for p in glob.glob(osp.join(exp, '*', '.*.tmp')))


def _kill_sequence(exp, yml, root, cwd):
    """Kill after the save at 20, inside the checkpoint write at 30, inside the training-state write at 40, then
    let the run finish; check the disk after every kill."""
    rc, log = _launch(yml, root, cwd, '--kill-after-save', '20')
    assert rc == -signal.SIGKILL, log[-3000:]
    assert _resumed_from(log) is None and _complete(exp) == [10, 20]

    rc, log = _launch(yml, root, cwd, '--kill-inside-write', '30')
    assert rc == -signal.SIGKILL, log[-3000:]
    assert _resumed_from(log) == 20
    assert not osp.exists(osp.join(exp, 'models', 'net_g_30.pth'))  # the cut file is never taken for one
    assert [t for t in _temp_files(exp) if t.startswith('models/.net_g_30.pth.')]  # half of it, renamed never
    assert _complete(exp) == [10, 20]  # the previous checkpoints still load

    rc, log = _launch(yml, root, cwd, '--kill-inside-state-write', '40')
    assert rc == -signal.SIGKILL, log[-3000:]
    assert _resumed_from(log) == 20
    assert not [t for t in _temp_files(exp) if '.net_g_30.pth.' in t]  # the resume removed the earlier one
    assert _loads(osp.join(exp, 'models', 'net_g_40.pth'))
    assert not osp.exists(osp.join(exp, 'training_states', '40.state'))
    assert _complete(exp) == [10, 20, 30]

    rc, log = _launch(yml, root, cwd)
    assert rc == 0, log[-3000:]
    assert _resumed_from(log) == 30  # net_g_40.pth alone is no complete state
    assert 'End of training' in log
    assert not _temp_files(exp)


def _assert_same_weights(killed, uninterrupted):
    a = torch.load(killed, weights_only=True)['params']
    b = torch.load(uninterrupted, weights_only=True)['params']
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f'weights differ from an uninterrupted run: {differing}'


def test_kills_at_training_events_then_resume_equals_an_uninterrupted_run(tmp_path):
    root, cfg, elsewhere = tmp_path / 'root', tmp_path / 'cfg', tmp_path / 'elsewhere'
    for folder in (root, cfg, elsewhere):
        folder.mkdir()
    # random 32 px crops of a 40 px image, flips and rotations: the random generators must resume too. One image:
    # BasicSR resumes at the start of the saved epoch, so with more the sampler's order would differ.
    train = _tiny.make_pairs(str(tmp_path / 'data'), n=1, size=40)
    common = dict(total_iter=50, gt_size=32, batch=1, milestones=(25, 45))
    _tiny.write_yml(_tiny.train_options('killed', train, save_freq=10, **common), str(cfg / 'killed.yml'))
    _tiny.write_yml(_tiny.train_options('reference', train, save_freq=50, **common), str(cfg / 'ref.yml'))
    exp = str(root / 'experiments' / 'killed')
    _kill_sequence(exp, '../cfg/killed.yml', str(root), str(elsewhere))

    ref = _tiny.run_train(str(cfg / 'ref.yml'), str(root))
    assert ref.returncode == 0, ref.stderr[-3000:]
    _assert_same_weights(osp.join(exp, 'models', 'net_g_latest.pth'),
                         str(root / 'experiments' / 'reference' / 'models' / 'net_g_latest.pth'))


@pytest.fixture
def multiscale_root(tmp_path):
    # one sub-image: see above
    return multiscale_data(tmp_path / 'root', {'0001.png': ('astronaut', 48, 48)}, {'baby.png': ('chelsea', 36, 48)})


def _multiscale_opt(name, total_iter, save_freq, enlarge=1):
    opt = load_yaml(osp.join(_tiny.REPO, 'options', 'train_MRNet_multiscale.yml'))
    opt['name'] = name
    opt['network_g'].update(num_feat=8, num_block=1, num_recursions=[1, 2, 2])
    opt['datasets']['train'].update(lq_size=8, batch_size_per_gpu=1, num_worker_per_gpu=0,
                                    dataset_enlarge_ratio=enlarge)
    opt['datasets'] = {'train': opt['datasets']['train']}  # no validation: the weights are compared directly
    opt.pop('val')
    opt['train'].update(total_iter=total_iter, scale_seed=5)
    opt['train']['scheduler']['milestones'] = [25, 45]
    opt['logger'].update(print_freq=5, save_checkpoint_freq=save_freq)
    opt['num_gpu'] = 0
    return opt


def test_multiscale_resume_after_kills_equals_an_uninterrupted_run(multiscale_root, tmp_path):
    """The scale schedule follows the iteration: killed and resumed, the multi-scale run ends bit-equal."""
    root = str(multiscale_root)
    yml = save_yaml(_multiscale_opt('ms_killed', 50, 10), multiscale_root / 'ms_killed.yml')
    _kill_sequence(osp.join(root, 'experiments', 'ms_killed'), yml, root, str(tmp_path))
    ref = _tiny.run_train(save_yaml(_multiscale_opt('ms_ref', 50, 50), multiscale_root / 'ms_ref.yml'), root)
    assert ref.returncode == 0, ref.stderr[-3000:]
    _assert_same_weights(osp.join(root, 'experiments', 'ms_killed', 'models', 'net_g_latest.pth'),
                         osp.join(root, 'experiments', 'ms_ref', 'models', 'net_g_latest.pth'))


def test_torchrun_multiscale_two_cpu_ranks(multiscale_root):
    """Multi-scale training with ``torchrun --nproc_per_node=2`` (gloo): both ranks end with the saved weights."""
    from test_distributed import _free_port
    root = str(multiscale_root)
    yml = save_yaml(_multiscale_opt('ms_ddp', 6, 3, enlarge=4), multiscale_root / 'ms_ddp.yml')
    dumps = multiscale_root / 'dumps'
    command = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2',
               f'--master_port={_free_port()}', LAUNCHER, '--dump-rank-weights', str(dumps), '--', '-opt', yml,
               '--launcher', 'pytorch']
    run = subprocess.run(command, cwd=root, env=_tiny.env(root), capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    saved = torch.load(osp.join(root, 'experiments', 'ms_ddp', 'models', 'net_g_latest.pth'),
                       weights_only=True)['params']
    for rank in (0, 1):
        dump = torch.load(dumps / f'net_g_rank{rank}.pth', weights_only=True)
        assert dump['rank'] == rank
        assert all(torch.equal(dump['params'][k], v) for k, v in saved.items())
    assert {k.split('.')[1] for k in saved if k.startswith('reconstruction.')} == {'x2', 'x3', 'x4'}
    assert os.listdir(osp.join(root, 'experiments')) == ['ms_ddp']
