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
