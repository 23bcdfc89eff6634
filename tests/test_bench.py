"""``mrnet bench`` and the fast inference path, on CPU with tiny models and tiny inputs.

No speed is asserted here: latency is measured by the benchmark scripts, which write results files.
"""
import copy
import json
import os.path as osp

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from _scripts import benchmark_script
from mrnet_arch import MRNet
from mrnet_arch.commands.bench.command import main, parse_model_spec, run
from mrnet_arch.errors import InputError
from mrnet_arch.inference.fast import prepare_fast
from mrnet_arch.measurement.complexity import addcmul_flops, count_macs, count_params
from mrnet_arch.measurement.specs import PadCrop, SpecError

TINY_MRNET = 'MRNet:num_feat=8,num_block=1,num_recursion=2'
TINY_EDSR = 'EDSR:num_in_ch=3,num_out_ch=3,num_feat=8,num_block=1'
TINY_SWINIR = 'SwinIR:embed_dim=12,depths=[1],num_heads=[2]'
LR_SIZE = ['20', '30']


def _photo(h, w, top=100, left=180):
    """An RGB float crop of skimage's astronaut photo, as a (1, 3, h, w) tensor in [0, 1]."""
    from skimage import data
    img = data.astronaut()[top:top + h, left:left + w]
    return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255.


@pytest.fixture(scope='module')
def photo_benchmark(tmp_path_factory):
    """A two-image benchmark folder (GTmod12 + LRbicx2) from skimage photos, via ``mrnet prepare``'s helper."""
    import cv2
    from skimage import data

    from mrnet_arch.dataprep.prepare import prepare_benchmark
    src = tmp_path_factory.mktemp('photos')
    for name in ('coffee', 'chelsea'):
        img = getattr(data, name)()[60:156, 100:220]
        cv2.imwrite(str(src / f'{name}.png'), img[..., ::-1])
    out = tmp_path_factory.mktemp('bench') / 'PhotoSet'
    prepare_benchmark(str(src), str(out), scales=[2])
    return str(out)


def _net(spec, scale=2):
    return parse_model_spec(spec, scale).build()


def _flop_counter_macs(net, x):
    """MACs of a real (not meta) forward, counted directly with FlopCounterMode (multiply-accumulates included)."""
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.addcmul: addcmul_flops})
    with counter, torch.no_grad():
        net.eval()(x)
    return counter.get_total_flops() // 2


def test_bench_writes_reports_with_counts(tmp_path, photo_benchmark):
    torch.manual_seed(0)
    weights = tmp_path / 'tiny_mrnet.pth'
    trained_like = _net(TINY_MRNET)
    torch.save({'params': trained_like.state_dict()}, weights)
    result = run(['--models', f'mine={TINY_MRNET}', TINY_EDSR, TINY_SWINIR, 'Bicubic', '--device', 'cpu',
                  '--lr-size', *LR_SIZE, '--repeat', '1', '--warmup', '1', '--precision', 'fp32', 'bf16',
                  '--weights', f'mine={weights}', '--benchmarks', photo_benchmark, '--output-dir', str(tmp_path),
                  '--name', 'tiny', '--plot'])
    with open(tmp_path / 'tiny.json', encoding='utf-8') as f:
        saved = json.load(f)
    markdown = (tmp_path / 'tiny.md').read_text(encoding='utf-8')
    assert [m['label'] for m in saved['models']] == ['mine', 'EDSR', 'SwinIR', 'Bicubic']
    assert saved['machine']['torch'] == torch.__version__ and saved['machine']['cpu_model']
    assert saved['settings']['lr_size'] == [20, 30] and saved['settings']['output_size'] == [40, 60]
    by_label = {m['label']: m for m in saved['models']}
    x = torch.rand(1, 3, 20, 30)
    for label, spec in (('mine', TINY_MRNET), ('EDSR', TINY_EDSR), ('SwinIR', TINY_SWINIR), ('Bicubic', 'Bicubic')):
        row = by_label[label]
        net = _net(spec)
        assert row['params'] == count_params(net), label
        wrapped = PadCrop(net, parse_model_spec(spec, 2).multiple, 2)
        assert row['macs'] == count_macs(wrapped, lr_size=(20, 30), scale=2), label
        assert row['macs'] == _flop_counter_macs(wrapped, x), label
        for precision in ('fp32', 'bf16'):
            assert row['latency_ms'][precision]['median'] > 0, (label, precision)
            assert len(row['latency_ms'][precision]['runs']) == 1
        assert f"| {label} |" in markdown
    assert by_label['Bicubic']['params'] == 0
    assert by_label['SwinIR']['padded_lr_size'] == [24, 32]  # window 8
    assert by_label['mine']['macs'] > by_label['EDSR']['macs'] > 0
    # PSNR/SSIM only where meaningful: the model with weights and the parameter-free Bicubic
    assert set(by_label['mine']['metrics']['PhotoSet']) == {'fp32', 'bf16'}
    bicubic = by_label['Bicubic']['metrics']['PhotoSet']['fp32']
    assert bicubic['images'] == 2 and 20 < bicubic['psnr'] < 50 and 0 < bicubic['ssim'] <= 1
    assert by_label['EDSR']['metrics'] == {} and by_label['SwinIR']['metrics'] == {}
    assert 'no weights: PSNR/SSIM not measured' in markdown
    png = tmp_path / 'tiny.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert result['plot']['title'].startswith('PSNR vs parameters on PhotoSet')


def test_bench_psnr_matches_basicsr_metric(tmp_path, photo_benchmark):
    """Bicubic's PSNR from bench equals basicsr's calculate_psnr on basicsr's own bicubic upscale."""
    import cv2

    from basicsr.metrics import calculate_psnr
    from basicsr.utils.matlab_functions import imresize
    result = run(['--models', 'Bicubic', '--device', 'cpu', '--precision', 'fp32', '--skip-latency',
                  '--benchmarks', photo_benchmark, '--output-dir', str(tmp_path), '--name', 'bic'])
    psnrs = []
    for name in ('chelsea', 'coffee'):
        gt = cv2.imread(osp.join(photo_benchmark, 'GTmod12', f'{name}.png'))
        lr = cv2.imread(osp.join(photo_benchmark, 'LRbicx2', f'{name}.png'))
        sr = (imresize(lr.astype('float64') / 255., 2) * 255.).round().clip(0, 255)
        psnrs.append(calculate_psnr(sr, gt, crop_border=2, test_y_channel=True))
    measured = result['models'][0]['metrics']['PhotoSet']['fp32']['psnr']
    assert measured == pytest.approx(sum(psnrs) / 2, abs=0.02)


def test_bench_without_psnr_plots_macs_and_latency(tmp_path):
    assert main(['--models', TINY_MRNET, TINY_EDSR, '--device', 'cpu', '--lr-size', *LR_SIZE, '--repeat', '1',
                 '--warmup', '0', '--precision', 'fp32', '--output-dir', str(tmp_path), '--name', 'nopsnr',
                 '--plot']) == 0
    saved = json.loads((tmp_path / 'nopsnr.json').read_text(encoding='utf-8'))
    assert saved['plot']['title'].startswith('No PSNR measured')
    assert (tmp_path / 'nopsnr.png').stat().st_size > 0
    assert 'No PSNR measured' in (tmp_path / 'nopsnr.md').read_text(encoding='utf-8')


def test_presets_match_the_papers_configs():
    mrnet = parse_model_spec('MRNet', 2)
    assert count_params(mrnet.build()) == 878339  # the paper's MRNet-S x2 (section 4.1)
    assert parse_model_spec('MRNet', 4).kwargs['num_recursion'] == 8
    edsr = parse_model_spec('EDSR-baseline', 3)
    assert (edsr.arch, edsr.kwargs['num_feat'], edsr.kwargs['num_block'], edsr.kwargs['upscale']) == ('EDSR', 64, 16, 3)
    swinir = parse_model_spec('SwinIR', 2)
    assert swinir.multiple == 8 and swinir.kwargs['embed_dim'] == 60
    assert swinir.kwargs['upsampler'] == 'pixelshuffledirect'
    assert parse_model_spec('RCAN', 2).kwargs == {'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2}


def test_model_spec_forms(tmp_path):
    spec = parse_model_spec('small=MRNet:num_feat=16,num_block=2', 3)
    assert (spec.label, spec.arch, spec.kwargs['num_feat'], spec.kwargs['upscale']) == ('small', 'MRNet', 16, 3)
    spec = parse_model_spec('EDSR:num_feat=8,num_block=1', 4)
    assert spec.kwargs == {'num_feat': 8, 'num_block': 1, 'upscale': 4, 'num_in_ch': 3, 'num_out_ch': 3}
    yml = tmp_path / 'opt.yml'
    yml.write_text('name: my_run\nnetwork_g:\n  type: MRNet\n  num_feat: 8\n  num_block: 1\n  upscale: 2\n'
                   'path:\n  pretrain_network_g: w.pth\n', encoding='utf-8')
    spec = parse_model_spec(str(yml), 2)
    assert (spec.label, spec.arch, spec.weights, spec.kwargs['num_feat']) == ('my_run', 'MRNet', 'w.pth', 8)
    with pytest.raises(SpecError, match='not registered'):
        parse_model_spec('NoSuchArch:a=1', 2).build()
    with pytest.raises(SpecError, match='key=value'):
        parse_model_spec('MRNet:num_feat', 2)


def test_padcrop_pads_to_the_window_and_crops_back():
    net = _net(TINY_SWINIR)
    out = PadCrop(net, 8, 2).eval()(torch.rand(1, 3, 21, 30))
    assert out.shape == (1, 3, 42, 60)


# --------------------------------------------------------------------------------------------------
# mrnet_arch.inference.fast
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_mrnet():
    torch.manual_seed(0)
    return MRNet(num_feat=16, num_block=2, num_recursion=4).eval()


def test_fast_fp32_channels_last_equals_plain_forward(tiny_mrnet):
    img = _photo(48, 64)
    with torch.no_grad():
        ref = tiny_mrnet(img)
    fast = prepare_fast(copy.deepcopy(tiny_mrnet), 'cpu', 'fp32', channels_last=True)
    out = fast(img)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    assert fast.fp32_modules == []


@pytest.mark.parametrize('precision', ['bf16', 'bf16-cast'])
def test_fast_bf16_runs_and_stays_close(tiny_mrnet, precision):
    """Random weights, real photo: max |bf16 - fp32| stays below 5e-4 (measured on CPU, torch 2.14: ~1.7e-4
    with autocast, ~2.3e-4 with cast weights)."""
    img = _photo(48, 64)
    with torch.no_grad():
        ref = tiny_mrnet(img)
    fast = prepare_fast(copy.deepcopy(tiny_mrnet), 'cpu', precision)
    out = fast(img)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert fast.fp32_modules == ['reconstruction.conv_last']
    assert 0 < (out - ref).abs().max().item() < 5e-4


def test_fast_refuses_what_cpu_cannot_do(tiny_mrnet):
    with pytest.raises(ValueError, match='CUDA'):
        prepare_fast(copy.deepcopy(tiny_mrnet), 'cpu', 'fp16')
    with pytest.raises(ValueError, match='CUDA only'):
        prepare_fast(copy.deepcopy(tiny_mrnet), 'cpu', 'fp32', compile=True)
    with pytest.raises(ValueError, match='precision must be one of'):
        prepare_fast(copy.deepcopy(tiny_mrnet), 'cpu', 'int8')


# --------------------------------------------------------------------------------------------------
# option files, weights, devices
# --------------------------------------------------------------------------------------------------
def _tiny_option_file(path, weights, upscale=2):
    path.write_text(f'name: tiny_opt\nnetwork_g:\n  type: MRNet\n  num_feat: 8\n  num_block: 1\n  num_recursion: 2\n'
                    f'  upscale: {upscale}\npath:\n  pretrain_network_g: {weights}\n', encoding='utf-8')
    return str(path)


def test_option_file_weights_are_relative_to_the_project_root(tmp_path, monkeypatch):
    root, elsewhere = tmp_path / 'root', tmp_path / 'elsewhere'
    (root / 'experiments').mkdir(parents=True)
    elsewhere.mkdir()
    torch.manual_seed(0)
    torch.save({'params': _net(TINY_MRNET).state_dict()}, root / 'experiments' / 'w.pth')
    yml = _tiny_option_file(tmp_path / 'opt.yml', 'experiments/w.pth')
    monkeypatch.setenv('MRNET_ROOT', str(root))
    monkeypatch.chdir(elsewhere)  # not the working directory
    result = run(['--models', yml, '--device', 'cpu', '--precision', 'fp32', '--skip-latency', '--lr-size', '8', '8',
                  '--output-dir', str(tmp_path / 'out'), '--name', 'opt'])
    assert result['models'][0]['weights'] == str(root / 'experiments' / 'w.pth')
    missing = _tiny_option_file(tmp_path / 'missing.yml', 'experiments/nope.pth')
    with pytest.raises(SpecError, match=r'weights file not found: .*root/experiments/nope\.pth .*missing\.yml'):
        run(['--models', missing, '--device', 'cpu', '--skip-latency', '--output-dir', str(tmp_path / 'out')])


def test_option_file_scale_must_match(tmp_path):
    yml = _tiny_option_file(tmp_path / 'x4.yml', '~', upscale=4)
    with pytest.raises(SpecError, match=r'x4\.yml has network_g: upscale 4, but --scale is 2'):
        parse_model_spec(yml, 2)
    assert parse_model_spec(yml, 4).kwargs['upscale'] == 4


def test_unsafe_weights_stop_with_the_weights_error(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ('ran',))

    path = tmp_path / 'evil.pth'
    torch.save({'params': Evil()}, path)
    spec = parse_model_spec(TINY_MRNET, 2)
    spec.weights = str(path)
    with pytest.raises(SpecError, match='^refusing to load'):
        spec.build()


def test_device_errors_are_infers(monkeypatch):
    from mrnet_arch.commands import infer
    from mrnet_arch.commands.bench import command
    assert command.resolve_device is infer.resolve_device  # one function, its errors already InputErrors
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert command.resolve_device('auto') == torch.device('cpu')
    with pytest.raises(InputError, match='--device cuda:1: CUDA is not available'):
        command.resolve_device('cuda:1')


# --------------------------------------------------------------------------------------------------
# benchmark scripts
# --------------------------------------------------------------------------------------------------
def test_train_throughput_writes_results_after_each_config(tmp_path, monkeypatch):
    """A run cut short (here: the second config raises) keeps the first config's results on disk."""
    script = benchmark_script('train_throughput')
    calls = []

    def fake_run_config(config, args):
        calls.append(config)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as when the step's time limit stops the script
        return {'config': config, 'returncode': 0, 'step_ms': 12.5, 'iters_per_s': 80., 'measured_iters': 200}

    monkeypatch.setattr(script, 'run_config', fake_run_config)
    with pytest.raises(KeyboardInterrupt):
        script.main(['--configs', 'MRNet:fp32', 'MRNet:bf16-cl', '--cpu', '--timeout', '45',
                     '--output-dir', str(tmp_path), '--name', 'tp'])
    saved = json.loads((tmp_path / 'tp.json').read_text(encoding='utf-8'))
    assert [r['config'] for r in saved['results']] == ['MRNet:fp32'] and saved['settings']['timeout'] == 45
    markdown = (tmp_path / 'tp.md').read_text(encoding='utf-8')
    assert '| MRNet:fp32 | 12.50 | 80.0 | 200 |' in markdown and 'Not run (yet): MRNet:bf16-cl' in markdown


def test_cpu_bench_reports_measured_load_not_guesses():
    load_note = benchmark_script('cpu_bench').load_note
    busy, note = load_note([2.36, 2.9, 3.31], [2.64, 2.86, 3.25], ['python -m mrnet_arch'])
    assert busy and 'machine was busy (load average 2.36 at the start, 2.64 at the end; 1 other' in note
    assert 'engineer' not in note
    assert load_note([0.1, 0.2, 0.3], [0.2, 0.2, 0.3], [])[0] is False


def test_train_throughput_config_timeout_is_a_failed_row(monkeypatch):
    import argparse
    import subprocess
    script = benchmark_script('train_throughput')

    def timeout(cmd, timeout, **kwargs):
        raise subprocess.TimeoutExpired(cmd, timeout, output=b'partial output')

    monkeypatch.setattr(script.subprocess, 'run', timeout)
    args = argparse.Namespace(iters=300, print_freq=50, cpu=False, force_yml=[], timeout=45)
    result = script.run_config('MRNet:fp32', args)
    assert result['returncode'] is None and result['error'].startswith('timed out after 45 s')


def test_bench_imports_a_plugin_arch(tmp_path, photo_benchmark):
    """``--import MODULE``: a plugin module (on PYTHONPATH, not installed) registers its arch before the models
    are built; bench measures and scores it."""
    import subprocess
    import sys

    from test_compare_cli import write_plugin

    from _tiny import REPO, env
    plugins = write_plugin(str(tmp_path / 'plugins'))
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'bench', '--import', 'myplugin.archs', '--models',
                           'PluginNearest', 'Bicubic', '--device', 'cpu', '--lr-size', *LR_SIZE, '--repeat', '1',
                           '--warmup', '1', '--precision', 'fp32', '--benchmarks', photo_benchmark, '--output-dir',
                           str(tmp_path), '--name', 'plugin'],
                          env=env(str(tmp_path), PYTHONPATH=REPO + osp.pathsep + plugins), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(tmp_path / 'plugin.json', encoding='utf-8') as f:
        saved = json.load(f)
    assert saved['settings']['imports'] == ['myplugin.archs']
    nearest, bicubic = saved['models']
    assert nearest['arch'] == 'PluginNearest' and nearest['params'] == 0 and nearest['latency_ms']['fp32']
    psnr = {m['label']: m['metrics']['PhotoSet']['fp32']['psnr'] for m in (nearest, bicubic)}
    assert psnr['PluginNearest'] < psnr['Bicubic']
    # a module that cannot be imported is named
    missing = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'bench', '--import', 'myplugin.nothing',
                              '--models', 'Bicubic', '--skip-latency'],
                             env=env(str(tmp_path), PYTHONPATH=REPO + osp.pathsep + plugins), capture_output=True,
                             text=True, timeout=300)
    assert missing.returncode == 2  # bad input
    assert 'mrnet bench: error: --import myplugin.nothing: cannot import it' in missing.stderr


def test_option_file_weights_resolve_against_the_option_files_project(tmp_path, monkeypatch):
    """Relative ``pretrain_network_g`` of ``proj/options/x.yml`` is read under ``proj`` (the project root rule of
    ``mrnet train``), whatever the working directory."""
    from mrnet_arch.measurement.specs import parse_model_spec
    monkeypatch.delenv('MRNET_ROOT', raising=False)
    monkeypatch.chdir(tmp_path)
    proj = tmp_path / 'proj'
    (proj / 'options').mkdir(parents=True)
    (proj / 'options' / 'x2.yml').write_text(
        'name: mine\nnetwork_g: {type: MRNet, upscale: 2, num_feat: 8, num_block: 1, num_recursion: 2}\n'
        'path: {pretrain_network_g: experiments/mine/models/net_g_latest.pth}\n')
    spec = parse_model_spec(str(proj / 'options' / 'x2.yml'), 2)
    assert spec.weights_path() == str(proj / 'experiments' / 'mine' / 'models' / 'net_g_latest.pth')
