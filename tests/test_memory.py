"""Bounded memory on any image size: the budget, the memory model, tiles chosen from it (equal to the untiled
output, assembled in the final pixel type), ``MRNetModel.test()`` in tiles (``val: tile``, the budget), and a run
under an address-space limit."""
import glob
import json
import logging
import re
import subprocess
import sys
import tracemalloc
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from _scripts import benchmark_script
from mrnet_arch import MRNet
from mrnet_arch.archs.mrnet_config import receptive_radius
from mrnet_arch.cli import main as mrnet
from mrnet_arch.inference import memory
from mrnet_arch.inference.upscaler import Upscaler
from mrnet_arch.models import mrnet_tiling
from mrnet_arch.storage.weights import infer_config


def infer_main(argv):
    """``mrnet infer``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['infer', *argv])


REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_WEIGHTS = osp.join(REPO, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')


def _photo(height, width):
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[40:40 + height, 120:120 + width, ::-1])  # BGR


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=2).eval()


@pytest.mark.parametrize('text, expected', [('2G', 2 * 2**30), ('512M', 512 * 2**20), ('1.5GiB', int(1.5 * 2**30)),
                                            ('100000', 100000), ('64 kb', 64 * 1024)])
def test_memory_sizes_parse(text, expected):
    assert mrnet_tiling.parse_memory(text) == expected


@pytest.mark.parametrize('text', ['', 'lots', '-1G', '0', '2X', '1e9'])
def test_bad_memory_sizes_are_refused_by_name(text):
    with pytest.raises(mrnet_tiling.MemoryBudgetError, match='--max-memory.*expected a positive size'):
        mrnet_tiling.parse_memory(text)


def test_default_budget_is_half_of_what_is_available():
    available = mrnet_tiling.available_memory('cpu')
    assert available is not None and available > 0
    assert mrnet_tiling.memory_budget('cpu') == pytest.approx(available * mrnet_tiling.BUDGET_SHARE, rel=0.05)
    assert mrnet_tiling.memory_budget('cpu', '1G') == 2**30


def test_tile_choice_fits_the_budget():
    per_pixel, pad = 5000., 32
    assert mrnet_tiling.choose_tile(per_pixel, 100, 100, 10**9, pad) == 0  # fits whole
    tile = mrnet_tiling.choose_tile(per_pixel, 4000, 4000, 2**30, pad)
    assert tile % 8 == 0 and tile >= mrnet_tiling.MIN_TILE
    assert per_pixel * (tile + 2 * pad)**2 <= 2**30 < per_pixel * (tile + 8 + 2 * pad)**2 * 1.2
    with pytest.raises(mrnet_tiling.MemoryBudgetError, match='--max-memory.*too small'):
        mrnet_tiling.choose_tile(per_pixel, 4000, 4000, 10**6, pad)


def test_memory_model_is_above_every_measured_forward():
    """``benchmarks/activation_memory.py`` measured the peak RSS rise of real forwards; the model must not be
    below any of them (the model is what keeps a run within its budget)."""
    files = sorted(glob.glob(osp.join(REPO, 'benchmarks', 'results', 'activation_memory_cpu_*.json')))
    assert files, 'no results of benchmarks/activation_memory.py'
    rows = json.load(open(files[-1], encoding='utf-8'))['rows']
    assert len(rows) >= 6
    configs = benchmark_script('activation_memory').CONFIGS  # the configs measured
    for row in rows:
        config = dict(type='MRNet', num_in_ch=3, num_out_ch=3, **configs[row['config']])
        assert memory.estimate_forward_bytes(config, row['size'], row['size']) >= row['peak_rise_bytes'], row


@pytest.mark.parametrize('kind', ['bgr8', 'bgr16', 'gray8', 'bgra8'])
def test_budget_tiles_equal_untiled_output(net, kind):
    config = infer_config(net.state_dict())
    bgr = _photo(60, 76)
    img = {'bgr8': bgr, 'bgr16': bgr.astype(np.uint16) * 257 + 3, 'gray8': cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
           'bgra8': np.dstack([bgr, np.tile(np.linspace(0, 255, 76).astype(np.uint8), (60, 1))])}[kind]
    whole = Upscaler(net, config, 'cpu', 'fp32', max_memory='1G').upscale(img)
    messages = []
    budget = int(mrnet_tiling.mrnet_bytes_per_pixel(config) * (24 + 2 * receptive_radius(config))**2)  # tiles of 24
    small = Upscaler(net, config, 'cpu', 'fp32', max_memory=budget, log=messages.append)
    tiled = small.upscale(img)
    assert small.last_tile == 24
    assert f'tiles of {small.last_tile} px' in messages[0] and 'budget' in messages[0]
    assert tiled.dtype == img.dtype and tiled.shape == whole.shape == (120, 152, img.shape[2] if img.ndim == 3 else 1)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= (1 if img.dtype == np.uint8 else 257)


def test_tiled_output_has_no_full_size_float_copy(net):
    """numpy allocations are traced by tracemalloc: a tiled run of an 8-bit image allocates its uint8 output and
    one tile's float arrays, far less than a float32 copy of the output (4 bytes per value)."""
    config = infer_config(net.state_dict())
    img = cv2.resize(_photo(200, 240), (480, 400), interpolation=cv2.INTER_CUBIC)
    budget = int(mrnet_tiling.mrnet_bytes_per_pixel(config) * (48 + 2 * receptive_radius(config))**2)  # tiles of 48
    up = Upscaler(net, config, 'cpu', 'fp32', max_memory=budget)
    tracemalloc.start()
    try:
        out = up.upscale(img)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert up.last_tile and out.dtype == np.uint8
    assert peak < out.size * 4 / 2  # less than half of a float32 copy of the output


def test_infer_refuses_a_bad_max_memory_before_creating_anything(tmp_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'a.png'), _photo(20, 20))
    for value, message in (('lots', 'expected a positive size'), ('10K', 'too small for the smallest tile')):
        assert infer_main(['--weights', DEMO_WEIGHTS, '--input', str(src), '--output', str(tmp_path / 'out'),
                           '--device', 'cpu', '--max-memory', value]) == 2
        err = capsys.readouterr().err
        assert '--max-memory' in err and message in err and 'Traceback' not in err
        assert not (tmp_path / 'out').exists()


def test_infer_logs_tiles_and_matches_untiled(tmp_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'a.png'), _photo(90, 110))
    base = ['--weights', DEMO_WEIGHTS, '--input', str(src), '--device', 'cpu', '--precision', 'fp32']
    assert infer_main(base + ['--output', str(tmp_path / 'whole')]) == 0
    assert 'tiles of' not in capsys.readouterr().err
    assert infer_main(base + ['--output', str(tmp_path / 'tiled'), '--max-memory', '40M']) == 0
    assert 'in tiles of' in capsys.readouterr().err
    whole, tiled = (cv2.imread(str(tmp_path / d / 'a.png')).astype(int) for d in ('whole', 'tiled'))
    assert np.abs(whole - tiled).max() <= 1


def _model_options(val=None, network=None, model_type='MRNetModel'):
    """Options of a tiny MRNetModel for testing (no training settings)."""
    network = network or {'type': 'MRNet', 'num_feat': 8, 'num_block': 1, 'upscale': 2, 'num_recursion': 2}
    return {'name': 'tiles', 'model_type': model_type, 'scale': 2, 'is_train': False, 'dist': False, 'rank': 0,
            'world_size': 1, 'num_gpu': 0, 'network_g': network, 'path': {'pretrain_network_g': None},
            'val': val or {}}


def _tested(model_cls, opt, net, lq, **data):
    """``model.test()`` of a model built from ``opt`` holding ``net``'s weights, and the messages it logged."""
    model = model_cls(opt)
    model.net_g.load_state_dict(net.state_dict())
    logger, messages = logging.getLogger('basicsr'), []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        model.feed_data({'lq': lq, **data})
        model.test()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return model, messages


def test_model_test_tiles_within_the_budget_and_leaves_the_network_alone(net, monkeypatch):
    """``MRNetModel.test()`` (BasicSR's test pipeline and validation call it, in the plugin and in a checkout) runs
    the network in the tiles the memory model chooses for the budget ``val:tile:max_memory`` or
    ``$MRNET_MAX_MEMORY``, or in ``val:tile:tile_size`` tiles (HAT's option), with the receptive radius as overlap;
    the output equals the untiled one up to float rounding, and the network object is left as it is."""
    from mrnet_arch.models.mrnet_model import MRNetModel
    config = infer_config(net.state_dict())
    x = torch.from_numpy(_photo(64, 80)[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        whole = net(x)
    budget = int(mrnet_tiling.mrnet_bytes_per_pixel(config) * 40**2)
    model, messages = _tested(MRNetModel, _model_options({'tile': {'max_memory': budget}}), net, x)
    assert 'forward' not in vars(model.net_g)  # the class's forward
    assert messages and 'in tiles of' in messages[0] and f'overlap {receptive_radius(config)} px' in messages[0]
    per_pixel = mrnet_tiling.mrnet_bytes_per_pixel(config)
    assert model.last_tile == mrnet_tiling.choose_tile(per_pixel, 64, 80, budget, receptive_radius(config)) > 0
    assert (model.output - whole).abs().max().item() <= 1e-5

    monkeypatch.setenv('MRNET_MAX_MEMORY', str(budget))
    from_env, messages = _tested(MRNetModel, _model_options(), net, x)
    assert len(messages) == 1 and from_env.last_tile == model.last_tile
    assert (from_env.output - whole).abs().max().item() <= 1e-5
    monkeypatch.delenv('MRNET_MAX_MEMORY')

    fixed, messages = _tested(MRNetModel, _model_options({'tile': {'tile_size': 24}}), net, x)
    assert fixed.last_tile == 24 and 'tiles of 24 px' in messages[0]
    assert (fixed.output - whole).abs().max().item() <= 1e-5
    untiled, messages = _tested(MRNetModel, _model_options({'tile': {'max_memory': '1G'}}), net, x)
    assert untiled.last_tile == 0 and not messages and torch.equal(untiled.output, whole)


def test_multiscale_model_test_tiles_at_its_scale():
    """``MultiScaleMRNetModel.test()`` tiles the forward at the scale of the data, with that scale's radius."""
    from mrnet_arch import MultiScaleMRNet
    from mrnet_arch.models.mrnet_model import MultiScaleMRNetModel
    torch.manual_seed(0)
    network = {'type': 'MultiScaleMRNet', 'num_feat': 8, 'num_block': 1, 'upscales': [2, 3],
               'num_recursions': [1, 2]}
    net = MultiScaleMRNet(**{k: v for k, v in network.items() if k != 'type'}).eval()
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        whole = net(x, 3)
    opt = _model_options({'tile': {'tile_size': 16}}, network, 'MultiScaleMRNetModel')
    model, messages = _tested(MultiScaleMRNetModel, opt, net, x, scale=torch.tensor([3]))
    radius = receptive_radius(infer_config(net.state_dict()), 3)
    assert model.output.shape == whole.shape == (1, 3, 120, 156)
    assert model.last_tile == 16 and f'overlap {radius} px' in messages[0]
    assert (model.output - whole).abs().max().item() <= 1e-5


@pytest.mark.parametrize('tile, message', [
    ({'tile_size': 0}, 'val:tile:tile_size must be a whole number >= 1'),
    ({'tile_pad': -1, 'tile_size': 8}, 'val:tile:tile_pad must be a whole number >= 0'),
    ({'tile_sise': 8}, 'val:tile:tile_sise is no tile option'),
    ({'max_memory': 'lots'}, "val:tile:max_memory 'lots': expected a positive size"),
    ({'max_memory': '1G', 'tile_size': 64}, 'not both'),
    (64, 'val:tile must be a mapping'),
])
def test_bad_tile_options_are_refused_by_name(tile, message):
    """By the model itself (a BasicSR checkout) and by the option checks of ``mrnet test`` and ``mrnet train``."""
    from mrnet_arch.models.mrnet_model import MRNetModel
    from mrnet_arch.preflight.checks import CheckError, check_types
    with pytest.raises(ValueError, match=re.escape(message)):
        MRNetModel(_model_options({'tile': tile}))
    with pytest.raises(CheckError, match=re.escape(message)):
        check_types(_model_options({'tile': tile}))


def test_tile_options_are_known_keys_and_need_mrnet_for_defaults():
    """``val: tile`` is a key of MRNetModel (not of SRModel); for another arch the overlap and the memory model
    are unknown, so ``tile_size`` needs ``tile_pad`` and ``max_memory`` is refused."""
    from mrnet_arch.models.mrnet_model import MRNetModel
    from mrnet_arch.models.mrnet_options import unknown_options
    assert unknown_options(_model_options({'tile': {'tile_size': 32}}))[0] == []
    assert unknown_options(_model_options({'tile': {'tile_size': 32}}, model_type='SRModel'))[0] == ['`val:tile`']
    bicubic = {'type': 'Bicubic', 'upscale': 2}
    with pytest.raises(ValueError, match='val:tile:tile_pad: give the tile overlap for Bicubic'):
        MRNetModel(_model_options({'tile': {'tile_size': 32}}, bicubic))
    with pytest.raises(ValueError, match="val:tile:max_memory: the memory model is MRNet's"):
        MRNetModel(_model_options({'tile': {'max_memory': '1G'}}, bicubic))
    model = MRNetModel(_model_options({'tile': {'tile_size': 16, 'tile_pad': 4}}, bicubic))
    x = torch.rand(1, 3, 30, 40)
    model.feed_data({'lq': x})
    model.test()
    assert model.last_tile == 16 and model.output.shape == (1, 3, 60, 80)


def test_a_large_photo_stays_within_an_address_space_limit(tmp_path):
    """``mrnet infer`` with default options in a child whose address space may grow by 768 MiB only: the budget
    follows the limit, the photo runs in tiles and the peak RSS grows by less than the limit. (The 4000x4000
    runs of ``benchmarks/big_image_memory.py`` are in ``benchmarks/results/``.)"""
    limit = 768 * 2**20
    big_image_memory = benchmark_script('big_image_memory')
    result = big_image_memory.limited_infer(640, limit, DEMO_WEIGHTS, str(tmp_path), extra=('--precision', 'fp32'))
    assert result['rc'] == 0, result.get('stderr_tail')
    assert result['tile_lines'] and 'budget' in result['tile_lines'][0]
    assert result['peak_rss_bytes'] - result['rss_before_bytes'] <= limit
    assert result['peak_rss_bytes'] <= 3 * 2**30
    out = cv2.imread(str(tmp_path / 'out640' / 'photo640.jpg'))
    assert out.shape == (1280, 1280, 3)


def test_mrnet_test_tiles_within_the_budget(tmp_path, monkeypatch):
    """``mrnet test`` (BasicSR's test pipeline) with a small ``$MRNET_MAX_MEMORY``: the demo model's forward runs
    in tiles, logged, and the saved SR image equals the untiled one up to float rounding."""
    from _photos import load_yaml, run_mrnet, save_yaml, write_photos
    from mrnet_arch.dataprep.prepare import prepare_benchmark
    src = write_photos(str(tmp_path / 'raw'), {'a.png': ('astronaut', 320, 400)})
    prepare_benchmark(src, str(tmp_path / 'datasets' / 'Set5'), [2])
    opt = load_yaml(osp.join(REPO, 'options', 'demo', 'test_MRNet_demo_x2.yml'))
    opt['datasets']['test_1'].update(dataroot_gt='datasets/Set5/GTmod12', dataroot_lq='datasets/Set5/LRbicx2')
    opt['path']['pretrain_network_g'], opt['num_gpu'] = DEMO_WEIGHTS, 0
    monkeypatch.setenv('MRNET_MAX_MEMORY', '60M')  # a whole 198x156 forward is estimated at about 152 MiB
    proc = run_mrnet(['test', '-opt', save_yaml(opt, tmp_path / 'test.yml')], tmp_path)
    assert 'test: 198x156 input in tiles of 40 px' in proc.stderr, proc.stderr[-3000:]  # GTmod12: 312x396
    saved = cv2.imread(str(tmp_path / 'results' / 'MRNet_demo_x2' / 'visualization' / 'DemoHeldout' /
                           'a_MRNet_demo_x2.png'))
    lr = cv2.imread(str(tmp_path / 'datasets' / 'Set5' / 'LRbicx2' / 'a.png'))
    whole = Upscaler.from_weights(DEMO_WEIGHTS, device='cpu', precision='fp32', max_memory='1G').upscale(lr)
    assert np.abs(saved.astype(int) - whole.astype(int)).max() <= 1
    monkeypatch.setenv('MRNET_MAX_MEMORY', 'lots')
    with pytest.raises(AssertionError, match='MRNET_MAX_MEMORY .lots.: expected a positive size'):
        run_mrnet(['test', '-opt', str(tmp_path / 'test.yml')], tmp_path)


def test_evaluation_memory_check_names_the_set_and_image():
    """A validation or test image whose whole float copies in BasicSR's evaluation would not fit in the memory
    available is refused, naming the set, the image, both sizes and the way out; one that fits passes."""
    from mrnet_arch.preflight.checks import CheckError
    from mrnet_arch.preflight.pipeline_memory import HELD_BYTES_PER_GT_PIXEL, check_evaluation_memory
    largest = {'test_1': ('pano.png', 12000, 24000)}
    needed = HELD_BYTES_PER_GT_PIXEL * 12000 * 24000
    check_evaluation_memory(largest, available=needed)
    with pytest.raises(CheckError) as err:
        check_evaluation_memory(largest, available=needed - 1)
    message = str(err.value)
    assert message.startswith('datasets:test_1: pano.png is 24000x12000 at the output size')
    assert mrnet_tiling.format_bytes(needed) in message and mrnet_tiling.format_bytes(needed - 1) in message
    assert 'mrnet infer' in message


def test_check_datasets_reports_the_largest_evaluation_image(tmp_path):
    """``check_datasets`` returns the largest output-size image of each validation/test set (GT of a paired set,
    LQ times the scale of a single-image set), from the image headers, and nothing for the training set."""
    from _photos import write_photos
    from mrnet_arch.dataprep.prepare import prepare_benchmark
    from mrnet_arch.preflight.checks import check_datasets
    src = write_photos(str(tmp_path / 'raw'), {'a.png': ('astronaut', 120, 96), 'b.png': ('coffee', 96, 240)})
    folders = prepare_benchmark(src, str(tmp_path / 'set'), [2])
    paired = {'type': 'PairedImageDataset', 'dataroot_gt': folders['gt'], 'dataroot_lq': folders[2],
              'io_backend': {'type': 'disk'}, 'scale': 2}
    single = {'type': 'SingleImageDataset', 'dataroot_lq': folders[2], 'io_backend': {'type': 'disk'}, 'scale': 2}
    train = dict(paired, gt_size=48)
    largest = check_datasets({'scale': 2, 'datasets': {'train': train, 'val': paired, 'test_1': single}})
    assert largest == {'val': (osp.join(folders['gt'], 'b.png'), 96, 240), 'test_1': ('b.png', 96, 240)}


def test_mrnet_test_refuses_an_image_too_large_for_its_evaluation(tmp_path):
    """``mrnet test`` in a child whose address space may grow by 300 MiB only, on an 1800x1800 GT photo (about
    540 MiB held by BasicSR's evaluation): refused with the message before the results folder exists."""
    from _photos import env, load_yaml, save_yaml
    from mrnet_arch.dataprep.prepare import prepare_benchmark
    big_image_memory = benchmark_script('big_image_memory')
    (tmp_path / 'raw').mkdir()
    big_image_memory.make_photo(str(tmp_path / 'raw' / 'big.jpg'), 1800)
    prepare_benchmark(str(tmp_path / 'raw'), str(tmp_path / 'datasets' / 'Big'), [2])
    opt = load_yaml(osp.join(REPO, 'options', 'demo', 'test_MRNet_demo_x2.yml'))
    opt['datasets']['test_1'].update(dataroot_gt='datasets/Big/GTmod12', dataroot_lq='datasets/Big/LRbicx2')
    opt['path']['pretrain_network_g'], opt['num_gpu'] = DEMO_WEIGHTS, 0
    proc = subprocess.run([sys.executable, '-c', big_image_memory.CHILD, str(300 * 2**20), 'test', '-opt',
                           save_yaml(opt, tmp_path / 'test.yml')], cwd=str(tmp_path), env=env(str(tmp_path)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'datasets:test_1: ' in proc.stderr and 'big.png is 1800x1800 at the output size' in proc.stderr, \
        proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'results').exists()


def test_mrnet_train_tiles_its_validation_forwards(tmp_path):
    """``mrnet train`` with validation and a small ``$MRNET_MAX_MEMORY``: the validation forwards of the tiny
    MRNet run in the tiles the memory model chooses (logged), training forwards are untouched, and the run ends
    with its validation scores."""
    from _tiny import env, make_pairs, train_options, write_yml
    root = str(tmp_path)
    train = make_pairs(osp.join(root, 'train'), n=2, size=48)
    val = make_pairs(osp.join(root, 'val'), n=1, size=120)  # GT 120x120, LQ 60x60
    opt = train_options('valtiles', train, val, total_iter=2, save_freq=2, val_freq=2)
    config = infer_config(MRNet(**{k: v for k, v in opt['network_g'].items() if k != 'type'}).state_dict())
    pad = receptive_radius(config, 2)
    budget = int(mrnet_tiling.mrnet_bytes_per_pixel(config, 2) * (16 + 2 * pad)**2)  # room for tiles of 16 px
    tile = mrnet_tiling.choose_tile(mrnet_tiling.mrnet_bytes_per_pixel(config, 2), 60, 60, budget, pad)
    assert 16 <= tile < 60
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'train', '-opt',
                           write_yml(opt, osp.join(root, 'train.yml'))], cwd=root,
                          env=env(root, MRNET_MAX_MEMORY=str(budget)), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert out.count(f'test: 60x60 input in tiles of {tile} px (overlap {pad} px)') == 2, out[-4000:]  # iter 2, end
    assert len(re.findall(r'Validation tiny_val\s+# psnr: [0-9.]+', out)) == 2
