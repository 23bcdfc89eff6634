"""Faults and what ``mrnet train`` / ``mrnet test`` do about them (see docs/reliability.md).

Training runs here go through ``mrnet_arch.commands.pipelines.train`` in this process (a few tiny iterations each);
the kill test (test_killsafe.py) and the distributed test (test_distributed.py) use real subprocesses.
"""
import copy
import errno
import glob
import os
import re
import shutil
from os import path as osp

import cv2
import pytest
import torch

import _tiny
from mrnet_arch import compat
from mrnet_arch.commands import pipelines as entry
from mrnet_arch.models.mrnet_checkpoint import DiskFullError
from mrnet_arch.preflight import checks
from mrnet_arch.preflight.checks import CheckError


def _setup(root, name='tiny', val=True, **kwargs):
    train = _tiny.make_pairs(str(root / 'data' / 'train'), n=4, size=40)
    valset = _tiny.make_pairs(str(root / 'data' / 'val'), n=2, size=36) if val else None
    opt = _tiny.train_options(name, train, valset, **kwargs)
    return opt, _tiny.write_yml(opt, str(root / f'{name}.yml'))


def _check(opt, root, name='case'):
    """``check_options`` on ``opt`` after basicsr's own option parsing."""
    checks.check_options(_tiny.parse(_tiny.write_yml(opt, str(root / f'{name}.yml')), str(root)))


def _loads(path):
    return torch.load(path, map_location='cpu', weights_only=True)


# ------------------------------------------------------------------------------------------- resume


def test_auto_resume_without_complete_state_starts_fresh_and_keeps_old_folder(root, capsys, monkeypatch):
    opt, yml = _setup(root, total_iter=2, save_freq=2, val=False)
    exp = root / 'experiments' / 'tiny'
    (exp / 'models').mkdir(parents=True)
    (exp / 'training_states').mkdir()
    (exp / 'notes.txt').write_text('my notes')
    (exp / 'models' / 'net_g_4.pth').write_bytes(b'PK\x03\x04cut')
    (exp / 'training_states' / '4.state').write_bytes(b'PK\x03\x04cut')

    entry.train(['-opt', yml, '--auto_resume'])

    assert 'skipping incomplete training state' in capsys.readouterr().err
    archived = glob.glob(str(root / 'experiments' / 'tiny_archived_*'))
    assert len(archived) == 1
    assert open(osp.join(archived[0], 'notes.txt')).read() == 'my notes'
    assert open(osp.join(archived[0], 'training_states', '4.state'), 'rb').read() == b'PK\x03\x04cut'
    assert _loads(exp / 'training_states' / '2.state')['iter'] == 2

    # fresh starts within the same second (same archive time stamp) still keep every earlier folder
    monkeypatch.setattr('basicsr.utils.misc.get_time_str', lambda: '20260101_000000')
    entry.train(['-opt', yml])
    entry.train(['-opt', yml])
    assert len(glob.glob(str(root / 'experiments' / 'tiny_archived_*'))) == 3


def test_resume_skips_cut_short_state_restores_everything_and_keeps_opt_copy(root, capsys, monkeypatch):
    from mrnet_arch.models.mrnet_model import MRNetModel
    opt, yml = _setup(root, total_iter=4, save_freq=2, val=False, milestones=(3, ))
    entry.train(['-opt', yml])
    exp = root / 'experiments' / 'tiny'
    first_copy = (exp / 'tiny.yml').read_text()
    # a kill (old basicsr: non-atomic save) cut the newest state short and left a temp file behind
    (exp / 'training_states' / '4.state').write_bytes((exp / 'training_states' / '4.state').read_bytes()[:100])
    (exp / 'models' / '.net_g_6.pth.abc123.tmp').write_bytes(b'partial')
    saved_state = _loads(exp / 'training_states' / '2.state')
    saved_net = _loads(exp / 'models' / 'net_g_2.pth')['params']

    resumed = {}
    original = MRNetModel.resume_training

    def spy(self, state):
        original(self, state)
        resumed['opt'] = copy.deepcopy(self.optimizers[0].state_dict())  # live tensors change later
        resumed['sched'] = copy.deepcopy(self.schedulers[0].state_dict())
        resumed['net'] = {k: v.clone() for k, v in self.net_g.state_dict().items()}
        resumed['lr'] = self.get_current_learning_rate()

    monkeypatch.setattr(MRNetModel, 'resume_training', spy)
    entry.train(['-opt', yml, '--auto_resume', '--force_yml', 'train:total_iter=6'])

    err = capsys.readouterr().err
    assert 'skipping incomplete training state' in err and '4.state' in err
    assert not glob.glob(str(exp / 'models' / '.*.tmp'))
    # network, optimizer (Adam moments and step) and scheduler are those of iteration 2
    assert resumed['net'].keys() == saved_net.keys()
    assert all(torch.equal(resumed['net'][k], saved_net[k]) for k in saved_net)
    saved_opt = saved_state['optimizers'][0]
    assert resumed['opt']['param_groups'] == saved_opt['param_groups']
    for key, value in saved_opt['state'].items():
        assert float(resumed['opt']['state'][key]['step']) == float(value['step']) == 2
        assert torch.equal(resumed['opt']['state'][key]['exp_avg'], value['exp_avg'])
        assert torch.equal(resumed['opt']['state'][key]['exp_avg_sq'], value['exp_avg_sq'])
    # basicsr steps the scheduler from iteration 2 on, so its last_epoch is the iteration - 1
    assert resumed['sched']['last_epoch'] == saved_state['schedulers'][0]['last_epoch'] == 1
    # the run went on from iteration 3 to 6; MultiStepLR halved the lr at iteration 4 (last_epoch 3)
    assert _loads(exp / 'training_states' / '6.state')['iter'] == 6
    assert _loads(exp / 'training_states' / '6.state')['optimizers'][0]['param_groups'][0]['lr'] == pytest.approx(5e-4)
    # the option copy of the first run is kept; the resumed run's copy sits beside it
    assert (exp / 'tiny.yml').read_text() == first_copy
    assert len(glob.glob(str(exp / 'tiny_*.yml'))) == 1


def test_disk_full_while_writing_checkpoint_keeps_previous_one(root, monkeypatch):
    opt, yml = _setup(root, total_iter=6, save_freq=2, val=False)
    real_save = torch.save
    calls = {'n': 0}

    def save_until_disk_full(obj, f, *args, **kwargs):
        calls['n'] += 1
        if calls['n'] <= 2:  # the checkpoint and training state of iteration 2
            return real_save(obj, f, *args, **kwargs)
        f.write(b'PK\x03\x04 half a checkpoint')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', save_until_disk_full)
    with pytest.raises(DiskFullError, match=r'.*models: the disk is full \(No space left on device\) '
                       r'while writing net_g_4\.pth; .*unchanged \(--auto_resume continues from the newest\)'):
        entry.train(['-opt', yml])
    monkeypatch.setattr(torch, 'save', real_save)

    exp = root / 'experiments' / 'tiny'
    assert sorted(os.listdir(exp / 'models')) == ['net_g_2.pth']  # no cut-short file, no temp file
    assert sorted(os.listdir(exp / 'training_states')) == ['2.state']
    assert _loads(exp / 'training_states' / '2.state')['iter'] == 2
    assert _loads(exp / 'models' / 'net_g_2.pth')['params']

    entry.train(['-opt', yml, '--auto_resume'])
    assert _loads(exp / 'training_states' / '6.state')['iter'] == 6


def _nan_loss_from_iteration(monkeypatch, first):
    """Make basicsr's L1 loss NaN from training iteration ``first`` on (one loss call per iteration)."""
    from basicsr.losses.basic_loss import L1Loss
    real_forward = L1Loss.forward
    calls = {'n': 0}

    def forward(self, pred, target, weight=None, **kwargs):
        calls['n'] += 1
        loss = real_forward(self, pred, target, weight, **kwargs)
        return loss * float('nan') if calls['n'] >= first else loss

    monkeypatch.setattr(L1Loss, 'forward', forward)


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(root, monkeypatch):
    opt, yml = _setup(root, total_iter=8, save_freq=2, val=False)
    _nan_loss_from_iteration(monkeypatch, 5)
    with pytest.raises(FloatingPointError, match='(?s)Loss is nan at iteration 5.*last good one'):
        entry.train(['-opt', yml])

    exp = root / 'experiments' / 'tiny'
    assert sorted(os.listdir(exp / 'training_states')) == ['2.state', '4.state']
    params = _loads(exp / 'models' / 'net_g_4.pth')['params']
    assert all(torch.isfinite(v).all() for v in params.values())


def test_finite_check_every_n_iterations_still_keeps_the_last_good_checkpoint(root, monkeypatch):
    """With ``train:finite_check_freq: 3`` the loss is read on the host every 3rd iteration and at every save:
    a NaN from iteration 5 stops the run at 6, and no checkpoint after it is written."""
    opt, yml = _setup(root, total_iter=12, save_freq=4, val=False)
    opt['train']['finite_check_freq'] = 3
    _tiny.write_yml(opt, yml)
    _nan_loss_from_iteration(monkeypatch, 5)
    with pytest.raises(FloatingPointError, match='(?s)not finite at one of iterations 5-6.*last good one'):
        entry.train(['-opt', yml])
    exp = root / 'experiments' / 'tiny'
    assert sorted(os.listdir(exp / 'training_states')) == ['4.state']
    assert all(torch.isfinite(v).all() for v in _loads(exp / 'models' / 'net_g_4.pth')['params'].values())


@pytest.mark.parametrize('value', [0, -2, 1.5, True, 'often'])
def test_finite_check_freq_must_be_a_whole_number(root, value):
    """Refused by the checks before any folder exists, and by the model class itself (a BasicSR checkout)."""
    from basicsr.models import build_model
    opt, yml = _setup(root, total_iter=2, val=False)
    opt['train']['finite_check_freq'] = value
    _tiny.write_yml(opt, yml)
    with pytest.raises(CheckError, match='train:finite_check_freq must be a whole number >= 1'):
        entry.train(['-opt', yml])
    assert not (root / 'experiments').exists()
    parsed = _tiny.parse(yml, str(root))
    with pytest.raises(ValueError, match='train:finite_check_freq must be a whole number >= 1'):
        build_model(parsed)


# ---------------------------------------------------------------------------------------- bad input


@pytest.fixture
def case(root):
    """Valid options (train + benchmark folders) to break one thing at a time."""
    opt, _ = _setup(root, val=True)
    _check(opt, root, 'valid')  # the unbroken options pass
    return opt


def _corrupt(path):
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n this is not an image')


def _cut_short(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) * 3 // 4])


@pytest.mark.parametrize('phase,damage,message', [
    ('train', _corrupt, 'not a readable image'),
    ('train', _cut_short, 'cut short'),
    ('val', _corrupt, 'not a readable image'),
    ('val', _cut_short, 'cut short'),
])
def test_corrupt_or_truncated_image_is_named(case, root, phase, damage, message):
    bad = osp.join(case['datasets'][phase]['dataroot_gt'], '0001.png')
    damage(bad)
    with pytest.raises(CheckError, match='(?s)' + message) as info:
        _check(case, root)
    assert bad in str(info.value) and f'datasets:{phase}:dataroot_gt' in str(info.value)


def test_truncated_jpeg_is_named(case, root):
    folder = case['datasets']['val']['dataroot_lq']
    for key in ('dataroot_lq', 'dataroot_gt'):
        png = osp.join(case['datasets']['val'][key], '0000.png')
        cv2.imwrite(png.replace('.png', '.jpg'), cv2.imread(png))
        os.remove(png)
    _check(case, root, 'jpeg_ok')
    _cut_short(osp.join(folder, '0000.jpg'))
    with pytest.raises(CheckError, match=r'(?s)0000\.jpg: cut short'):
        _check(case, root)


def test_non_image_file_is_named(case, root):
    open(osp.join(case['datasets']['train']['dataroot_lq'], 'Thumbs.db'), 'wb').write(b'\0' * 10)
    with pytest.raises(CheckError, match=r'(?s)not images.*Thumbs\.db \(expected one of \.png'):
        _check(case, root)


@pytest.mark.parametrize('phase', ['train', 'val'])
def test_sizes_that_do_not_match_the_scale(case, root, phase):
    lq = osp.join(case['datasets'][phase]['dataroot_lq'], '0001.png')
    img = cv2.imread(lq)
    cv2.imwrite(lq, cv2.resize(img, (img.shape[1] * 2 // 3, img.shape[0] * 2 // 3)))  # an x3 LR
    with pytest.raises(CheckError, match=r'(?s)do not match scale 2.*0001\.png is \d+x\d+ but .*0001\.png is'):
        _check(case, root)


def test_lr_smaller_than_the_training_patch(case, root):
    case['datasets']['train']['gt_size'] = 64
    with pytest.raises(CheckError, match=r'(?s)smaller than gt_size 64 / scale 2'):
        _check(case, root)


def test_lr_and_hr_file_names_that_do_not_pair(case, root):
    folder = case['datasets']['train']['dataroot_lq']
    for name in os.listdir(folder):
        os.rename(osp.join(folder, name), osp.join(folder, name.replace('.png', 'x2.png')))
    with pytest.raises(CheckError, match=r"(?s)do not pair up by name.*4 GT image\(s\) have no LQ file.*"
                       r"filename_tmpl: '\{\}x2'") as info:
        _check(case, root)
    assert 'missing LQ 0000.png' in str(info.value)
    case['datasets']['train']['filename_tmpl'] = '{}x2'
    _check(case, root, 'fixed')


@pytest.mark.parametrize('key', ['dataroot_lq', 'dataroot_gt'])
def test_empty_or_missing_folder(case, root, key):
    folder = case['datasets']['val'][key]
    shutil.rmtree(folder)
    with pytest.raises(CheckError, match=f'(?s)datasets:val:{key}: folder not found: {folder}'):
        _check(case, root)
    os.makedirs(folder)
    with pytest.raises(CheckError, match=f'(?s)datasets:val:{key}: no images in {folder}'):
        _check(case, root)


def test_lmdb_missing_or_incomplete(case, root):
    train = case['datasets']['train']
    lq_lmdb, gt_lmdb = _tiny.make_lmdbs(train['dataroot_lq'], train['dataroot_gt'])
    train.update(dataroot_lq=lq_lmdb, dataroot_gt=gt_lmdb, io_backend={'type': 'lmdb'})
    _check(case, root, 'lmdb_ok')

    lq_meta = osp.join(lq_lmdb, 'meta_info.txt')
    lines = open(lq_meta).read()
    open(lq_meta, 'w').write(''.join(line for line in lines.splitlines(True) if not line.startswith('0003')))
    with pytest.raises(CheckError, match=r'(?s)different keys.*0003 only in .*GT\.lmdb'):
        _check(case, root)
    open(lq_meta, 'w').write(lines + '9999.png (20,20,3) 1\n')
    with pytest.raises(CheckError, match=r'(?s)dataroot_lq: keys listed in meta_info\.txt but missing from '
                       r'.*LR\.lmdb/data\.mdb:\s+9999'):
        _check(case, root)
    os.remove(lq_meta)
    with pytest.raises(CheckError, match=r'(?s)dataroot_lq: .*LR\.lmdb/meta_info\.txt not found'):
        _check(case, root)
    train['dataroot_lq'] = str(root / 'nowhere.lmdb')
    with pytest.raises(CheckError, match=r'(?s)nowhere\.lmdb/data\.mdb not found'):
        _check(case, root)


def test_missing_meta_info_file(case, root):
    case['datasets']['train']['meta_info_file'] = str(root / 'meta_info_train.txt')
    with pytest.raises(CheckError, match=r'(?s)datasets:train:meta_info_file not found: .*meta_info_train\.txt'):
        _check(case, root)
    (root / 'meta_info_train.txt').write_text('0000.png (40,40,3)\n0007.png (40,40,3)\n')
    with pytest.raises(CheckError, match=r'(?s)listed in .*meta_info_train\.txt but not in .*GT:\s+0007\.png'):
        _check(case, root)


def test_unknown_network_argument_lists_valid_ones(case, root):
    case['network_g']['num_feats'] = 8
    with pytest.raises(CheckError, match=r"(?s)network_g: MRNet has no argument 'num_feats'\. Valid arguments: "
                       r'num_in_ch=3, .*num_feat=64, .*num_recursion=4'):
        _check(case, root)


@pytest.mark.parametrize('key,value,message', [
    ('num_feat', 8.5, 'network_g:num_feat must be int like its default 64, got 8.5'),
    ('upscale', '2', "network_g:upscale must be int like its default 2, got '2'"),
    ('recursive_module', 'lstm', 'building MRNet.*recursive_module must be one of'),
])
def test_network_argument_of_the_wrong_type_or_value(case, root, key, value, message):
    case['network_g'][key] = value
    with pytest.raises(CheckError, match='(?s)' + message):
        _check(case, root)


def test_option_of_the_wrong_type(case, root):
    with open(str(root / 'lr.yml'), 'w') as f:  # YAML itself turns 2e-4 into a string
        f.write(open(_tiny.write_yml(case, str(root / 'base.yml'))).read().replace('lr: 0.001', 'lr: 2e-4'))
    with pytest.raises(CheckError, match=r"(?s)train:optim_g:lr must be a number, got '2e-4'.*!!float 2e-4"):
        checks.check_options(_tiny.parse(str(root / 'lr.yml'), str(root)))
    case['network_g']['type'] = 'MRNett'
    with pytest.raises(CheckError, match="(?s)network_g:type 'MRNett' is not registered.*Did you mean MRNet"):
        _check(case, root)


def test_names_that_basicsrs_registry_finds_through_its_suffix_fallback_are_registered():
    """BasicSR registers its copies of Real-ESRGAN's code as ``<name>_basicsr``, and ``Registry.get(name)`` finds
    them under the plain name: so do the checks (``model_type: RealESRGANModel`` is valid BasicSR)."""
    from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY
    from mrnet_arch.models.mrnet_options import registry_lookup
    from mrnet_arch.preflight.check_report import registered
    assert 'SRVGGNetCompact' not in ARCH_REGISTRY and 'SRVGGNetCompact_basicsr' in ARCH_REGISTRY
    assert registered(ARCH_REGISTRY, 'SRVGGNetCompact', 'network_g:type') is ARCH_REGISTRY.get('SRVGGNetCompact')
    assert registry_lookup(MODEL_REGISTRY, 'RealESRGANModel') is MODEL_REGISTRY.get('RealESRGANModel_basicsr')
    assert registry_lookup(ARCH_REGISTRY, 'MRNet') is ARCH_REGISTRY.get('MRNet')  # a plain name comes first
    assert registry_lookup(ARCH_REGISTRY, 'NoSuchArch') is None and registry_lookup(ARCH_REGISTRY, ['MRNet']) is None
    with pytest.raises(CheckError, match="network_g:type 'SRVGGNetCompakt' is not registered"):
        registered(ARCH_REGISTRY, 'SRVGGNetCompakt', 'network_g:type')


def test_weights_of_another_scale_or_arch(case, root):
    from mrnet_arch import MRNet
    x3 = str(root / 'mrnet_x3.pth')
    torch.save({'params': MRNet(num_feat=8, num_block=1, num_recursion=2, upscale=3).state_dict()}, x3)
    case['path']['pretrain_network_g'] = x3
    with pytest.raises(CheckError, match=r'(?s)pretrain_network_g: .*mrnet_x3\.pth does not fit network_g = MRNet\('
                       r'.*upscale=2\).*fuse\.weight: expected \(32, 2, 1, 1\), found \(72, 2, 1, 1\)'):
        _check(case, root)

    from basicsr.archs.srresnet_arch import MSRResNet
    other = str(root / 'msrresnet.pth')
    torch.save({'params': MSRResNet(num_feat=8, num_block=1, upscale=2).state_dict()}, other)
    case['path']['pretrain_network_g'] = other
    with pytest.raises(CheckError, match=r'(?s)msrresnet\.pth does not fit .*missing, .*unexpected'):
        _check(case, root)

    case['path']['pretrain_network_g'] = str(root / 'none.pth')
    with pytest.raises(CheckError, match=r'(?s)path:pretrain_network_g: weight file not found: .*none\.pth'):
        _check(case, root)


def test_matching_weights_in_every_format_the_model_loads_pass(case, root):
    """BasicSR checkpoints, plain state dicts and safetensors: what MRNetModel.load_network reads, the check
    accepts."""
    from safetensors.torch import save_file

    from mrnet_arch import MRNet
    state = MRNet(**{k: v for k, v in case['network_g'].items() if k != 'type'}).state_dict()
    files = {'ckpt.pth': lambda p: torch.save({'params_ema': state}, p),
             'plain.pth': lambda p: torch.save(state, p),
             'weights.safetensors': lambda p: save_file({k: v.contiguous() for k, v in state.items()}, p)}
    for name, write in files.items():
        write(str(root / name))
        case['path']['pretrain_network_g'] = str(root / name)
        _check(case, root, name)


def test_dataset_iteration_still_ends_with_index_error(case, root):
    """The file-naming wrapper of the entry points' fixes lets IndexError through: ``for x in dataset`` must end."""
    from basicsr.data import build_dataset
    opt = _tiny.parse(_tiny.write_yml(case, str(root / 'x.yml')), str(root))
    with compat.pipeline_fixes():
        dataset = build_dataset(opt['datasets']['val'])
        assert len([sample for sample in dataset]) == len(dataset.paths)


def test_test_entry_checks_the_benchmark_folder(case, root):
    from mrnet_arch import MRNet
    weights = str(root / 'w.pth')
    torch.save({'params': MRNet(num_feat=8, num_block=1, num_recursion=2, upscale=2).state_dict()}, weights)
    val = dict(case['datasets']['val'])
    _corrupt(osp.join(val['dataroot_lq'], '0000.png'))
    test_opt = {'name': 'tiny_test', 'model_type': 'MRNetModel', 'scale': 2, 'num_gpu': 0, 'manual_seed': 0,
                'datasets': {'test_1': val}, 'network_g': case['network_g'],
                'path': {'pretrain_network_g': weights, 'strict_load_g': True},
                'val': {'save_img': False, 'metrics': case['val']['metrics']}}
    yml = _tiny.write_yml(test_opt, str(root / 'test.yml'))
    message = r'(?s).*datasets:test_1:dataroot_lq: unreadable images.*0000\.png'
    with pytest.raises(CheckError, match=message):
        entry.test(['-opt', yml])
    assert not (root / 'results').exists()


def test_decode_failure_inside_the_dataset_names_the_file(case, root):
    """Bypassing the checks (a file damaged after the run started), the loader error names the file."""
    from basicsr.data import build_dataset
    opt = _tiny.parse(_tiny.write_yml(case, str(root / 'x.yml')), str(root))
    dataset = build_dataset(opt['datasets']['val'])
    bad = dataset.paths[1]
    _corrupt(bad['gt_path'])
    with compat.pipeline_fixes():
        assert dataset[0]['gt'].shape[0] == 3
        with pytest.raises(RuntimeError, match=f"could not load lq={re.escape(bad['lq_path'])}, "
                           f"gt={re.escape(bad['gt_path'])}: AttributeError"):
            dataset[1]
