"""MRNet architectures: the paper's parameter counts and MACs, forward shapes, equations, registry, drop-in."""
import glob
import os
import shutil
import subprocess
import sys
from os import path as osp

import pytest
import torch

import mrnet_arch  # noqa: F401  (compat + registration)
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from mrnet_arch.archs.mrnet_arch import MRM, MRNet, MultiScaleMRNet, ShuffleConv
from mrnet_arch.measurement.complexity import count_macs, count_params

ARCH_FILE = osp.join(osp.dirname(mrnet_arch.__file__), 'archs', 'mrnet_arch.py')


@pytest.mark.parametrize('scale, t, expected', [(2, 4, 878_339), (3, 6, 881_091), (4, 8, 886_275)])
def test_mrnet_s_params_table3(scale, t, expected):
    assert count_params(MRNet(upscale=scale, num_recursion=t)) == expected


def test_multiscale_params_table3():
    assert count_params(MultiScaleMRNet(upscales=(2, 3, 4), num_recursions=(4, 6, 8))) == 1_061_705


@pytest.mark.parametrize('module, expected_k', [('baseline', 862), ('residual', 862), ('input_encoder', 870),
                                                ('memory_updater', 870), ('mrm', 878)])
def test_table1_params(module, expected_k):
    n = count_params(MRNet(upscale=2, num_recursion=4, recursive_module=module))
    assert round(n / 1000) == expected_k


@pytest.mark.parametrize('t, conv1x1_k, shuffle_k', [(2, 1033, 882), (4, 1041, 887), (6, 1049, 891), (8, 1058, 896),
                                                     (10, 1066, 900)])
def test_table2_params(t, conv1x1_k, shuffle_k):
    assert round(count_params(MRNet(num_recursion=t, fusion='conv1x1')) / 1000) == conv1x1_k
    assert round(count_params(MRNet(num_recursion=t, shuffle_kernel=3)) / 1000) == shuffle_k


def test_shuffleconv_has_1_over_c0_of_a_1x1_conv():
    """Section 3.3: T*c0*s^2 weights, c0 times fewer than a 1x1 conv's T*c0*c0*s^2."""
    sc = ShuffleConv(num_feat=64, num_recursion=4, upscale=2)
    assert sc.fuse.weight.numel() == 4 * 64 * 4
    assert sc.fuse.weight.numel() * 64 == torch.nn.Conv2d(4 * 64, 64 * 4, 1).weight.numel()


@pytest.mark.parametrize('scale, t, paper_gmacs', [(2, 4, 776.5), (3, 6, 526.6), (4, 8, 403.8)])
def test_macs_table3(scale, t, paper_gmacs):
    """MACs for a 1280x720 output, torch.utils.flop_counter, within 0.5% of Table 3."""
    macs = count_macs(MRNet(upscale=scale, num_recursion=t), scale=scale) / 1e9
    assert abs(macs - paper_gmacs) / paper_gmacs < 0.005, macs


def test_multiscale_macs_equal_mrnet_s_per_scale():
    """Table 3 lists the same MACs for MRNet and MRNet-S: sharing the MRM changes params, not compute."""
    ms = MultiScaleMRNet()
    for scale, t in ((2, 4), (3, 6), (4, 8)):
        assert count_macs(ms, scale=scale) == count_macs(MRNet(upscale=scale, num_recursion=t), scale=scale)


TINY = dict(num_feat=8, num_block=1)


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('hw', [(7, 9), (16, 16), (13, 4)])
def test_forward_shapes_any_size(scale, hw):
    x = torch.rand(2, 3, *hw)
    assert MRNet(upscale=scale, num_recursion=2, **TINY)(x).shape == (2, 3, scale * hw[0], scale * hw[1])
    ms = MultiScaleMRNet(num_recursions=(2, 3, 2), **TINY)
    assert ms(x, scale=scale).shape == (2, 3, scale * hw[0], scale * hw[1])


@pytest.mark.parametrize('module', ['mrm', 'baseline', 'residual', 'input_encoder', 'memory_updater'])
@pytest.mark.parametrize('fusion, kernel', [('shuffleconv', 1), ('shuffleconv', 3), ('conv1x1', 1)])
def test_variants_forward_and_backward(module, fusion, kernel):
    net = MRNet(upscale=2, num_recursion=3, recursive_module=module, fusion=fusion, shuffle_kernel=kernel, **TINY)
    y = net(torch.rand(1, 3, 6, 5))
    y.mean().backward()
    assert y.shape == (1, 3, 12, 10)
    assert all(p.grad is not None for p in net.parameters())  # every layer takes part


def test_single_channel_model():
    net = MRNet(num_in_ch=1, num_out_ch=1, upscale=3, num_recursion=2, **TINY)
    assert net(torch.rand(1, 1, 5, 5)).shape == (1, 1, 15, 15)


def test_mrm_step_implements_equations_8_to_11():
    torch.manual_seed(0)
    mrm = MRM(num_feat=8, num_block=1)
    x0, h = torch.rand(1, 8, 5, 5), torch.rand(1, 8, 5, 5)
    x, h_new = mrm.step(x0, h)
    m = mrm.input_encoder(torch.cat([x0, h], 1))  # (8)
    r = mrm.conv_block(m)  # (9)
    torch.testing.assert_close(x, r + x0)  # (10)
    torch.testing.assert_close(h_new, mrm.memory_updater(torch.cat([r, h], 1)))  # (11)


def test_mrm_unrolls_with_h0_equal_x0_and_shared_weights():
    torch.manual_seed(0)
    mrm = MRM(num_feat=8, num_block=1)
    x0 = torch.rand(1, 8, 4, 4)
    outs = mrm(x0, 3)
    x1, h1 = mrm.step(x0, x0)  # h_0 = x_0
    x2, h2 = mrm.step(x0, h1)
    x3, _ = mrm.step(x0, h2)
    for a, b in zip(outs, (x1, x2, x3)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('module, rule', [
    ('baseline', lambda cb, x0, prev: cb(prev)),  # eq. 1
    ('residual', lambda cb, x0, prev: x0 + cb(prev)),  # eq. 3
])
def test_ablation_recursions(module, rule):
    torch.manual_seed(0)
    mrm = MRM(num_feat=8, num_block=1, recursive_module=module)
    x0 = torch.rand(1, 8, 4, 4)
    prev = x0
    for out in mrm(x0, 3):
        prev = rule(mrm.conv_block, x0, prev)
        torch.testing.assert_close(out, prev)


def test_shuffleconv_groups_by_channel_index():
    """HR channel j depends on channel j of every recursion output and on nothing else (Fig. 4)."""
    sc = ShuffleConv(num_feat=4, num_recursion=3, upscale=2)
    feats = [torch.rand(1, 4, 3, 3, requires_grad=True) for _ in range(3)]
    out = sc(feats)
    assert out.shape == (1, 4, 6, 6)
    out[:, 2].sum().backward()
    for f in feats:
        grad_per_channel = f.grad.abs().sum(dim=(0, 2, 3))
        assert grad_per_channel[2] > 0
        assert torch.count_nonzero(grad_per_channel) == 1


@pytest.mark.parametrize('channels_last', [False, True])
def test_shuffleconv_multiply_adds_equal_the_grouped_convolution(channels_last):
    """The 1x1 ShuffleConv's two forms, the grouped convolution on the stacked outputs (the definition, which
    training runs) and the T multiply-adds (which inference runs), give the same output and gradients up to float
    rounding; forward picks the multiply-adds only without gradients."""
    torch.manual_seed(0)
    sc = ShuffleConv(num_feat=8, num_recursion=4, upscale=3)
    feats = [torch.randn(2, 8, 5, 7) for _ in range(4)]
    if channels_last:
        feats = [f.contiguous(memory_format=torch.channels_last) for f in feats]
    feats = [f.requires_grad_() for f in feats]
    got, ref = sc.multiply_add(feats), sc.grouped_conv(feats)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(ref)
    inputs = feats + [sc.fuse.weight, sc.fuse.bias]
    for a, b in zip(torch.autograd.grad(got, inputs, grad), torch.autograd.grad(ref, inputs, grad)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert sc(feats).grad_fn.name() == ref.grad_fn.name()  # with gradients: the grouped convolution
    with torch.no_grad():
        torch.testing.assert_close(sc(feats), ref.detach(), rtol=1e-5, atol=1e-5)
        assert sc(feats).is_contiguous(memory_format=torch.channels_last)  # the multiply-adds' layout


def test_mean_shift_not_in_state_dict():
    keys = MRNet(**TINY).state_dict().keys()
    assert not any('mean' in k for k in keys)
    assert set(MultiScaleMRNet(**TINY).state_dict()) >= {'mrm.conv_block.1.weight', 'sfe.x3.0.weight'}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='recursive_module'):
        MRNet(recursive_module='lstm')
    with pytest.raises(ValueError, match='fusion'):
        MRNet(fusion='dense')
    with pytest.raises(ValueError, match='scale 5'):
        MultiScaleMRNet(**TINY)(torch.rand(1, 3, 4, 4), scale=5)


def test_registered_and_built_by_basicsr():
    assert ARCH_REGISTRY.get('MRNet') is MRNet
    assert ARCH_REGISTRY.get('MultiScaleMRNet') is MultiScaleMRNet
    net = build_network({'type': 'MRNet', 'upscale': 3, 'num_recursion': 6})
    assert count_params(net) == 881_091


def test_arch_file_drops_into_a_basicsr_checkout(tmp_path):
    """Copied with its torch-only siblings (every module file of the plugin's archs/, as ``mrnet contribute
    basicsr`` copies them) into (a temporary copy of) basicsr/archs/, the file is found by BasicSR's own scan."""
    import basicsr
    src = osp.dirname(basicsr.__file__)
    dst = tmp_path / 'basicsr'
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(ARCH_FILE, dst / 'archs' / 'mrnet_arch.py')
    for sibling in glob.glob(osp.join(osp.dirname(ARCH_FILE), '[!_]*.py')):
        shutil.copy(sibling, dst / 'archs' / osp.basename(sibling))
    compat = osp.join(osp.dirname(mrnet_arch.__file__), 'compat.py')
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location('standalone_compat', {compat!r})
compat = importlib.util.module_from_spec(spec); spec.loader.exec_module(compat); compat.install_import_alias()
import basicsr
assert basicsr.__file__.startswith({str(tmp_path)!r}), basicsr.__file__
assert 'mrnet_arch' not in sys.modules
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
cls = ARCH_REGISTRY.get('MRNet')
print(cls.__module__, sum(p.numel() for p in build_network({{'type': 'MRNet'}}).parameters()))
"""
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, '-c', code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['basicsr.archs.mrnet_arch', '878339']


def test_mrm_built_by_name_from_the_registry():
    """MRM is registered, so other archs build it by name; paper size: ConvBlock (10 EDSR blocks + conv)
    plus the two 1x1 convs."""
    mrm = ARCH_REGISTRY.get('MRM')(num_feat=64, num_block=10)
    block = 2 * (64 * 64 * 9 + 64)
    expected = 10 * block + (64 * 64 * 9 + 64) + 2 * (128 * 64 + 64)
    assert sum(p.numel() for p in mrm.parameters()) == expected == 792_000
    x0 = torch.randn(1, 64, 6, 5)
    outs = mrm(x0, 4)
    assert len(outs) == 4 and all(o.shape == x0.shape for o in outs)


def test_shuffleconv_built_by_name_from_the_registry():
    sc = ARCH_REGISTRY.get('ShuffleConv')(num_feat=64, num_recursion=4, upscale=2)
    assert sum(p.numel() for p in sc.parameters()) == 4 * 64 * 4 + 64 * 4
    out = sc([torch.randn(2, 64, 5, 7) for _ in range(4)])
    assert out.shape == (2, 64, 10, 14)


def _reach(net, scale, radius):
    """How far (in input pixels) a change at one input pixel moves the output of ``net`` at ``scale``."""
    size = 2 * radius + 7
    x = torch.rand(1, 3, size, size, dtype=torch.float64)
    y = x.clone()
    c = size // 2
    y[:, :, c, c] += 0.5
    with torch.no_grad():
        changed = (net(x, scale=scale) - net(y, scale=scale)).abs().amax(dim=(0, 1)) > 0
    rows = changed.any(dim=1).nonzero().flatten()
    reach = max(c * scale - rows.min().item(), rows.max().item() - (c * scale + scale - 1))
    return -(-reach // scale)


@pytest.mark.parametrize('scale,global_skip', [(2, None), (3, 'learned'), (4, 'bicubic')])
def test_receptive_radius_of_the_multiscale_model_is_exact(scale, global_skip):
    """``mrnet_config.receptive_radius`` (from the kernel sizes the modules are built with) against the network:
    a change at one input pixel never moves outputs further than the radius, and (a ReLU may stop it short at
    the edge for one set of weights) reaches it for one of four seeds."""
    from mrnet_arch.archs.mrnet_config import infer_config, receptive_radius
    reaches = []
    for seed in range(4):
        torch.manual_seed(seed)
        net = MultiScaleMRNet(num_feat=8, num_block=1, upscales=(2, 3, 4), num_recursions=(2, 2, 1),
                              global_skip=global_skip).double().eval()
        radius = receptive_radius(infer_config(net.state_dict()), scale)
        reaches.append(_reach(net, scale, radius))
    assert max(reaches) == radius, (reaches, radius)
