"""Weights define the network in ``mrnet bench`` and ``mrnet compare``
(``mrnet_arch.measurement.specs.ModelSpec.resolve``), as in ``mrnet infer``: with the shipped demo weights
(``num_feat`` 32, ``num_block`` 4, T = 3), which are smaller than the paper-size ``MRNet`` preset.

- ``--models LABEL=FILE.pth`` / ``.safetensors`` builds the network from the file;
- the ``MRNet`` preset given the demo weights takes their size and says so in one line;
- weights that fit no network of the spec stop the command with one line naming the differing tensors (the first
  few of each kind, with counts), before any model runs and before anything is written.
"""
import json
import os
import re
import subprocess
import sys
from os import path as osp

import pytest
import torch

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from _photos import write_photos
from mrnet_arch import MRNet
from mrnet_arch.commands import compare
from mrnet_arch.commands.bench.command import run as bench_run
from mrnet_arch.dataprep.prepare import prepare_benchmark
from mrnet_arch.measurement import specs
from mrnet_arch.measurement.complexity import count_params
from mrnet_arch.storage.weights import infer_config, read_state_dict, save_safetensors

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_WEIGHTS = osp.join(REPO, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')


@pytest.fixture(scope='module')
def photo_set(tmp_path_factory):
    """A benchmark folder (GTmod12 + LRbicx2) of two real photo crops."""
    src = write_photos(str(tmp_path_factory.mktemp('photos')), {'coffee.png': ('coffee', 48, 60),
                                                                'chelsea.png': ('chelsea', 36, 48)})
    out = str(tmp_path_factory.mktemp('set') / 'PhotoSet')
    prepare_benchmark(src, out, scales=[2])
    return out


def demo_config():
    """The demo weights' config, read from them."""
    return infer_config(read_state_dict(DEMO_WEIGHTS)[0])


def _compare(args, photo_set, out):
    return compare.run(args + ['--benchmarks', photo_set, '--output', str(out), '--device', 'cpu'])


def test_compare_mrnet_preset_takes_the_size_of_its_weights(photo_set, tmp_path, capsys):
    """``--models MRNet --weights MRNet=MRNet_demo_x2.pth`` (a traceback of size mismatches before) runs the
    demo network, and the weight file alone (``demo=...pth``) gives the same network and scores."""
    config = demo_config()
    _compare(['--models', 'MRNet', f'demo={DEMO_WEIGHTS}', '--weights', f'MRNet={DEMO_WEIGHTS}'], photo_set,
             tmp_path / 'cmp')
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if 'MRNet: built with the size of its weights' in line]
    assert notes == [f"[compare] MRNet: built with the size of its weights {DEMO_WEIGHTS}: "
                     f"num_feat={config['num_feat']} (preset: 64), num_block={config['num_block']} (preset: 10), "
                     f"num_recursion={config['num_recursion']} (preset: 4)"]
    with open(tmp_path / 'cmp' / 'scores.json', encoding='utf-8') as f:
        saved = json.load(f)
    for label in ('MRNet', 'demo'):
        kwargs = saved['runs'][label]['kwargs']
        assert (kwargs['num_feat'], kwargs['num_block'], kwargs['num_recursion']) == (
            config['num_feat'], config['num_block'], config['num_recursion'])
    means = saved['datasets']['PhotoSet']
    assert means['MRNet'] == means['demo']  # one network, one set of weights
    assert means['demo']['psnr'] > means['Bicubic']['psnr']  # trained weights, not noise


def test_bench_builds_the_network_from_pth_and_safetensors_files(tmp_path, capsys):
    config = demo_config()
    net = MRNet(**{k: v for k, v in config.items() if k != 'type'})
    net.load_state_dict(read_state_dict(DEMO_WEIGHTS)[0])
    st = tmp_path / 'demo.safetensors'
    save_safetensors(net, config, str(st))
    result = bench_run(['--models', f'demo={DEMO_WEIGHTS}', DEMO_WEIGHTS, f'st={st}', '--device', 'cpu',
                        '--lr-size', '12', '16', '--skip-latency', '--precision', 'fp32', '--output-dir',
                        str(tmp_path), '--name', 'b'])
    rows = {m['label']: m for m in result['models']}
    assert sorted(rows) == ['MRNet_demo_x2', 'demo', 'st']  # a file without a label is labelled by its name
    for row in rows.values():
        assert row['arch'] == 'MRNet' and row['params'] == count_params(net)
        kwargs = row['kwargs']
        assert (kwargs['num_feat'], kwargs['num_recursion']) == (config['num_feat'], config['num_recursion'])
    assert f'demo: MRNet(num_feat={config["num_feat"]}' in capsys.readouterr().out


def _misfit_message(spec_text, weights, scale=2):
    spec = specs.parse_model_spec(spec_text, scale)
    spec.weights = weights
    with pytest.raises(specs.SpecError) as caught:
        spec.resolve()
    return str(caught.value)


def test_weights_that_fit_no_network_name_the_tensors_in_one_line():
    state = read_state_dict(DEMO_WEIGHTS)[0]
    edsr = specs.parse_model_spec('EDSR-baseline', 2).build().state_dict()
    missing, unexpected = [k for k in edsr if k not in state], [k for k in state if k not in edsr]
    message = _misfit_message('EDSR-baseline', DEMO_WEIGHTS)
    assert '\n' not in message
    assert message == (
        f"model 'EDSR-baseline': the weights {DEMO_WEIGHTS} do not fit EDSR(num_in_ch=3, num_out_ch=3, "
        f"num_feat=64, num_block=16, upscale=2, res_scale=1, img_range=255.0): {len(missing)} missing "
        f"({', '.join(missing[:3])}, ...); {len(unexpected)} unexpected ({', '.join(unexpected[:3])}, ...)")
    # a size the spec states is kept, and the shapes that differ are named
    config = demo_config()
    feat = config['num_feat']
    message = _misfit_message('MRNet:num_feat=16', DEMO_WEIGHTS)
    assert '\n' not in message
    smaller = MRNet(**dict({k: v for k, v in config.items() if k != 'type'}, num_feat=16)).state_dict()
    shaped = sum(1 for k, v in smaller.items() if v.shape != state[k].shape)
    assert re.search(rf"do not fit MRNet\(num_feat=16, .*\): {shaped} tensor\(s\) of another shape "
                     rf"\(sfe.0.weight: expected \(16, 3, 7, 7\), found \({feat}, 3, 7, 7\), .*, \.\.\.\)$", message)
    # weights for another scale
    assert _misfit_message('MRNet', DEMO_WEIGHTS, scale=3).endswith(
        f'{DEMO_WEIGHTS} holds MRNet weights for x2, not x3: pass --scale 2')


def test_an_option_file_whose_network_differs_from_its_weights_is_named(tmp_path):
    """An option file's ``network_g`` is the network (BasicSR's contract): its weights must fit it."""
    yml = tmp_path / 'opt.yml'
    yml.write_text(f'name: mine\nnetwork_g:\n  type: MRNet\n  num_feat: 64\n  num_block: 4\n  num_recursion: 3\n'
                   f'  upscale: 2\npath:\n  pretrain_network_g: {DEMO_WEIGHTS}\n', encoding='utf-8')
    spec = specs.parse_model_spec(str(yml), 2)
    with pytest.raises(specs.SpecError, match=r"^model 'mine': the weights .* do not fit MRNet\(num_feat=64, "
                       r'.*\): \d+ tensor\(s\) of another shape \(sfe.0.weight: expected \(64, 3, 7, 7\)'):
        spec.resolve()


def test_a_file_of_other_weights_names_what_to_give(tmp_path):
    """A ``.pth`` of another arch says how to name it; a safetensors file whose metadata holds ``network_g``
    builds that arch."""
    edsr_spec = specs.parse_model_spec('EDSR:num_feat=8,num_block=1', 2)
    edsr = edsr_spec.build()
    pth = tmp_path / 'edsr.pth'
    torch.save({'params': edsr.state_dict()}, pth)
    with pytest.raises(specs.SpecError, match=r"model 'e': .*edsr.pth holds no MRNet weights .* name its arch, e\.g\. "
                       r'e=EDSR:num_feat=64,num_block=16 with --weights e=.*edsr.pth'):
        specs.parse_model_spec(f'e={pth}', 2).resolve()
    st = tmp_path / 'edsr.safetensors'
    save_safetensors(edsr, dict(type='EDSR', **edsr_spec.kwargs), str(st), mrnet_config=False)
    spec = specs.parse_model_spec(f'e={st}', 2)
    net = spec.build()
    assert spec.arch == 'EDSR' and spec.kwargs['num_feat'] == 8 and count_params(net) == count_params(edsr)


def test_mrnet_compare_stops_before_anything_is_written(photo_set, tmp_path):
    """The command as a user runs it: one line on stderr, exit status 2 (bad input), no output folder."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'compare', '--models', 'EDSR-baseline', '--weights',
                           f'EDSR-baseline={DEMO_WEIGHTS}', '--benchmarks', photo_set, '--output', 'cmp'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrnet compare: error: model 'EDSR-baseline': the weights ")
    assert 'missing (conv_first.weight, ' in lines[0] and 'unexpected (sfe.0.weight, ' in lines[0]
    assert not (tmp_path / 'cmp').exists()
