"""The CPU benchmark scripts' own logic: ``benchmarks/cpu_bench.py``'s ShuffleConv replacement and
``benchmarks/cpu_profile.py``'s grouping and ratio split, on tiny models (no timing is asserted)."""

import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from _scripts import benchmark_script
from mrnet_arch.archs.mrnet_arch import MRNet, ShuffleConv
from mrnet_arch.commands.bench.command import parse_model_spec
from mrnet_arch.core.complexity import count_macs
from mrnet_arch.core.fast import prepare_fast


@pytest.mark.parametrize('channels_last', [True, False])
def test_shuffle_conv_nhwc_gives_shuffle_conv_output(channels_last):
    torch.manual_seed(0)
    shuffle = ShuffleConv(num_feat=8, num_recursion=4, upscale=2).eval()
    with torch.no_grad():
        shuffle.fuse.bias.normal_()
    feats = [torch.randn(2, 8, 5, 7) for _ in range(4)]
    if channels_last:
        feats = [f.contiguous(memory_format=torch.channels_last) for f in feats]
    replacement = benchmark_script('cpu_bench').ShuffleConvNHWC(shuffle)
    with torch.no_grad():
        expected, got = shuffle(feats), replacement(feats)
    assert got.shape == expected.shape == (2, 8, 10, 14)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert (expected > 0).float().mean() > 0.2  # the ReLU output is not trivially zero


def test_swap_shuffle_convs_keeps_mrnet_output():
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=3).eval()
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        expected = net(x)
    script = benchmark_script('cpu_bench')
    swapped = script.prepare(net, 'fp32', 'shuffle_nhwc')
    assert isinstance(swapped.net.reconstruction.fusion, script.ShuffleConvNHWC)
    assert isinstance(net.reconstruction.fusion, ShuffleConv)  # the original is left alone
    torch.testing.assert_close(swapped(x), expected, rtol=1e-5, atol=1e-5)


def test_profile_groups_count_every_mac_and_split_the_ratio_exactly():
    prof = benchmark_script('cpu_profile')
    torch.set_num_threads(1)
    x = torch.rand(1, 3, 16, 12)
    raw = {}
    for text in ('MRNet:num_feat=8,num_block=1', 'EDSR-baseline:num_feat=8,num_block=2'):
        spec = parse_model_spec(text, 2)
        net = spec.build()
        macs = count_macs(net, lr_size=(16, 12), scale=2)
        fast = prepare_fast(net, 'cpu', 'fp32')
        hooks = prof.GroupLabels(fast.net, (16, 12))
        raw[spec.label] = prof.profile_model(fast, hooks, x, repeat=1)
        hooks.remove()
        assert sum(raw[spec.label]['macs'].values()) == macs
    groups = set(raw['MRNet']['ms'])
    assert {'conv7x7 3->8 @LR', 'conv1x1 16->8 @LR', 'conv1x1 32->32 g8 @LR', 'conv3x3 8->8 @HR',
            'pixel_shuffle x2'} <= groups
    assert raw['MRNet']['calls']['conv1x1 16->8 @LR'] == 7  # T = 4 input encoders, T - 1 memory updaters
    for clock in ('ms', 'cpu_ms'):
        d = prof.decompose(raw, 'EDSR-baseline', 'MRNet', clock=clock)
        assert d['mac_ratio'] + sum(d['terms'].values()) == pytest.approx(d['ratio'], rel=1e-9)
        assert 'grouped 1x1 conv (ShuffleConv)' in d['categories']['MRNet']
        assert 'grouped 1x1 conv (ShuffleConv)' not in d['categories']['EDSR-baseline']
