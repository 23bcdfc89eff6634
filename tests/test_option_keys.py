"""Option files are checked before anything moves: unknown keys (with the closest known one), YAML syntax,
keys BasicSR needs, ``--force_yml``, missing weight and resume files; in ``mrnet train`` / ``mrnet test`` before
an experiment or results folder is created or renamed, and in ``MRNetModel`` itself (a checkout's train.py)."""
import copy
import os

import pytest
import torch

import _tiny
from mrnet_arch.commands import pipelines as entry
from mrnet_arch.preflight import checks
from mrnet_arch.preflight.checks import CheckError


@pytest.fixture
def case(root):
    train = _tiny.make_pairs(str(root / 'data' / 'train'), n=2, size=40)
    val = _tiny.make_pairs(str(root / 'data' / 'val'), n=1, size=36)
    return _tiny.train_options('tiny', train, val, total_iter=2, save_freq=2, val_freq=2)


def _set(opt, keys, value):
    section = opt
    for key in keys[:-1]:
        section = section[key]
    section[keys[-1]] = value


def _parsed(opt, root, name='case'):
    return _tiny.parse(_tiny.write_yml(opt, str(root / f'{name}.yml')), str(root))


def _old_experiment(root):
    """An experiment folder from an earlier run, which a failed start must leave where it is."""
    old = root / 'experiments' / 'tiny'
    old.mkdir(parents=True)
    (old / 'notes.txt').write_text('earlier run')
    return old


def _untouched(root, old):
    assert sorted(os.listdir(root / 'experiments')) == ['tiny']
    assert (old / 'notes.txt').read_text() == 'earlier run'


@pytest.mark.parametrize('keys, typo, suggestion', [
    (('path', ), 'pretrain_netwrok_g', 'pretrain_network_g'),
    ((), 'manual_sed', 'manual_seed'),
    (('datasets', 'train'), 'gt_szie', 'gt_size'),
    (('datasets', 'train'), 'use_hflp', 'use_hflip'),
    (('datasets', 'val'), 'filename_tmp', 'filename_tmpl'),
    (('train', ), 'ema_decya', 'ema_decay'),
    (('train', ), 'grad_clipp', 'grad_clip'),
    (('train', ), 'finite_check_frq', 'finite_check_freq'),
    (('train', 'optim_g'), 'betsa', 'betas'),
    (('train', 'scheduler'), 'gama', 'gamma'),
    (('train', 'pixel_opt'), 'loss_wieght', 'loss_weight'),
    (('val', ), 'save_imgs', 'save_img'),
    (('logger', ), 'print_frq', 'print_freq'),
    (('logger', 'wandb'), 'projetc', 'project'),
])
def test_unknown_key_is_named_with_the_closest_known_one(case, root, keys, typo, suggestion):
    opt = copy.deepcopy(case)
    _set(opt, keys + (typo, ), 1 if typo != 'pretrain_netwrok_g' else 'w.pth')
    where = ':'.join(keys + (typo, ))
    with pytest.raises(CheckError, match=f'`{where}` \\(did you mean `{suggestion}`\\?\\)'):
        checks.check_options(_parsed(opt, root))
    warnings = checks.check_options(_parsed(opt, root), allow_unknown=True)
    assert any(f'`{where}`' in w for w in warnings)


def test_type_values_are_checked_too(case, root):
    for keys, value, message in ((('train', 'scheduler', 'type'), 'MultiStepLRR', '`train:scheduler:type: '
                                  'MultiStepLRR` is no scheduler of BasicSR \\(did you mean `MultiStepLR`'),
                                 (('train', 'pixel_opt', 'type'), 'L1Los', 'did you mean `L1Loss`'),
                                 (('model_type', ), 'MRNetModle', 'did you mean `MRNetModel`')):
        opt = copy.deepcopy(case)
        _set(opt, keys, value)
        with pytest.raises(CheckError, match=message):
            checks.check_options(_parsed(opt, root))
    opt = copy.deepcopy(case)
    opt['datasets']['trian'] = opt['datasets'].pop('train')
    with pytest.raises(CheckError, match='`datasets:trian` is no phase.*did you mean `train`'):
        checks.check_option_keys(opt)


def test_the_shipped_option_files_have_no_unknown_keys():
    import glob

    from mrnet_arch.models.mrnet_options import unknown_options
    files = sorted(glob.glob(os.path.join(_tiny.REPO, 'options', '**', '*.yml'), recursive=True))
    assert len(files) > 10
    for path in files:
        assert unknown_options(checks.read_option_file(path)) == ([], []), path


def test_train_entry_stops_before_creating_the_experiment(case, root):
    case['network_g']['num_feats'] = 8
    yml = _tiny.write_yml(case, str(root / 'bad.yml'))
    with pytest.raises(CheckError, match=r'(?s).*bad\.yml: network_g: MRNet has no argument'):
        entry.train(['-opt', yml])
    assert not (root / 'experiments').exists()


def test_typo_in_a_path_key_stops_before_the_old_experiment_is_renamed(case, root):
    """``pretrain_netwrok_g: <an existing file>`` made BasicSR rename the old experiment, then fail with a raw
    FileExistsError in make_exp_dirs; now nothing moves."""
    old = _old_experiment(root)
    weights = root / 'w.pth'
    weights.write_bytes(b'x')
    case['path']['pretrain_netwrok_g'] = str(weights)
    yml = _tiny.write_yml(case, str(root / 'typo.yml'))
    with pytest.raises(CheckError, match=r'(?s).*typo\.yml: unknown options.*`path:pretrain_netwrok_g` '
                       r'\(did you mean `pretrain_network_g`\?\)'):
        entry.train(['-opt', yml])
    _untouched(root, old)
    assert weights.read_bytes() == b'x'


def test_missing_pretrained_or_resume_file_is_named_before_anything_moves(case, root):
    old = _old_experiment(root)
    for key, message in (('pretrain_network_g', 'path:pretrain_network_g: weight file not found: .*absent.pth'),
                         ('resume_state', 'path:resume_state: training state not found: .*absent.pth')):
        opt = copy.deepcopy(case)
        opt['path'][key] = str(root / 'absent.pth')
        with pytest.raises(CheckError, match=message):
            entry.train(['-opt', _tiny.write_yml(opt, str(root / f'{key}.yml'))])
        _untouched(root, old)
    opt = copy.deepcopy(case)
    (root / 'text.state').write_text('not a state')
    opt['path']['resume_state'] = str(root / 'text.state')
    with pytest.raises(CheckError, match='path:resume_state: .*text.state: not a PyTorch checkpoint'):
        entry.train(['-opt', _tiny.write_yml(opt, str(root / 'text.yml'))])
    _untouched(root, old)


def test_yaml_syntax_missing_keys_and_force_yml_are_named(case, root):
    old = _old_experiment(root)
    yml = root / 'syntax.yml'
    yml.write_text('name: tiny\nmodel_type: MRNetModel\ndatasets:\n  train: {name: a\n  val: 1\n')
    with pytest.raises(CheckError, match=r'syntax\.yml: not valid YAML at line \d+, column \d+'):
        entry.train(['-opt', str(yml)])
    opt = copy.deepcopy(case)
    del opt['train']['total_iter'], opt['datasets']['train']['batch_size_per_gpu']
    with pytest.raises(CheckError, match='(?s)Missing options.*train:total_iter.*datasets:train:batch_size_per_gpu'):
        entry.train(['-opt', _tiny.write_yml(opt, str(root / 'missing.yml'))])
    for name in (12, 'a/b', ''):
        opt = dict(copy.deepcopy(case), name=name)
        with pytest.raises(CheckError, match='name must be a folder name'):
            entry.train(['-opt', _tiny.write_yml(opt, str(root / 'name.yml'))])
    good = _tiny.write_yml(case, str(root / 'good.yml'))
    with pytest.raises(CheckError, match='--force_yml tran:ema_decay=0.9: there is no section tran'):
        entry.train(['-opt', good, '--force_yml', 'tran:ema_decay=0.9'])
    with pytest.raises(CheckError, match='`train:ema_decya` \\(did you mean `ema_decay`'):
        entry.train(['-opt', good, '--force_yml', 'train:ema_decya=0.9'])  # BasicSR creates the last key
    _untouched(root, old)


def test_no_traceback_reaches_the_user(case, root):
    yml = root / 'bad.yml'
    yml.write_text('name: tiny\n  model_type: [\n')
    run = _tiny.run_train(str(yml), str(root), timeout=120)
    assert run.returncode == 2  # bad input
    assert 'mrnet train: error: ' in run.stderr and 'bad.yml: not valid YAML at line' in run.stderr
    assert 'Traceback' not in run.stderr


def test_allow_unknown_options_warns_and_trains(case, root, capsys):
    case['logger']['print_frequency'] = 1
    yml = _tiny.write_yml(case, str(root / 'allowed.yml'))
    with pytest.raises(CheckError, match='`logger:print_frequency` \\(did you mean `print_freq`'):
        entry.train(['-opt', yml])
    assert not (root / 'experiments').exists()
    entry.train(['-opt', yml, '--allow-unknown-options'])
    assert 'going on despite unknown options' in capsys.readouterr().err
    assert (root / 'experiments' / 'tiny' / 'models' / 'net_g_latest.pth').is_file()


def test_test_entry_refuses_unknown_keys_before_creating_results(case, root):
    from mrnet_arch import MRNet
    weights = str(root / 'w.pth')
    torch.save({'params': MRNet(num_feat=8, num_block=1, num_recursion=2, upscale=2).state_dict()}, weights)
    test_opt = {'name': 'tiny_test', 'model_type': 'MRNetModel', 'scale': 2, 'num_gpu': 0,
                'datasets': {'test_1': case['datasets']['val']}, 'network_g': case['network_g'],
                'path': {'pretrain_network_g': weights}, 'val': {'save_img': False, 'suffx': 'x'}}
    with pytest.raises(CheckError, match='.*`val:suffx` \\(did you mean `suffix`'):
        entry.test(['-opt', _tiny.write_yml(test_opt, str(root / 'test.yml'))])
    assert not (root / 'results').exists()


def test_model_class_refuses_unknown_keys_with_the_same_message(case, root):
    """In a BasicSR checkout's own train.py the model is built after make_exp_dirs; it still refuses before
    training starts."""
    from basicsr.models import build_model
    opt = copy.deepcopy(case)
    opt['train']['ema_decya'] = 0.9
    parsed = _parsed(opt, root)
    with pytest.raises(ValueError, match='`train:ema_decya` \\(did you mean `ema_decay`'):
        build_model(copy.deepcopy(parsed))
    parsed['allow_unknown_options'] = True
    assert type(build_model(parsed)).__name__ == 'MRNetModel'


def test_dataset_keys_follow_the_class_bases_and_other_plugins_are_noted(case, root):
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.utils.registry import DATASET_REGISTRY
    from mrnet_arch.models.mrnet_options import unknown_options

    class KeysTestPairedDataset(PairedImageDataset):
        """A paired dataset that reads no new key."""

    class KeysTestOwnDataset(torch.utils.data.Dataset):
        option_keys = {'dataroot_gt', 'dataroot_lq', 'io_backend', 'crop'}

    class KeysTestForeignDataset(torch.utils.data.Dataset):
        """Another plugin's dataset: its keys are unknown here."""

    for cls in (KeysTestPairedDataset, KeysTestOwnDataset, KeysTestForeignDataset):
        if cls.__name__ not in DATASET_REGISTRY._obj_map:
            DATASET_REGISTRY.register(cls)
    opt = copy.deepcopy(case)
    opt['datasets']['train'].update(type='KeysTestPairedDataset', gt_szie=1)
    opt['datasets']['val'].update(type='KeysTestOwnDataset', crop=2, crpo=3)
    problems, notes = unknown_options(opt)
    assert problems == ['`datasets:train:gt_szie` (did you mean `gt_size`?)',
                        '`datasets:val:crpo` (did you mean `crop`?)'] and notes == []
    opt['datasets']['val']['type'] = 'KeysTestForeignDataset'
    problems, notes = unknown_options(opt)
    assert problems == ['`datasets:train:gt_szie` (did you mean `gt_size`?)']
    assert notes == ["datasets:val: the keys of KeysTestForeignDataset (another plugin's dataset) are not checked"]
