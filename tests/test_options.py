"""Every YAML under options/ parses like BasicSR's parse_options and builds its network, with the paper's
parameter counts (Tables 1 and 2, section 4.5)."""
import copy
import glob
import subprocess
import sys
from os import path as osp

import pytest

from _photos import REPO
from basicsr.archs import build_network
from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY

YAMLS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'options', '**', '*.yml'), recursive=True))

TABLE1 = {'baseline': 861827, 'residual': 861827, 'input_encoder': 870083, 'memory_updater': 870083, 'mrm': 878339}
TABLE2 = {
    'conv1x1': {2: 1033027, 4: 1041219, 6: 1049411, 8: 1057603, 10: 1065795},
    'shuffleconv': {2: 881923, 4: 886531, 6: 891139, 8: 895747, 10: 900355},
}
MULTISCALE = 1061705
BENCHMARKS = ['Set5', 'Set14', 'B100', 'Urban100', 'Manga109']


def _count(net):
    return sum(p.numel() for p in net.parameters())


def parse(rel, monkeypatch):
    """BasicSR's ``parse_options`` on ``rel`` (train options for train/ablation files, else test)."""
    from basicsr.utils.options import parse_options
    monkeypatch.setattr(sys, 'argv', ['mrnet', '-opt', osp.join(REPO, rel)])
    is_train = not osp.basename(rel).startswith('test_')
    opt, _ = parse_options(REPO, is_train=is_train)
    return opt


def build(opt):
    return build_network(copy.deepcopy(opt['network_g']))


def test_expected_files_exist():
    names = set(YAMLS)
    expected = {f'options/test_MRNet_x{s}.yml' for s in (2, 3, 4)} | {'options/train_MRNet_multiscale.yml'}
    expected |= {f'options/ablation/table1_{m}.yml' for m in TABLE1}
    expected |= {f'options/ablation/table2_{f}_T{t}.yml' for f in TABLE2 for t in (2, 4, 6, 8, 10)}
    expected |= {f'options/ablation/fig7_x{s}_T{t}.yml' for s in (2, 3, 4) for t in (2, 4, 6, 8, 10)}
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize('rel', YAMLS)
def test_parses_and_builds(rel, monkeypatch):
    opt = parse(rel, monkeypatch)
    assert opt['model_type'] in MODEL_REGISTRY, opt['model_type']
    for phase, dataset in opt['datasets'].items():
        assert dataset['type'] in DATASET_REGISTRY, (phase, dataset['type'])
        assert dataset['phase'] == phase.split('_')[0]
    net = build(opt)
    assert (_count(net) == 0) == (opt['network_g']['type'] == 'Bicubic')  # only Bicubic has no weights
    if opt['network_g']['type'] == 'MRNet':
        assert net.upscale == opt['scale']


@pytest.mark.parametrize('module', sorted(TABLE1))
def test_table1_counts(module, monkeypatch):
    opt = parse(f'options/ablation/table1_{module}.yml', monkeypatch)
    assert (opt['scale'], opt['network_g']['num_recursion'], opt['train']['total_iter']) == (2, 4, 400000)
    assert _count(build(opt)) == TABLE1[module]


@pytest.mark.parametrize('fusion,t', [(f, t) for f in sorted(TABLE2) for t in sorted(TABLE2[f])])
def test_table2_counts(fusion, t, monkeypatch):
    opt = parse(f'options/ablation/table2_{fusion}_T{t}.yml', monkeypatch)
    assert (opt['scale'], opt['network_g']['num_recursion']) == (2, t)
    assert _count(build(opt)) == TABLE2[fusion][t]


@pytest.mark.parametrize('s', [2, 3, 4])
def test_fig7_sweeps_recursions(s, monkeypatch):
    for t in (2, 4, 6, 8, 10):
        opt = parse(f'options/ablation/fig7_x{s}_T{t}.yml', monkeypatch)
        net = build(opt)
        assert (opt['scale'], net.upscale, net.num_recursion, opt['train']['total_iter']) == (s, s, t, 400000)
        assert opt['datasets']['train']['dataroot_lq'].endswith(f'_X{s}_sub.lmdb')


@pytest.mark.parametrize('s', [2, 3, 4])
def test_test_yamls(s, monkeypatch):
    opt = parse(f'options/test_MRNet_x{s}.yml', monkeypatch)
    train = parse(f'options/train_MRNet_x{s}.yml', monkeypatch)
    assert opt['network_g'] == train['network_g']  # the trained weights load
    assert opt['path']['pretrain_network_g'] == f'experiments/MRNet_x{s}/models/net_g_latest.pth'
    assert [d['name'] for d in opt['datasets'].values()] == BENCHMARKS
    for d in opt['datasets'].values():
        name = d['name']
        assert (d['dataroot_gt'], d['dataroot_lq']) == (f'datasets/{name}/GTmod12', f'datasets/{name}/LRbicx{s}')
    for metric in opt['val']['metrics'].values():
        assert (metric['crop_border'], metric['test_y_channel']) == (s, True)
    assert _count(build(opt)) == {2: 878339, 3: 881091, 4: 886275}[s]


def test_multiscale_yamls(monkeypatch):
    train = parse('options/train_MRNet_multiscale.yml', monkeypatch)
    test = parse('options/test_MRNet_multiscale.yml', monkeypatch)
    assert train['network_g'] == test['network_g']
    net = build(train)
    assert _count(net) == MULTISCALE
    assert net.upscales == (2, 3, 4) and net.num_recursions == {2: 4, 3: 6, 4: 8}
    data = train['datasets']['train']
    assert data['scales'] == [2, 3, 4]
    assert data['dataroots_lq'] == [f'datasets/DIV2K/DIV2K_train_LR_bicubic_X{s}_sub.lmdb' for s in (2, 3, 4)]
    assert data['dataroot_gt'] == 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb'
    assert [d['scales'] for k, d in train['datasets'].items() if k != 'train'] == [[2], [3], [4]]
    assert sorted((d['name'], d['scales'][0]) for d in test['datasets'].values()) == sorted(
        (f'{b}_x{s}', s) for b in BENCHMARKS for s in (2, 3, 4))


def test_generated_files_are_up_to_date():
    """The derived YAMLs match train_MRNet_x*.yml (rerun tools/make_options.py after changing those)."""
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'make_options.py'), '--check'],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
