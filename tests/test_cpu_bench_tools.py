"""The CPU benchmark scripts' own logic: ``benchmarks/cpu_bench.py``'s ShuffleConv replacement and
``benchmarks/cpu_profile.py``'s grouping and ratio split, on tiny models (no timing is asserted)."""

import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from _scripts import benchmark_script
from mrnet_arch.archs.mrnet_arch import MRNet, ShuffleConv
from mrnet_arch.commands.bench.command import parse_model_spec
from mrnet_arch.inference.fast import prepare_fast
from mrnet_arch.measurement.complexity import count_macs


@pytest.mark.parametrize('channels_last', [True, False])
def test_stack_shuffle_conv_gives_shuffle_conv_output(channels_last):
    torch.manual_seed(0)
    shuffle = ShuffleConv(num_feat=8, num_recursion=4, upscale=2).eval()
    with torch.no_grad():
        shuffle.fuse.bias.normal_()
    feats = [torch.randn(2, 8, 5, 7) for _ in range(4)]
    if channels_last:
        feats = [f.contiguous(memory_format=torch.channels_last) for f in feats]
    stacked = benchmark_script('cpu_bench').ForcedShuffleConv(shuffle, 'grouped_conv')
    with torch.no_grad():
        expected, got = stacked(feats), shuffle(feats)
    assert got.shape == expected.shape == (2, 8, 10, 14)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert (expected > 0).float().mean() > 0.2  # the ReLU output is not trivially zero


def test_stack_variant_keeps_mrnet_output():
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=3).eval()
    x = torch.rand(1, 3, 12, 10)
    script = benchmark_script('cpu_bench')
    expected = script.prepare(net, 'fp32', 'channels_last')(x)
    stacked = script.prepare(net, 'fp32', 'stack')
    assert isinstance(stacked.net.reconstruction.fusion, script.ForcedShuffleConv)
    assert isinstance(net.reconstruction.fusion, ShuffleConv)  # the original is left alone
    torch.testing.assert_close(stacked(x), expected, rtol=1e-5, atol=1e-5)


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
    # MRNet's one pixel shuffle is inside its ShuffleConv's group
    assert {'conv7x7 3->8 @LR', 'conv1x1 16->8 @LR', 'shuffleconv 32->32 g8 multiply-adds',
            'conv3x3 8->8 @HR'} <= groups
    assert 'pixel_shuffle x2' in raw['EDSR-baseline']['ms'] and 'pixel_shuffle x2' not in groups
    assert raw['MRNet']['calls']['conv1x1 16->8 @LR'] == 7  # T = 4 input encoders, T - 1 memory updaters
    for clock in ('ms', 'cpu_ms'):
        d = prof.decompose(raw, 'EDSR-baseline', 'MRNet', clock=clock)
        assert d['mac_ratio'] + sum(d['terms'].values()) == pytest.approx(d['ratio'], rel=1e-9)
        assert 'ShuffleConv (1x1 multiply-adds and its pixel shuffle)' in d['categories']['MRNet']
        assert 'ShuffleConv (1x1 multiply-adds and its pixel shuffle)' not in d['categories']['EDSR-baseline']
