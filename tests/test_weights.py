"""Weight loading: checkpoint forms, config inference, mismatches and the refusal of code-carrying pickles."""
import json
import os
import pickle

import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.archs.mrnet_config import receptive_radius
from mrnet_arch.storage.weights import WeightsError, infer_config, load_model, read_state_dict

SMALL = dict(num_feat=8, num_block=1)


def _seeded(cls, seed=0, **kwargs):
    torch.manual_seed(seed)
    return cls(**SMALL, **kwargs).eval()


@pytest.mark.parametrize('kwargs', [
    dict(upscale=2, num_recursion=2),
    dict(upscale=3, num_recursion=3, fusion='conv1x1'),
    dict(upscale=4, num_recursion=2, shuffle_kernel=3, num_in_ch=1, num_out_ch=1),
    dict(upscale=2, num_recursion=2, recursive_module='input_encoder'),
    dict(upscale=2, num_recursion=2, recursive_module='memory_updater'),
    dict(upscale=2, num_recursion=2, recursive_module='residual'),
])
def test_infer_config_single_scale(kwargs):
    net = MRNet(num_feat=8, num_block=2, **kwargs)
    config = infer_config(net.state_dict())
    expected = dict(type='MRNet', num_in_ch=1 if 'num_in_ch' in kwargs else 3, num_feat=8, num_block=2,
                    recursive_module='mrm', fusion='shuffleconv', shuffle_kernel=1)
    expected['num_out_ch'] = expected['num_in_ch']
    expected.update(kwargs)
    assert config == expected


def test_infer_config_multi_scale_sorted_scales():
    net = MultiScaleMRNet(**SMALL, upscales=(4, 2), num_recursions=(3, 2))
    config = infer_config(net.state_dict())
    assert config['type'] == 'MultiScaleMRNet'
    assert config['upscales'] == [2, 4] and config['num_recursions'] == [2, 3]


def test_params_ema_preferred_and_module_prefix(tmp_path):
    a, b = _seeded(MRNet, 1).state_dict(), _seeded(MRNet, 2).state_dict()
    path = tmp_path / 'net_g_10.pth'
    torch.save({'params': a, 'params_ema': b}, path)
    key = 'sfe.0.weight'
    assert torch.equal(read_state_dict(path)[0][key], b[key])
    assert torch.equal(read_state_dict(path, prefer_ema=False)[0][key], a[key])
    plain = tmp_path / 'ddp.pth'
    torch.save({f'module.{k}': v for k, v in a.items()}, plain)
    net, _ = load_model(plain)
    assert torch.equal(net.state_dict()[key], a[key])


def test_load_model_output_matches_and_scale_selected(tmp_path):
    net = _seeded(MultiScaleMRNet, upscales=(2, 3), num_recursions=(2, 3))
    path = tmp_path / 'ms.pth'
    torch.save({'params': net.state_dict()}, path)
    loaded, config = load_model(path, scale=3)
    assert config['upscale'] == 3 and loaded.upscale == 3
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x, scale=3))


def test_safetensors_metadata_overrides_inference(tmp_path):
    from safetensors.torch import save_file
    net = _seeded(MRNet, upscale=2, num_recursion=2, recursive_module='baseline')
    old = {k: v for k, v in net.state_dict().items() if k != 'mrm.baseline'}  # saved before the marker existed
    assert infer_config(old)['recursive_module'] == 'residual'  # without the marker the tensors cannot tell
    path = str(tmp_path / 'baseline.safetensors')
    save_file(old, path, metadata={'mrnet_config': json.dumps(dict(infer_config(old), recursive_module='baseline'))})
    loaded, loaded_config = load_model(path)
    assert loaded_config['recursive_module'] == 'baseline'
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')


def test_pickle_carrying_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned.txt'
    path = tmp_path / 'evil.pth'
    torch.save({'params': {'sfe.0.weight': torch.zeros(1)}, 'hook': _Payload(str(marker))}, path)
    with pytest.raises(WeightsError, match='refusing to load') as err:
        load_model(path)
    assert str(path) in str(err.value)
    assert not marker.exists()
    # the payload is real: an unrestricted load would have run it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_plain_pickle_payload_is_refused(tmp_path):
    marker = tmp_path / 'pwned2.txt'
    path = tmp_path / 'evil2.pth'
    with open(path, 'wb') as f:
        pickle.dump(_Payload(str(marker)), f)
    with pytest.raises(WeightsError, match='evil2.pth'):
        read_state_dict(path)
    assert not marker.exists()


def test_x4_weights_asked_for_x2(tmp_path):
    path = tmp_path / 'x4.pth'
    torch.save({'params': _seeded(MRNet, upscale=4, num_recursion=2).state_dict()}, path)
    with pytest.raises(WeightsError, match=r'scale x2 was asked for.*MRNet weights are for x4'):
        load_model(path, scale=2)
    ms = tmp_path / 'ms.pth'
    torch.save(_seeded(MultiScaleMRNet, upscales=(2, 3), num_recursions=(2, 2)).state_dict(), ms)
    with pytest.raises(WeightsError, match=r'x4 was asked for.*x2, x3'):
        load_model(ms, scale=4)


def test_weights_of_another_arch(tmp_path):
    from basicsr.archs.edsr_arch import EDSR
    path = tmp_path / 'edsr.pth'
    torch.save({'params': EDSR(3, 3, num_feat=8, num_block=1, upscale=2).state_dict()}, path)
    with pytest.raises(WeightsError, match=r"not MRNet weights: missing keys \['mrm.conv_block.0.0.conv1.weight'"):
        load_model(path)


def test_inconsistent_weights_name_keys(tmp_path):
    sd = _seeded(MRNet).state_dict()
    del sd['mrm.memory_updater.weight']  # the bias stays: no recursive module fits
    path = tmp_path / 'broken.pth'
    torch.save(sd, path)
    with pytest.raises(WeightsError, match=r"unexpected keys \['mrm.memory_updater.bias'\]"):
        load_model(path)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(WeightsError, match='bad.pth'):
        load_model(bad)
    with pytest.raises(WeightsError, match='not found'):
        load_model(tmp_path / 'missing.pth')
    bad_st = tmp_path / 'bad.safetensors'
    bad_st.write_bytes(os.urandom(64))
    with pytest.raises(WeightsError, match='bad.safetensors'):
        load_model(bad_st)


@pytest.mark.parametrize('kwargs', [
    dict(upscale=2, num_recursion=2),
    dict(upscale=3, num_recursion=1, fusion='conv1x1'),
    dict(upscale=2, num_recursion=1, shuffle_kernel=3),
])
def test_receptive_radius_is_exact(kwargs):
    """A change at one input pixel moves outputs exactly ``receptive_radius`` input pixels away, not further."""
    net = _seeded(MRNet, **kwargs).double()
    radius, s = receptive_radius(infer_config(net.state_dict())), kwargs['upscale']
    size = 2 * radius + 9
    x = torch.rand(1, 3, size, size, dtype=torch.float64)
    y = x.clone()
    c = size // 2
    y[:, :, c, c] += 0.5
    with torch.no_grad():
        changed = (net(x) - net(y)).abs().amax(dim=(0, 1)) > 0
    rows = changed.any(dim=1).nonzero().flatten()
    # LR pixel c covers HR rows c*s .. c*s+s-1; reach in LR pixels on each side:
    reach = max(c * s - rows.min().item(), rows.max().item() - (c * s + s - 1))
    assert -(-reach // s) == radius
