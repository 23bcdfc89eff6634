"""``mrnet card`` and the complexity counts it reports."""
import hashlib
import json

import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MRNet, MultiScaleMRNet
from mrnet_arch.cli import main as mrnet
from mrnet_arch.measurement.complexity import count_macs, count_params, lr_size_for_output
from mrnet_arch.publishing.model_card import parse_log


def main(argv):
    """``mrnet card``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['card', *argv])


def _expected_macs(c, nb, t, s, h, w, in_ch=3, out_ch=3):
    """MRNet ('mrm', ShuffleConv k=1) MACs written out from the layer list of the paper's Fig. 1-4."""
    lr = in_ch * c * 49 + c * c * 9  # SFE
    lr += t * (2 * c * c + (2 * nb + 1) * c * c * 9) + (t - 1) * 2 * c * c  # MRM; last memory update skipped
    lr += c * s * s * t  # ShuffleConv: groups of T inputs -> s^2 outputs
    hr = c * c * 9 + c * out_ch * 9  # conv_hr, conv_last
    return h * w * (lr + s * s * hr)


@pytest.mark.parametrize('c, nb, t, s', [(8, 1, 2, 2), (16, 2, 3, 4)])
def test_count_macs_matches_layer_sum(c, nb, t, s):
    net = MRNet(num_feat=c, num_block=nb, upscale=s, num_recursion=t)
    assert count_macs(net, lr_size=(5, 7)) == _expected_macs(c, nb, t, s, 5, 7)
    h, w = lr_size_for_output(s)
    assert count_macs(net) == _expected_macs(c, nb, t, s, h, w)


def test_count_macs_multiscale_per_scale():
    ms = MultiScaleMRNet(num_feat=8, num_block=1, upscales=(2, 3), num_recursions=(2, 3))
    assert count_macs(ms, (4, 4), scale=3) == _expected_macs(8, 1, 3, 3, 4, 4)
    assert count_macs(ms, (4, 4), scale=2) == _expected_macs(8, 1, 2, 2, 4, 4)
    assert count_params(ms) == sum(p.numel() for p in ms.parameters())


def _experiment(tmp_path):
    """A BasicSR experiment folder: experiments/<name>/models/net_g_latest.pth and the copied YAML."""
    root = tmp_path / 'experiments' / 'tiny_x2'
    (root / 'models').mkdir(parents=True)
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=2)
    weights = root / 'models' / 'net_g_latest.pth'
    torch.save({'params': net.state_dict()}, weights)
    (root / 'tiny_x2.yml').write_text('name: tiny_x2\nmodel_type: MRNetModel\nscale: 2\n'
                                      'train:\n  optim_g: {type: Adam, lr: !!float 2e-4}\n  total_iter: 123\n')
    return net, weights


def test_card_contents(tmp_path):
    net, weights = _experiment(tmp_path)
    results = tmp_path / 'results.json'
    results.write_text(json.dumps({'Set5': {'psnr': 37.5, 'ssim': 0.95}, 'Urban100': {'psnr': 31.25}}))
    out = tmp_path / 'card.md'
    assert main(['--weights', str(weights), '--results', str(results), '--output', str(out)]) == 0
    card = out.read_text()
    assert f'Parameters: {count_params(net):,}' in card
    assert f'{count_macs(net) / 1e9:.1f} G' in card and '| x2 | 640x360 |' in card
    assert hashlib.sha256(weights.read_bytes()).hexdigest() in card
    assert '| Set5 | 37.5000 | 0.9500 |' in card and '| Urban100 | 31.2500 |  |' in card
    assert 'From `tiny_x2.yml`' in card and '| total_iter | 123 |' in card and '| lr | 0.0002 |' in card
    assert '| num_recursion | 2 |' in card


def test_card_from_basicsr_log_to_stdout(tmp_path, capsys):
    _, weights = _experiment(tmp_path)
    log = tmp_path / 'test_tiny.log'
    log.write_text('2024-05-01 10:00:00,000 INFO: Validation Set5\n\t # psnr: 30.0000\tBest: 30.0000 @ 5 iter\n'
                   '2024-05-01 10:00:01,000 INFO: Validation Set5\n\t # psnr: 36.1234\tBest: 36.1234 @ 10 iter\n'
                   '\t # ssim: 0.9400\tBest: 0.9400 @ 10 iter\n\n'
                   '2024-05-01 10:00:02,000 INFO: Saving models and training states.\n')
    assert main(['--weights', str(weights), '--results', str(log)]) == 0
    assert '| Set5 | 36.1234 | 0.9400 |' in capsys.readouterr().out


def test_parse_log_ignores_unrelated_lines():
    assert parse_log('INFO: Validation B100\n\t # psnr: 29.5\nINFO: [epoch:  0, iter: 1] l_pix: 1.0\n') == \
        {'B100': {'psnr': 29.5}}


def test_bad_results_file_is_an_error(tmp_path, capsys):
    _, weights = _experiment(tmp_path)
    bad = tmp_path / 'r.json'
    bad.write_text(json.dumps({'Set5': 38.0}))
    assert main(['--weights', str(weights), '--results', str(bad)]) == 2
    assert "entry 'Set5' must map metric names to numbers" in capsys.readouterr().err
    assert main(['--weights', str(weights), '--results', str(tmp_path / 'missing.json')]) == 2


def test_results_grouped_by_scale(tmp_path):
    from mrnet_arch.publishing.model_card import read_results, results_table
    results = tmp_path / 'r.json'
    results.write_text(json.dumps({'x4': {'Set5': {'psnr': 32.1}}, 'x2': {'Set5': {'psnr': 38.0, 'ssim': 0.96}}}))
    table = results_table(read_results(str(results))).splitlines()
    assert table[0] == '| Scale | Test set | PSNR | SSIM |'
    assert table[2:] == ['| x2 | Set5 | 38.0000 | 0.9600 |', '| x4 | Set5 | 32.1000 |  |']
