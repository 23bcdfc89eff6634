"""``MRNetModel`` training options: ``train: compile`` (torch.compile of the training forward and backward)
trains like the eager model, ``train: grad_clip`` bounds the gradient norm; bad values are refused by name."""
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


def _model_options(**train):
    opt = {
        'name': 'clip', 'model_type': 'MRNetModel', 'scale': 2, 'is_train': True, 'dist': False, 'rank': 0,
        'world_size': 1, 'num_gpu': 0, 'auto_resume': False,
        'network_g': {'type': 'MRNet', 'num_feat': 8, 'num_block': 1, 'num_recursion': 2, 'upscale': 2},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-3, 'weight_decay': 0, 'betas': [0.9, 0.999]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5}, 'total_iter': 1000,
            'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}, **train},
    }
    return opt


def _grad_norm_after_step(**train):
    from mrnet_arch.models.mrnet_model import MRNetModel
    torch.manual_seed(0)
    model = MRNetModel(_model_options(**train))
    lq, gt = _tiny.photo_crop(0, 16), _tiny.photo_crop(1, 32)
    model.feed_data({'lq': torch.from_numpy(lq).permute(2, 0, 1)[None].float() / 255.,
                     'gt': torch.from_numpy(gt).permute(2, 0, 1)[None].float() / 255.})
    model.optimize_parameters(1)
    grads = [p.grad for p in model.net_g.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()


def test_grad_clip_bounds_the_gradient_norm():
    """The gradients the optimizer stepped with: larger than 1e-3 without clipping, at most 1e-3 with it."""
    free = _grad_norm_after_step()
    clipped = _grad_norm_after_step(grad_clip=1e-3)
    assert free > 1e-2
    assert clipped == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize('value', [0, -1, 'big', True])
def test_bad_grad_clip_is_named(value):
    from mrnet_arch.models.mrnet_model import MRNetModel
    with pytest.raises(ValueError, match=f'train:grad_clip must be a number > 0.*got {value!r}'):
        MRNetModel(_model_options(grad_clip=value))
