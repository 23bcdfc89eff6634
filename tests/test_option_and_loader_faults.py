"""More faults and what the commands do about them (see docs/reliability.md): ``mrnet bench``'s exit status, the
option type checks, ``strict_load_g``, the GT size margin, and a damaged image read in a DataLoader worker."""
import struct
import zlib
from os import path as osp

import cv2
import pytest
import torch

import _tiny
from mrnet_arch import MRNet
from mrnet_arch.preflight import checks
from mrnet_arch.preflight.checks import CheckError

TINY_NET = {'num_feat': 8, 'num_block': 1, 'num_recursion': 2, 'upscale': 2}


@pytest.fixture
def case(tmp_path):
    """Options of a tiny x2 training run (train and val sets of real photo crops) under ``tmp_path``."""
    train = _tiny.make_pairs(str(tmp_path / 'data' / 'train'), n=4, size=40)
    val = _tiny.make_pairs(str(tmp_path / 'data' / 'val'), n=2, size=36)
    return _tiny.train_options('tiny', train, val)


def _check(opt, root, name='case'):
    """``check_options`` on ``opt`` after basicsr's own option parsing."""
    checks.check_options(_tiny.parse(_tiny.write_yml(opt, str(root / f'{name}.yml')), str(root)))


def _set(opt, keys, value):
    for key in keys[:-1]:
        opt = opt[key]
    opt[keys[-1]] = value


# ------------------------------------------------------------------------------------------- bench


def test_bench_exits_non_zero_when_a_precision_fails(tmp_path, capsys):
    """fp16 needs CUDA: on the CPU it fails for the model, so the run fails although fp32 worked."""
    from mrnet_arch.commands.bench.command import main
    args = ['--models', 'MRNet:num_feat=8,num_block=1,num_recursion=2', '--device', 'cpu', '--lr-size', '12', '16',
            '--repeat', '1', '--warmup', '0', '--output-dir', str(tmp_path)]
    assert main(args + ['--precision', 'fp32', '--name', 'ok']) == 0
    assert main(args + ['--precision', 'fp32', 'fp16', '--name', 'half']) == 1
    assert "failed: ['MRNet fp16']" in capsys.readouterr().err
    assert osp.isfile(tmp_path / 'half.json')  # the results are written all the same


# ------------------------------------------------------------------------------------------- types


@pytest.mark.parametrize('keys,value,message', [
    (('scale', ), '2x', r"scale must be an integer, got '2x' \(str\)"),
    (('train', 'total_iter'), 'many', "train:total_iter must be an integer, got 'many'"),
    (('val', 'val_freq'), 2.5, r'val:val_freq must be an integer, got 2\.5 \(float\)'),
    (('logger', 'print_freq'), '10', r"logger:print_freq must be an integer, got '10' \(str\) \(YAML read it as text"),
    (('logger', 'save_checkpoint_freq'), [5], r'logger:save_checkpoint_freq must be an integer, got \[5\] \(list\)'),
    (('datasets', 'train', 'batch_size_per_gpu'), 2.5, 'datasets:train:batch_size_per_gpu must be an integer'),
    (('datasets', 'train', 'gt_size'), '32', "datasets:train:gt_size must be an integer, got '32'"),
    (('datasets', 'train', 'lq_size'), 'big', "datasets:train:lq_size must be an integer, got 'big'"),
    (('train', 'scheduler', 'milestones'), [1000, 'x'], r"train:scheduler:milestones\[1\] must be an integer, got 'x'"),
    (('datasets', 'train', 'scales'), [2, 3.5], r'datasets:train:scales\[1\] must be an integer, got 3.5'),
    (('datasets', 'train', 'scales'), 2, r'datasets:train:scales must be a list of integers like \[2, 3, 4\], got 2'),
])
def test_option_of_the_wrong_type_is_named(case, tmp_path, keys, value, message):
    _set(case, keys, value)
    with pytest.raises(CheckError, match='(?s)Options of the wrong type.*' + message):
        checks.check_options(case)


def test_integer_valued_floats_pass(case, tmp_path):
    """``val_freq: 5000.0`` (the generated option files' style) and ``total_iter: 20.0`` are integers."""
    case['val']['val_freq'] = 5000.0
    case['train']['total_iter'] = 20.0
    _check(case, tmp_path)


# ---------------------------------------------------------------------------------------- strict load


def test_strict_load_false_loads_weights_with_a_missing_and_an_extra_key(case, tmp_path):
    from basicsr.models import build_model
    state = MRNet(**TINY_NET).state_dict()
    missing = 'conv_first.bias' if 'conv_first.bias' in state else sorted(state)[0]
    state = {k: v + 1 for k, v in state.items() if k != missing}
    state['extra.weight'] = torch.zeros(3)
    weights = str(tmp_path / 'partial.pth')
    torch.save({'params': state}, weights)
    case['path']['pretrain_network_g'] = weights
    with pytest.raises(CheckError, match=rf'(?s)path:pretrain_network_g: .*partial\.pth does not fit .*1 tensor\(s\) '
                       rf'missing, 1 unexpected \(set path:strict_load_g: false.*missing {missing}.*unexpected '
                       r'extra\.weight'):
        _check(case, tmp_path)
    case['path']['strict_load_g'] = False
    _check(case, tmp_path, 'lenient')
    opt = _tiny.parse(str(tmp_path / 'lenient.yml'), str(tmp_path))
    model = build_model(opt)  # MRNetModel.load_network with strict=False
    loaded = model.net_g.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k in loaded)
    assert 'extra.weight' not in loaded and missing in loaded


# ------------------------------------------------------------------------------------------- GT size


def test_validation_gt_may_be_at_most_scale_minus_one_pixels_larger(case, tmp_path):
    """For val/test BasicSR crops GT to scale x LR, so 1 extra pixel passes at x2 and 2 do not; training wants
    exactly scale x LR."""
    val_gt = osp.join(case['datasets']['val']['dataroot_gt'], '0001.png')
    gt = cv2.imread(val_gt)  # 36x36, LR 18x18
    cv2.imwrite(val_gt, cv2.copyMakeBorder(gt, 0, 1, 0, 1, cv2.BORDER_REFLECT))
    _check(case, tmp_path, 'plus_one')
    cv2.imwrite(val_gt, cv2.copyMakeBorder(gt, 0, 2, 0, 2, cv2.BORDER_REFLECT))
    with pytest.raises(CheckError, match=r'(?s)datasets:val:dataroot_lq: GT/LQ sizes do not match scale 2.*'
                       r'0001\.png is 38x38 but .*0001\.png is 18x18: for scale 2 GT must be 36x36 \(up to 1 more'):
        _check(case, tmp_path)
    cv2.imwrite(val_gt, gt)
    train_gt = osp.join(case['datasets']['train']['dataroot_gt'], '0002.png')
    cv2.imwrite(train_gt, cv2.copyMakeBorder(cv2.imread(train_gt), 0, 1, 0, 1, cv2.BORDER_REFLECT))
    with pytest.raises(CheckError, match=r'(?s)datasets:train:dataroot_lq: GT/LQ sizes do not match scale 2.*'
                       r'0002\.png is 41x41 but .*0002\.png is 20x20: for scale 2 GT must be exactly 40x40'):
        _check(case, tmp_path)


# -------------------------------------------------------------------------------- loader worker


def _damage_first_idat(path):
    """Zero the first ``IDAT`` chunk's data (the zlib stream's header included) and fix its CRC: the file keeps
    its header, a valid chunk layout and ``IEND``, so only decoding it fails."""
    data = bytearray(open(path, 'rb').read())
    pos = data.index(b'IDAT') - 4
    length = struct.unpack('>I', data[pos:pos + 4])[0]
    data[pos + 8:pos + 8 + length] = bytes(length)
    data[pos + 8 + length:pos + 12 + length] = struct.pack('>I', zlib.crc32(bytes(data[pos + 4:pos + 8 + length])))
    open(path, 'wb').write(bytes(data))


def test_image_damaged_past_the_checks_is_named_from_a_loader_worker(tmp_path):
    """A training PNG whose image data is damaged passes the header checks; read in a DataLoader worker
    (``num_worker_per_gpu: 1``) by ``mrnet train``, the run fails naming the file."""
    from mrnet_arch.storage.images import image_size
    train = _tiny.make_pairs(str(tmp_path / 'data' / 'train'), n=4, size=40)
    opt = _tiny.train_options('worker', train, total_iter=6, save_freq=100, batch=4, augment=False)
    opt['datasets']['train']['num_worker_per_gpu'] = 1
    bad = osp.join(train[1], '0002.png')
    _damage_first_idat(bad)
    assert image_size(bad) == ((40, 40), None)  # the header and the end marker are intact
    assert cv2.imread(bad) is None
    proc = _tiny.run_train(_tiny.write_yml(opt, str(tmp_path / 'worker.yml')), str(tmp_path), timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert 'DataLoader worker' in output and f'gt={bad}' in output and 'could not load' in output, output[-3000:]
    assert osp.isdir(tmp_path / 'experiments' / 'worker')  # the checks had passed: training had started
