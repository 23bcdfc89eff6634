"""The learning-study tools on the CPU, with tiny models and scikit-image's photos:
``benchmarks/equal_budget.py`` (its training factors and ``--save-weights``) and ``benchmarks/factor_study.py``."""
import json
import os.path as osp

import pytest
import torch
from safetensors import safe_open

from _scripts import benchmark_script

TINY = 'MRNet:num_feat=8,num_block=1,num_recursion=2'
RUN1 = ['--device', 'cpu', '--workers', '0', '--patch', '12', '--threads', '1']  # what every run gets
RUN = RUN1 + ['--batch', '2']


equal_budget = benchmark_script('equal_budget')
factor_study = benchmark_script('factor_study')


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """scikit-image's photos as LMDBs + held-out set, written by ``mrnet prepare photos`` (default source)."""
    from mrnet_arch.commands.prepare import main
    out = tmp_path_factory.mktemp('photos')
    assert main(['photos', '--output', str(out), '--workers', '1']) == 0
    with open(osp.join(out, 'paths.json'), encoding='utf-8') as f:
        paths = json.load(f)
    assert paths['source'] == 'skimage' and paths['tiles'] > 0 and osp.isdir(paths['train_gt'])
    return str(out)


def test_zero_init_makes_every_recursion_the_identity():
    from mrnet_arch import MRNet
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=2, num_recursion=3, upscale=2)
    x0 = torch.rand(1, 8, 6, 6)
    assert not all(torch.equal(x, x0) for x in net.mrm(x0, 3))
    assert equal_budget._zero_init_conv_blocks(net, 'MRNet') == 1
    outs = net.mrm(x0, 3)
    assert len(outs) == 3 and all(torch.equal(x, x0) for x in outs)


def test_zero_init_of_a_model_without_conv_blocks_is_refused():
    from basicsr.archs.edsr_arch import EDSR
    with pytest.raises(SystemExit, match='--zero-init edsr: the model has no ConvBlock'):
        equal_budget._zero_init_conv_blocks(EDSR(3, 3, 8, 1, 2), 'edsr')


def test_equal_budget_saves_weights_with_provenance(tmp_path, photos):
    from mrnet_arch.storage.files import sha256_of
    from mrnet_arch.storage.weights import load_model
    weights = tmp_path / 'weights'
    result = equal_budget.main(['--data', photos, '--models', f'tiny={TINY}', 'edsr=EDSR:num_feat=8,num_block=1',
                                '--budget-iters', '3', '--eval-every-iters', '2', '--grad-clip', '0.2',
                                '--zero-init', 'tiny', '--save-weights', str(weights), '--output-dir', str(tmp_path),
                                '--name', 'eb'] + RUN)
    assert result['complete'] and [m['iterations'] for m in result['models']] == [3, 3]
    assert [p['iter'] for p in result['models'][0]['curve']] == [0, 2, 3]
    assert result['models'][0]['zero_init_conv_blocks'] == 1 and result['settings']['grad_clip'] == 0.2
    with open(tmp_path / 'eb.json', encoding='utf-8') as f:
        assert json.load(f)['complete'] is True
    for label in ('tiny', 'edsr'):
        with open(weights / f'{label}.json', encoding='utf-8') as f:
            prov = json.load(f)
        path = weights / f'{label}.safetensors'
        assert prov['sha256'] == sha256_of(str(path)) and prov['iterations'] == 3
        assert prov['settings']['grad_clip'] == 0.2 and prov['data']['train_photos'] == result['settings'][
            'train_photos']
        assert prov['held_out']['psnr'] == result['models'][['tiny', 'edsr'].index(label)]['final']['psnr']
    net, config = load_model(str(weights / 'tiny.safetensors'))
    assert config['num_feat'] == 8 and config['num_recursion'] == 2
    with safe_open(str(weights / 'edsr.safetensors'), 'pt') as f:
        assert json.loads(f.metadata()['network_g'])['type'] == 'EDSR'


def test_equal_budget_starts_from_a_weight_file(tmp_path, photos):
    """A ``LABEL=FILE`` model: the network of the weights (their global skip included), trained from them: its
    held-out score at iteration 0 is the weights' own, and the provenance names the file it started from."""
    from mrnet_arch import MRNet
    from mrnet_arch.inference.device import resolve_device
    from mrnet_arch.measurement.evaluation import find_pairs
    from mrnet_arch.storage.files import sha256_of
    from mrnet_arch.storage.weights import infer_config, load_model, save_safetensors
    torch.manual_seed(1)
    start = tmp_path / 'carried.safetensors'
    net = MRNet(num_feat=8, num_block=1, num_recursion=2, upscale=2, global_skip='bicubic')
    save_safetensors(net, dict(infer_config(net.state_dict()), global_skip='bicubic'), str(start))
    result = equal_budget.main(['--data', photos, '--models', f'go-on={start}', '--budget-iters', '2',
                                '--eval-every-iters', '2', '--save-weights', str(tmp_path / 'w'), '--output-dir',
                                str(tmp_path), '--name', 'eb'] + RUN)
    record = result['models'][0]
    assert record['arch'] == 'MRNet' and record['kwargs']['global_skip'] == 'bicubic'
    assert record['started_from'] == {'weights': str(start), 'sha256': sha256_of(str(start))}
    with open(osp.join(photos, 'paths.json'), encoding='utf-8') as f:
        paths = json.load(f)
    loaded, _ = load_model(str(start))
    own = equal_budget._holdout_psnr(loaded, resolve_device('cpu'), find_pairs(paths['holdout'], 2), 2)
    assert record['curve'][0]['psnr'] == own['psnr'] and record['curve'][0]['iter'] == 0
    with open(tmp_path / 'w' / 'go-on.json', encoding='utf-8') as f:
        assert json.load(f)['started_from']['sha256'] == sha256_of(str(start))
    with open(tmp_path / 'eb.md', encoding='utf-8') as f:
        assert f', from {start}' in f.read()


def test_factor_study_runs_each_factor_and_compares_at_equal_iterations(tmp_path, photos):
    factors = ['paper', 'zero_init', 'skip_bicubic', 'grad_clip_0.1', 'batch_x2', 'reference']
    code = factor_study.main(['--data', photos, '--factors'] + factors + [
        '--model', TINY, '--reference', 'EDSR:num_feat=8,num_block=1', '--batch', '2', '--iters', '2',
        '--eval-every-iters', '1', '--parallel', '2', '--output-dir', str(tmp_path), '--name', 'study', '--'] + RUN1)
    assert code == 0
    with open(tmp_path / 'study.json', encoding='utf-8') as f:
        result = json.load(f)
    assert result['common_iter'] == 2
    rows = {r['factor']: r for r in result['factors']}
    assert list(rows) == factors and all(r['complete'] for r in rows.values())
    assert rows['paper']['delta_vs_paper'] == 0
    for name, row in rows.items():
        assert [p['iter'] for p in row['curve']] == [0, 1, 2]
        assert row['delta_vs_paper'] == pytest.approx(row['psnr_at_common'] - rows['paper']['psnr_at_common'],
                                                      abs=1e-3)
    assert rows['skip_bicubic']['kwargs']['global_skip'] == 'bicubic'
    assert rows['reference']['arch'] == 'EDSR' and rows['reference']['kwargs']['num_feat'] == 8
    with open(tmp_path / 'study' / 'batch_x2.json', encoding='utf-8') as f:
        assert json.load(f)['settings']['batch'] == 4
    with open(tmp_path / 'study' / 'paper.json', encoding='utf-8') as f:
        assert json.load(f)['settings']['batch'] == 2
    assert rows['zero_init']['curve'][0]['psnr'] != rows['paper']['curve'][0]['psnr']
    md = (tmp_path / 'study.md').read_text(encoding='utf-8')
    assert 'Compared at iteration 2' in md and '| zero_init |' in md


def test_factor_study_reports_a_run_cut_short(tmp_path, photos):
    """A run stopped by --timeout is reported as cut, with what it wrote before; the study exits 1."""
    code = factor_study.main(['--data', photos, '--factors', 'paper', '--model', TINY, '--batch', '2', '--iters',
                              '100000', '--eval-every-iters', '1', '--timeout', '20', '--output-dir', str(tmp_path),
                              '--name', 'cut', '--'] + RUN1)
    assert code == 1
    with open(tmp_path / 'cut.json', encoding='utf-8') as f:
        row = json.load(f)['factors'][0]
    assert row['status'] == 'timeout' and not row['complete'] and len(row['curve']) >= 2
    assert 'cut (timeout)' in (tmp_path / 'cut.md').read_text(encoding='utf-8')


def test_factor_study_takes_the_base_batch_itself(tmp_path, photos):
    with pytest.raises(SystemExit, match='give the base batch as factor_study.py.s own --batch'):
        factor_study.main(['--data', photos, '--output-dir', str(tmp_path), '--'] + RUN)
