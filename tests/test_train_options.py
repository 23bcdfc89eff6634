"""``MRNetModel`` training options for speed: ``train: compile`` (torch.compile of the training forward and
backward) trains like the eager model; bad values are refused by name."""
import os

import pytest
import torch

import _tiny


def _train(tmp_path, name, **train):
    data = _tiny.make_pairs(str(tmp_path / 'data'), n=1, size=32)
    opt = _tiny.train_options(name, data, total_iter=3, save_freq=3, gt_size=32, batch=1, augment=False)
    opt['train'].update(train)
    yml = _tiny.write_yml(opt, str(tmp_path / f'{name}.yml'))
    run = _tiny.run_train(yml, str(tmp_path), timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return torch.load(tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth', weights_only=True)['params']


def test_compiled_training_matches_eager(tmp_path):
    """Same data, seed and iterations: the compiled step ends with the eager step's weights (up to the float
    reordering of the compiled kernels), and the saved keys are the network's own (no ``_orig_mod.``)."""
    eager = _train(tmp_path, 'eager')
    compiled = _train(tmp_path, 'compiled', compile=True)
    assert compiled.keys() == eager.keys()
    assert not any(k.startswith('_orig_mod') for k in compiled)
    for key, value in eager.items():
        assert torch.allclose(compiled[key], value, atol=1e-5, rtol=1e-4), key


@pytest.mark.parametrize('key, value, message', [('compile', 'fast', 'train:compile must be one of'),
                                                 ('amp', 'int8', 'train:amp must be one of')])
def test_bad_speed_options_are_named(tmp_path, key, value, message):
    """Refused by ``mrnet train``'s checks before any folder exists, and by the model class itself."""
    from basicsr.models import build_model
    data = _tiny.make_pairs(str(tmp_path / 'data'), n=1, size=32)
    opt = _tiny.train_options('bad', data, total_iter=1, gt_size=32, batch=1)
    opt['train'][key] = value
    yml = _tiny.write_yml(opt, str(tmp_path / 'bad.yml'))
    run = _tiny.run_train(yml, str(tmp_path))
    assert run.returncode != 0
    assert message in run.stderr and repr(value) in run.stderr and 'bad.yml' in run.stderr
    assert not os.path.exists(tmp_path / 'experiments')
    with pytest.raises(ValueError, match=message):
        build_model(_tiny.parse(yml, str(tmp_path)))
