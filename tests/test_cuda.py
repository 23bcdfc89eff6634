"""Checks that need a CUDA GPU (run by ``benchmarks/gpu_check.sh``); skipped, with the reason, without one.

- MRNet's forward on CUDA equals the CPU forward (fp32, TF32 off), and the bf16 fast path stays close;
- an ``MRNetModel`` training step with ``amp: bf16`` and channels_last really runs the convolutions in
  bf16 on CUDA and updates the float32 weights;
- a training state and weights saved by a CPU run resume onto CUDA (optimizer moments on the GPU, equal
  to the saved ones) and training goes on.
"""
import copy

import numpy as np
import pytest
import torch

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from mrnet_arch import MRNet, compat
from mrnet_arch.inference.fast import prepare_fast

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='CUDA-only check: torch.cuda.is_available() is False on this machine')


def _photo_pair(n=2, gt_size=64, scale=2):
    """``n`` GT crops of skimage's astronaut photo and their MATLAB-bicubic LR, as float NCHW tensors in [0, 1]."""
    from skimage import data

    from basicsr.utils.matlab_functions import imresize
    img = data.astronaut().astype(np.float64) / 255.
    gts, lqs = [], []
    for i in range(n):
        gt = img[80 + 40 * i:80 + 40 * i + gt_size, 160:160 + gt_size]
        lq = np.clip(np.round(imresize(gt, 1 / scale) * 255.), 0, 255) / 255.
        gts.append(torch.from_numpy(gt.copy()).permute(2, 0, 1).float())
        lqs.append(torch.from_numpy(lq.copy()).permute(2, 0, 1).float())
    return torch.stack(lqs), torch.stack(gts)


def _options(num_gpu, tmp_path=None, amp=None, channels_last=False):
    opt = {
        'name': 'cuda_check', 'model_type': 'MRNetModel', 'scale': 2, 'is_train': True, 'dist': False,
        'rank': 0, 'world_size': 1, 'num_gpu': num_gpu, 'auto_resume': False,
        'network_g': {'type': 'MRNet', 'num_feat': 16, 'num_block': 2, 'num_recursion': 3, 'upscale': 2},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0, 'amp': amp, 'channels_last': channels_last,
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'weight_decay': 0, 'betas': [0.9, 0.999]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
            'total_iter': 1000, 'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
    }
    if tmp_path is not None:
        for key in ('models', 'training_states'):
            opt['path'][key] = str(tmp_path / key)
            (tmp_path / key).mkdir(exist_ok=True)
    return opt


@pytest.fixture
def strict_fp32():
    """TF32 off for exact fp32 comparisons; restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_mrnet_forward_on_cuda_equals_cpu(strict_fp32):
    torch.manual_seed(0)
    net = MRNet().eval()  # the paper's x2 config: 64 channels, 10 blocks, T = 4
    lq, _ = _photo_pair(n=1, gt_size=96)
    with torch.no_grad():
        ref = net(lq)
        out = copy.deepcopy(net).cuda()(lq.cuda()).cpu()
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    fast = prepare_fast(copy.deepcopy(net), 'cuda', 'fp32', channels_last=True)
    torch.testing.assert_close(fast(lq).cpu(), ref, atol=1e-4, rtol=1e-4)
    bf16 = prepare_fast(copy.deepcopy(net), 'cuda', 'bf16', channels_last=True)(lq).cpu()
    assert bf16.dtype == torch.float32
    assert (bf16 - ref).abs().max().item() < 2e-3  # bf16 convs, float32 output head


def test_mrnet_model_bf16_autocast_step_on_cuda():
    from mrnet_arch.models.mrnet_model import MRNetModel
    torch.manual_seed(0)
    model = MRNetModel(_options(1, amp='bf16', channels_last=True))
    assert model.device.type == 'cuda'
    dtypes = []
    first_conv = model.net_g.sfe[0]
    first_conv.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    before = {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}
    lq, gt = _photo_pair()
    model.feed_data({'lq': lq, 'gt': gt})
    assert model.lq.is_cuda and model.lq.is_contiguous(memory_format=torch.channels_last)
    model.optimize_parameters(1)
    assert dtypes == [torch.bfloat16]
    assert model.output.dtype == torch.float32 and model.output.shape == gt.shape
    assert np.isfinite(model.get_current_log()['l_pix'])
    after = model.net_g.state_dict()
    assert all(v.dtype == torch.float32 and v.is_cuda for v in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_cpu_saved_state_resumes_on_cuda(tmp_path):
    from mrnet_arch.models.mrnet_model import MRNetModel
    torch.manual_seed(0)
    lq, gt = _photo_pair()
    cpu_opt = _options(0, tmp_path)
    cpu_model = MRNetModel(cpu_opt)
    for it in (1, 2):
        cpu_model.feed_data({'lq': lq, 'gt': gt})
        cpu_model.optimize_parameters(it)
    cpu_model.save_network(cpu_model.net_g, 'net_g', 2)
    cpu_model.save_training_state(epoch=0, current_iter=2)

    opt = _options(1, tmp_path)
    opt['path']['resume_state'] = str(tmp_path / 'training_states' / '2.state')
    state = compat.load_resume_state(opt)
    assert state['iter'] == 2
    moments = state['optimizers'][0]['state']
    assert moments and all(t.is_cuda for s in moments.values() for t in s.values() if torch.is_tensor(t) and t.dim())
    model = MRNetModel(opt)  # loads net_g_2.pth (check_resume points pretrain_network_g at it)
    model.resume_training(state)
    cpu_state = cpu_model.net_g.state_dict()
    for k, v in model.net_g.state_dict().items():
        assert v.is_cuda
        torch.testing.assert_close(v.cpu(), cpu_state[k], atol=0, rtol=0)
    cpu_moments = cpu_model.optimizer_g.state_dict()['state']
    for idx, s in model.optimizer_g.state_dict()['state'].items():
        assert s['exp_avg'].is_cuda
        torch.testing.assert_close(s['exp_avg'].cpu(), cpu_moments[idx]['exp_avg'], atol=0, rtol=0)
    model.feed_data({'lq': lq, 'gt': gt})
    model.optimize_parameters(3)
    assert np.isfinite(model.get_current_log()['l_pix'])
    assert model.optimizer_g.state_dict()['state'][0]['step'].item() == 3
