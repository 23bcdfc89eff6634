"""``tools/cpu_campaign.py``'s carried state, without training: the newest complete state of a session becomes
fp16 weights within the per-session budget and a state.json with the totals; which run a restart continues."""
import json
import os

import pytest
import torch

from _scripts import tool_script
from mrnet_arch.archs.mrnet_arch import MRNet
from mrnet_arch.storage.weights import load_model

BUDGET = 4 * 2**20  # what the campaign may add to the repository per session


@pytest.fixture
def campaign(tmp_path, monkeypatch):
    cc = tool_script('cpu_campaign')
    exp, state = tmp_path / 'experiments' / 'campaign', tmp_path / 'state'
    for name, value in (('EXP', exp), ('STATE_DIR', state), ('CARRIED_WEIGHTS', state / 'weights_fp16.safetensors'),
                        ('CARRIED_STATE', state / 'state.json'), ('SESSION', exp / 'campaign_session.json')):
        monkeypatch.setattr(cc, name, str(value))
    (exp / 'models').mkdir(parents=True)
    (exp / 'training_states').mkdir()
    return cc


def _session(cc, iteration, net, base=0, carried=None):
    torch.save({'params': net.state_dict()}, os.path.join(cc.EXP, 'models', f'net_g_{iteration}.pth'))
    open(os.path.join(cc.EXP, 'training_states', f'{iteration}.state'), 'wb').close()
    cc.write_session({'base_iteration': base, 'carried_sha256': carried, 'pretrain': None, 'checkpoint_freq': 5,
                      'cpu_kind': 'test CPU', 'cpu_seconds': 100.0, 'wall_seconds': 150.0, 'chunks': 2})


def test_pack_writes_paper_size_fp16_weights_within_the_budget(campaign):
    torch.manual_seed(0)
    net = MRNet(global_skip='bicubic')  # the campaign's network: paper size plus the skip
    _session(campaign, 40, net, base=100)
    campaign.pack()
    assert os.path.getsize(campaign.CARRIED_WEIGHTS) < BUDGET
    loaded, config = load_model(campaign.CARRIED_WEIGHTS)  # the arch is read back from the weights
    assert config['global_skip'] == 'bicubic' and config['num_feat'] == 64 and config['num_recursion'] == 4
    for key, value in net.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(loaded.state_dict()[key], value.half().float())
    with open(campaign.CARRIED_STATE, encoding='utf-8') as f:
        state = json.load(f)
    assert state['iterations'] == 140 and state['cpu_seconds'] == {'test CPU': 100.0}
    assert state['chunks'] == 2 and state['sessions'][-1]['to_iteration'] == 140
    assert len(state['weights_sha256']) == 64


def test_a_restart_continues_the_run_that_the_carried_state_came_from(campaign):
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, num_recursion=2)
    _session(campaign, 10, net, base=0, carried=None)
    assert campaign.session_matches(campaign.carried_state())  # no carried state yet: same run
    campaign.pack()
    carried = campaign.carried_state()
    assert campaign.session_matches(carried)  # packed from this very run: resume it with its optimizer
    campaign.write_session(dict(campaign.read_json(campaign.SESSION), packed_sha256='other', carried_sha256='old'))
    assert not campaign.session_matches(carried)  # another machine's newer carried state: start from it


def test_a_session_that_goes_on_after_a_stop_counts_its_time_once(campaign):
    """``stop`` packs the session; ``start`` on the same machine continues the same run. The next pack (and every
    curve row between) adds only the time after the first pack, and the session keeps one entry."""
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, num_recursion=2)
    _session(campaign, 10, net)  # 100 CPU-s, 150 wall-s, 2 chunks
    campaign.pack()
    session = campaign.read_json(campaign.SESSION)
    assert campaign.session_totals(session, 'test CPU')['cpu_seconds'] == {'test CPU': 100.0}
    torch.save({'params': net.state_dict()}, os.path.join(campaign.EXP, 'models', 'net_g_15.pth'))
    open(os.path.join(campaign.EXP, 'training_states', '15.state'), 'wb').close()
    session.update(cpu_seconds=130.0, wall_seconds=190.0, chunks=3)  # one more chunk: 30 CPU-s, 40 wall-s
    campaign.write_session(session)
    expected = {'cpu_seconds': {'test CPU': 130.0}, 'wall_seconds': {'test CPU': 190.0}}
    assert campaign.session_totals(session, 'test CPU') == expected
    campaign.pack()
    with open(campaign.CARRIED_STATE, encoding='utf-8') as f:
        state = json.load(f)
    assert state['iterations'] == 15 and state['cpu_seconds'] == {'test CPU': 130.0} and state['chunks'] == 3
    assert [(s['from_iteration'], s['to_iteration'], s['cpu_seconds']) for s in state['sessions']] == [(0, 15, 130.0)]


def test_a_session_packed_before_its_counts_were_kept_takes_them_from_the_carried_entry(campaign):
    torch.manual_seed(0)
    net = MRNet(num_feat=8, num_block=1, num_recursion=2)
    _session(campaign, 10, net)
    campaign.pack()
    session = campaign.read_json(campaign.SESSION)
    del session['packed']
    session.update(cpu_seconds=160.0, wall_seconds=200.0, chunks=3)
    assert campaign.session_totals(session, 'test CPU')['cpu_seconds'] == {'test CPU': 160.0}
    assert campaign.packed_counts(session) == {'cpu_seconds': 100.0, 'wall_seconds': 150.0, 'chunks': 2}


# ------------------------------------------------------------------------------------------------ shipping
DEMO = {'skimage': 0.9, 'debian': -0.5}  # the demo weights' gains over bicubic: positive on one set, negative on one
BASE = {'bicubic': {g: {'psnr': 30.0, 'ssim': 0.9, 'images': n} for g, n in (('skimage', 2), ('debian', 12))},
        'demo_weights': {g: {'psnr': 30.0 + DEMO[g], 'ssim': 0.91, 'images': n}
                         for g, n in (('skimage', 2), ('debian', 12))}}
TINY = {'num_feat': 8, 'num_block': 1, 'num_recursion': 2, 'global_skip': 'bicubic'}


def _rows(points, first_iteration=10):
    """Curve rows as ``read_curve`` returns them (strings) from (CPU-hours, gain chelsea+coffee, gain Debian)."""
    rows = []
    for i, (hours, skimage, debian) in enumerate(points):
        rows.append({'iteration': str(first_iteration * (i + 1)), 'cpu_seconds': str(hours * 3600),
                     'wall_seconds': str(hours * 4000), 'cpu_kind': 'test CPU', 'date_utc': '2026-12-06 20:00:00',
                     'psnr_debian': str(30 + debian), 'ssim_debian': '0.95', 'gain_debian': str(debian),
                     'psnr_skimage': str(30 + skimage), 'ssim_skimage': '0.91', 'gain_skimage': str(skimage)})
    return rows


def test_not_ready_below_the_bar_and_before_four_cpu_hours(campaign):
    ready, reason = campaign.shipping_decision(_rows([(0.5, 0.2, 0.3), (1.0, 0.4, 0.5)]), BASE)
    assert not ready and '+1.800 dB' in reason  # twice the demo weights' +0.9 dB
    assert not campaign.shipping_decision([], BASE)[0]


def test_ready_when_the_gain_bar_is_met_on_both_sets(campaign):
    ready, reason = campaign.shipping_decision(_rows([(0.5, 0.2, 0.3), (1.0, 1.81, 0.3)]), BASE)
    assert ready and 'gain bar' in reason
    assert not campaign.shipping_decision(_rows([(1.0, 1.79, 0.3)]), BASE)[0]  # just under twice +0.9 dB


def test_a_negative_demo_gain_makes_the_debian_bar_zero(campaign):
    """Twice a negative gain would be a bar below bicubic: the Debian half is met by any gain >= 0."""
    assert campaign.shipping_decision(_rows([(1.0, 1.9, 0.0)]), BASE)[0]
    assert not campaign.shipping_decision(_rows([(1.0, 1.9, -0.01)]), BASE)[0]  # above -1.0 (2 x -0.5), below 0
    positive = dict(BASE, demo_weights=dict(BASE['demo_weights'], debian={'psnr': 30.2, 'ssim': 0.9}))
    assert not campaign.shipping_decision(_rows([(1.0, 1.9, 0.3)]), positive)[0]  # a positive demo gain: bar +0.4
    assert campaign.shipping_decision(_rows([(1.0, 1.9, 0.4)]), positive)[0]


def test_ready_when_the_last_four_cpu_hours_added_less_than_005_db(campaign):
    flat = [(0.5, 0.3, 0.2), (1.0, 0.5, 0.4), (3.0, 0.52, 0.42), (5.0, 0.54, 0.44)]  # +0.04 dB since 1.0 CPU-hours
    ready, reason = campaign.shipping_decision(_rows(flat), BASE)
    assert ready and 'plateau' in reason and 'since iteration 20' in reason
    rising = flat[:-1] + [(5.0, 0.56, 0.44)]  # +0.06 dB on chelsea+coffee
    assert not campaign.shipping_decision(_rows(rising), BASE)[0]
    rising = flat[:-1] + [(5.0, 0.54, 0.46)]  # +0.06 dB on the Debian photos
    assert not campaign.shipping_decision(_rows(rising), BASE)[0]
    earlier = flat[:-1] + [(4.9, 0.54, 0.44)]  # 4 CPU-hours back reach the row at 0.5: +0.24 dB since
    ready, reason = campaign.shipping_decision(_rows(earlier), BASE)
    assert not ready and 'since iteration 10' in reason
    too_short = [(1.0, 0.5, 0.4), (4.9, 0.5, 0.4)]  # flat, but over 3.9 CPU-hours only
    assert not campaign.shipping_decision(_rows(too_short), BASE)[0]


@pytest.fixture
def shipping(campaign, tmp_path, monkeypatch):
    """The campaign with its curve, baselines, option file (a tiny network), data set and output folder in tmp."""
    import yaml
    with open(campaign.OPTION_FILE, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt['network_g'].update(TINY)
    opt['datasets']['train'].update(batch_size_per_gpu=2, gt_size=16)
    option_file = tmp_path / 'train_tiny_campaign.yml'
    option_file.write_text(yaml.safe_dump(opt), encoding='utf-8')
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'paths.json').write_text(json.dumps({'train_photos': ['a', 'b', 'c'], 'holdout_photos': ['d'],
                                                 'tiles': 30}), encoding='utf-8')
    for name, value in (('CURVE', tmp_path / 'curve.tsv'), ('BASELINES', tmp_path / 'baselines.json'),
                        ('PRETRAINED', tmp_path / 'pretrained'), ('OPTION_FILE', option_file), ('DATA', data)):
        monkeypatch.setattr(campaign, name, str(value))
    with open(campaign.BASELINES, 'w', encoding='utf-8') as f:
        json.dump(BASE, f)
    return campaign


def _write_curve(cc, rows):
    with open(cc.CURVE, 'w', encoding='utf-8') as f:
        f.write('\t'.join(cc.CURVE_COLUMNS) + '\n')
        for row in rows:
            f.write('\t'.join(str(row[k]) for k in cc.CURVE_COLUMNS) + '\n')


def test_ship_refuses_when_the_rule_does_not_hold(shipping, capsys):
    torch.manual_seed(0)
    _session(shipping, 10, MRNet(**TINY), base=100)
    _write_curve(shipping, _rows([(0.5, 0.2, 0.3)], first_iteration=110))
    assert shipping.read_curve()[-1]['iteration'] == '110'
    with pytest.raises(SystemExit) as exit_:
        shipping.main(['ship'])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'not ready' in err and '--force' in err
    assert not os.path.exists(shipping.PRETRAINED)


def test_ship_force_writes_weights_provenance_and_card(shipping):
    from mrnet_arch.publishing.provenance import read_provenance
    from mrnet_arch.storage.files import sha256_of
    torch.manual_seed(0)
    net = MRNet(**TINY)
    _session(shipping, 10, net, base=100)  # the session's fp32 checkpoint net_g_10 is iteration 110 of the campaign
    _write_curve(shipping, _rows([(0.5, 0.2, 0.3)], first_iteration=110))
    shipping.main(['ship', '--force'])
    out = shipping.PRETRAINED
    assert sorted(os.listdir(out)) == ['MODEL_CARD.md', 'MRNet-S_x2_bicubic-skip.safetensors', 'PROVENANCE.md']
    weights = os.path.join(out, 'MRNet-S_x2_bicubic-skip.safetensors')
    loaded, config = load_model(weights)
    assert {k: config[k] for k in TINY} == TINY and config['upscale'] == 2
    for key, value in net.state_dict().items():
        assert loaded.state_dict()[key].dtype == value.dtype
        torch.testing.assert_close(loaded.state_dict()[key], value)
    found = read_provenance(weights, 2)
    assert found['iterations'] == 110 and found['license'] == 'MIT'
    assert found['batch_size'] == 2 and found['hr_size'] == 16 and found['dataset_size'] == 3
    with open(os.path.join(out, 'PROVENANCE.md'), encoding='utf-8') as f:
        provenance = f.read()
    assert f'| sha256 | `{sha256_of(weights)}` |' in provenance
    assert '--force' in provenance and 'net_g_10.pth`: fp32' in provenance and 'test CPU: 0.03' in provenance
    assert 'not the paper\'s architecture' in provenance and 'DEBIAN_PHOTOS.md' in provenance
    with open(os.path.join(out, 'MODEL_CARD.md'), encoding='utf-8') as f:
        card = f.read()
    assert card.startswith('# MRNet-S_x2_bicubic-skip') and 'bicubic global skip' in card
    assert '| chelsea+coffee (2 photos) | 30.2000 | 0.9100 |' in card  # the held-out scores as the card's results
    assert '| total_iter | 110 |' in card


def test_the_curve_marks_the_shipped_iteration_and_the_bars_of_the_rule(shipping):
    torch.manual_seed(0)
    assert shipping.shipped_iteration() is None  # nothing shipped yet
    _session(shipping, 10, MRNet(**TINY), base=100)
    _write_curve(shipping, _rows([(0.5, 0.2, 0.3)], first_iteration=110))
    shipping.main(['ship', '--force'])
    assert shipping.shipped_iteration() == 110
    base = {'bicubic': {'skimage': {'psnr': 30.0}, 'debian': {'psnr': 37.0}},
            'demo_weights': {'skimage': {'psnr': 30.9}, 'debian': {'psnr': 36.5}}}
    assert shipping.gain_bar(base, 'skimage') == pytest.approx(1.8)
    assert shipping.gain_bar(base, 'debian') == 0.0  # twice a negative gain would be a bar below bicubic


def test_ship_counts_the_cpu_hours_of_the_shipped_iteration_not_the_training_after_it(shipping):
    torch.manual_seed(0)
    _session(shipping, 10, MRNet(**TINY), base=100)  # the session trained 100 CPU-seconds in all ...
    _write_curve(shipping, _rows([(60 / 3600, 0.2, 0.3)], first_iteration=110))  # ... 60 of them up to the row
    shipping.main(['ship', '--force'])
    with open(os.path.join(shipping.PRETRAINED, 'PROVENANCE.md'), encoding='utf-8') as f:
        provenance = f.read()
    assert '| CPU-hours per CPU kind | test CPU: 0.02 |' in provenance  # 60 s, not 100 s (0.03)
    assert '| CPU-hours in all | 0.02 (' in provenance


def test_ship_takes_the_carried_fp16_weights_when_the_checkpoint_is_gone(shipping):
    torch.manual_seed(0)
    net = MRNet(**TINY)
    _session(shipping, 10, net, base=100)
    shipping.pack()  # carried state at iteration 110
    os.remove(os.path.join(shipping.EXP, 'models', 'net_g_10.pth'))
    _write_curve(shipping, _rows([(0.5, 0.2, 0.3)], first_iteration=110))
    shipping.main(['ship', '--force'])
    loaded, _ = load_model(os.path.join(shipping.PRETRAINED, 'MRNet-S_x2_bicubic-skip.safetensors'))
    for key, value in net.state_dict().items():
        assert loaded.state_dict()[key].dtype == value.dtype  # widened back to fp32
        if value.is_floating_point():
            torch.testing.assert_close(loaded.state_dict()[key], value.half().float())
    with open(os.path.join(shipping.PRETRAINED, 'PROVENANCE.md'), encoding='utf-8') as f:
        assert 'the carried fp16 weights' in f.read()
