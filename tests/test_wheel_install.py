"""The built wheel, installed outside the checkout: option files as package data, and a project folder
``proj/options/train.yml`` with relative dataset paths trained and resumed from other working directories."""
import os
import re
import subprocess
import sys
from os import path as osp

import pytest
import torch

import _tiny


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """The plugin's wheel, built from this checkout and unpacked into a folder of its own."""
    base = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w',
                    str(base / 'dist'), _tiny.REPO], check=True, capture_output=True, timeout=300)
    wheels = os.listdir(base / 'dist')
    assert len(wheels) == 1 and wheels[0].endswith('.whl'), wheels
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(base / 'site'),
                    str(base / 'dist' / wheels[0])], check=True, capture_output=True, timeout=300)
    return str(base / 'site')


def _env(site):
    env = {k: v for k, v in os.environ.items() if k not in ('MRNET_ROOT', 'PYTHONPATH')}
    env.update(PYTHONPATH=site, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    return env


def _run(site, args, cwd, timeout=300):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(site), capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def test_wheel_ships_option_files_and_demo_weights(site, tmp_path):
    code = ('import mrnet_arch, os; from mrnet_arch.project import package_dir, shipped_options_dir, source_checkout; '
            'print(mrnet_arch.__file__); print(source_checkout()); d = shipped_options_dir(); print(d); '
            'print(sorted(os.listdir(d))); print(os.path.isfile(os.path.join(package_dir(), "demo_weights", '
            '"MRNet_demo_x2.pth")))')
    rc, out = _run(site, ['-c', code], str(tmp_path))
    assert rc == 0, out
    module, checkout, options, names, weights = out.strip().splitlines()[-5:]
    assert module.startswith(site) and checkout == 'None' and options.startswith(site)
    for name in ('train_MRNet_x2.yml', 'test_MRNet_x4.yml', 'train_MRNet_multiscale.yml', 'ablation', 'demo'):
        assert f"'{name}'" in names
    assert weights == 'True'


def test_project_folder_trains_and_resumes_from_any_directory(site, tmp_path):
    proj, elsewhere, other = tmp_path / 'proj', tmp_path / 'elsewhere', tmp_path / 'other'
    for folder in (elsewhere, other):
        folder.mkdir()
    _tiny.make_pairs(str(proj / 'datasets' / 'train'), n=2, size=40)
    _tiny.make_pairs(str(proj / 'datasets' / 'val'), n=1, size=36)
    opt = _tiny.train_options('wheel_run', ('datasets/train/LR', 'datasets/train/GT'),
                              ('datasets/val/LR', 'datasets/val/GT'), total_iter=4, save_freq=2, val_freq=2)
    (proj / 'options').mkdir()
    yml = _tiny.write_yml(opt, str(proj / 'options' / 'train.yml'))

    rc, log = _run(site, ['-m', 'mrnet_arch', 'train', '-opt', yml], str(elsewhere))
    assert rc == 0, log[-4000:]
    assert f'project root: {proj}' in log
    exp = proj / 'experiments' / 'wheel_run'
    assert (exp / 'models' / 'net_g_4.pth').is_file() and not (elsewhere / 'experiments').exists()

    opt['train']['total_iter'] = 6
    _tiny.write_yml(opt, yml)
    rc, log = _run(site, ['-m', 'mrnet_arch', 'train', '-opt', osp.relpath(yml, other), '--auto_resume'], str(other))
    assert rc == 0, log[-4000:]
    assert re.search(r'Resuming training from epoch: \d+, iter: 4\.', log), log[-3000:]
    assert torch.load(exp / 'training_states' / '6.state', weights_only=True)['iter'] == 6
    assert sorted(os.listdir(proj / 'experiments')) == ['wheel_run']


def test_wheel_contributes_its_option_files(site, tmp_path):
    from test_basicsr_checkout import lay_out_checkout
    checkout = lay_out_checkout(str(tmp_path / 'BasicSR'))
    rc, out = _run(site, ['-m', 'mrnet_arch', 'contribute', 'basicsr', checkout], str(tmp_path))
    assert rc == 0, out[-3000:]
    assert osp.isfile(osp.join(checkout, 'options', 'train', 'MRNet', 'ablation', 'table1_mrm.yml'))
    assert osp.isfile(osp.join(checkout, 'experiments', 'pretrained_models', 'MRNet_demo_x2.pth'))


def test_demo_runs_from_the_wheel_into_the_working_directory(site, tmp_path):
    """``mrnet demo`` from the wheel: option files and weights from the package, data, experiments and results
    under the working directory, nothing written into the installed package."""
    work = tmp_path / 'work'
    work.mkdir()
    before = sorted(os.listdir(osp.join(site, 'mrnet_arch')))
    rc, log = _run(site, ['-m', 'mrnet_arch', 'demo', '--iters', '2'], str(work), timeout=900)
    assert rc == 0, log[-4000:]
    assert f"Loading MRNet model from {osp.join(site, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')}" in log
    for folder in ('datasets', 'experiments', 'results'):
        assert (work / folder).is_dir(), folder
    assert (work / 'results' / 'MRNet_demo_x2' / 'compare' / 'index.html').is_file()
    assert sorted(os.listdir(osp.join(site, 'mrnet_arch'))) == before
    assert not osp.exists(osp.join(site, 'mrnet_arch', 'options', 'experiments'))
