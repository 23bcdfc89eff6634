"""``mrnet contribute openmodeldb``: an OpenModelDB entry for the demo weights, written into a folder laid out like
OpenModelDB's ``data/`` (minimal registries built here), checked for content, OpenModelDB's JSON formatting and
key order, idempotence, and errors before anything is written.

The real check against OpenModelDB's own ``npm run validate-db`` is described in docs/contributing.md.
"""
import json
import os
from os import path as osp

import pytest
import yaml

from mrnet_arch.archs.mrnet_arch import MRNet
from mrnet_arch.cli import main as mrnet
from mrnet_arch.project import package_dir
from mrnet_arch.storage.files import sha256_of
from mrnet_arch.storage.weights import infer_config, load_model, save_safetensors


def main(argv):
    """``mrnet contribute``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['contribute', *argv])


WEIGHTS = osp.join(package_dir(), 'demo_weights', 'MRNet_demo_x2.pth')
PRETRAIN_YML = osp.join(osp.dirname(package_dir()), 'options', 'demo', 'pretrain_MRNet_demo_x2.yml')
URL = 'https://github.com/example/mrnet/releases/download/v0.1.0/MRNet_demo_x2.pth'
# OpenModelDB's src/lib/server/file-data.ts: modelKeyOrder and the resource key order of writeModelData
MODEL_KEY_ORDER = ['name', 'author', 'license', 'tags', 'description', 'date', 'architecture', 'size', 'scale',
                   'inputChannels', 'outputChannels', 'resources', 'trainingIterations', 'trainingEpochs',
                   'trainingBatchSize', 'trainingHRSize', 'trainingOTF', 'dataset', 'datasetSize', 'pretrainedModelG',
                   'pretrainedModelD', 'images', 'thumbnail']
RESOURCE_KEY_ORDER = ['platform', 'type', 'size', 'sha256', 'urls']
ARCHS = {
    'edsr': {'name': 'EDSR', 'input': 'image', 'compatiblePlatforms': ['pytorch', 'onnx']},
    'omnisr': {'name': 'OmniSR', 'input': 'image', 'compatiblePlatforms': ['pytorch']},
}
TAGS = {
    'photo': {'name': 'Photo', 'description': 'Real photos.'},
    'research': {'name': 'Research', 'description': 'From a paper.'},
    'arch:edsr': {'name': 'EDSR', 'description': ''},
    'arch:omnisr': {'name': 'OmniSR', 'description': ''},
    'scale:2': {'name': '2x', 'description': ''},
}
USERS = {'alice': {'name': 'Alice'}, 'zed': {'name': 'Zed'}}
CATEGORIES = {'architecture': {'name': 'Architecture', 'description': '', 'order': 2, 'simple': False,
                               'tags': ['arch:omnisr', 'arch:edsr']}}


def _js(data):
    """JSON.stringify(data, null, 4): what OpenModelDB's validate-db requires (no trailing newline)."""
    return json.dumps(data, indent=4, ensure_ascii=False)


@pytest.fixture
def checkout(tmp_path):
    data = tmp_path / 'data'
    (data / 'models').mkdir(parents=True)
    for name, content in (('architectures', ARCHS), ('tags', TAGS), ('users', USERS),
                          ('tag-categories', CATEGORIES)):
        (data / f'{name}.json').write_text(_js(content), encoding='utf-8')
    return tmp_path


def _snapshot(folder):
    return {osp.relpath(osp.join(d, f), folder): open(osp.join(d, f), 'rb').read()
            for d, _, files in os.walk(folder) for f in files}


def _run(checkout, *extra, weights=WEIGHTS, url=URL):
    args = ['openmodeldb', str(checkout)] + (['--weights', weights] if weights else [])
    return main(args + (['--weights-url', url] if url else []) + list(extra))


def test_entry_holds_what_the_weights_and_their_provenance_say(checkout, capsys):
    assert _run(checkout) == 0
    out = capsys.readouterr().out
    path = checkout / 'data' / 'models' / '2x-MRNet-demo.json'
    assert 'wrote     data/models/2x-MRNet-demo.json' in out
    text = path.read_text(encoding='utf-8')
    entry = json.loads(text)
    _, config = load_model(WEIGHTS)
    assert entry['architecture'] == 'mrnet'
    assert entry['scale'] == config['upscale']
    assert (entry['inputChannels'], entry['outputChannels']) == (config['num_in_ch'], config['num_out_ch'])
    assert entry['size'] == [f'{config["num_feat"]}nf', f'{config["num_block"]}nb', f'{config["num_recursion"]}nr']
    assert entry['resources'] == [{'platform': 'pytorch', 'type': 'pth', 'size': osp.getsize(WEIGHTS),
                                   'sha256': sha256_of(WEIGHTS), 'urls': [URL]}]
    # the provenance (PROVENANCE.md) agrees with the option file the weights were trained with
    with open(PRETRAIN_YML, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    train_set = opt['datasets']['train']
    assert entry['trainingIterations'] == opt['train']['total_iter']
    assert entry['trainingBatchSize'] == train_set['batch_size_per_gpu']
    assert entry['trainingHRSize'] == train_set['gt_size']
    assert entry['dataset'].startswith(train_set['name'])
    assert entry['license'] == 'MIT' and entry['datasetSize'] >= 1
    assert entry['tags'] == ['photo'] and entry['images'] == []
    assert entry['author'] in json.loads((checkout / 'data' / 'users.json').read_text(encoding='utf-8'))
    # OpenModelDB's formatting and its writer's key order
    assert text == _js(entry) and not text.endswith('\n') and text.startswith('{\n    "name": ')
    assert list(entry) == [k for k in MODEL_KEY_ORDER if k in entry]
    assert list(entry['resources'][0]) == RESOURCE_KEY_ORDER


def test_description_names_a_global_skip_the_weights_hold(checkout, tmp_path):
    weights = tmp_path / 'MRNet-S_x2_bicubic-skip.safetensors'
    net = MRNet(upscale=2, num_feat=16, num_block=1, num_recursion=2, global_skip='bicubic')
    save_safetensors(net, dict(infer_config(net.state_dict()), global_skip='bicubic'), str(weights))
    assert _run(checkout, '--name', 'MRNet-S-bicubic-skip', '--date', '2026-12-07', '--license', 'MIT',
                weights=str(weights)) == 0
    entry = json.loads((checkout / 'data' / 'models' / '2x-MRNet-S-bicubic-skip.json').read_text(encoding='utf-8'))
    assert 'shuffleconv fusion, plus a bicubic global skip (' in entry['description']
    assert entry['resources'][0]['type'] == 'safetensors' and entry['size'] == ['16nf', '1nb', '2nr']
    assert _run(checkout) == 0  # the demo weights have no global skip
    demo = json.loads((checkout / 'data' / 'models' / '2x-MRNet-demo.json').read_text(encoding='utf-8'))
    assert 'global skip' not in demo['description'] and 'shuffleconv fusion;' in demo['description']


def test_registries_gain_the_arch_its_tag_and_the_author_in_sorted_place(checkout):
    assert _run(checkout, '--author', 'Bob Smith', '--tags', 'research', 'photo') == 0
    data = checkout / 'data'
    archs = json.loads((data / 'architectures.json').read_text(encoding='utf-8'))
    assert list(archs) == ['edsr', 'mrnet', 'omnisr'] and archs['mrnet']['input'] == 'image'
    assert {k: archs[k] for k in ARCHS} == ARCHS
    tags = json.loads((data / 'tags.json').read_text(encoding='utf-8'))
    assert list(tags) == ['photo', 'research', 'arch:edsr', 'arch:mrnet', 'arch:omnisr', 'scale:2']
    users = json.loads((data / 'users.json').read_text(encoding='utf-8'))
    assert list(users) == ['alice', 'bob-smith', 'zed'] and users['bob-smith'] == {'name': 'Bob Smith'}
    categories = json.loads((data / 'tag-categories.json').read_text(encoding='utf-8'))
    assert categories['architecture']['tags'] == ['arch:omnisr', 'arch:edsr', 'arch:mrnet']
    for name in ('architectures', 'tags', 'users', 'tag-categories'):
        text = (data / f'{name}.json').read_text(encoding='utf-8')
        assert text == _js(json.loads(text))
    entry = json.loads((data / 'models' / '2x-MRNet-demo.json').read_text(encoding='utf-8'))
    assert entry['author'] == 'bob-smith' and entry['tags'] == ['photo', 'research']


def test_rerun_changes_nothing_and_a_differing_entry_needs_overwrite(checkout, capsys):
    assert _run(checkout, '--author', 'alice') == 0
    users = (checkout / 'data' / 'users.json').read_bytes()
    assert users == _js(USERS).encode()  # an existing user is reused, not added
    before = _snapshot(checkout)
    capsys.readouterr()
    assert _run(checkout, '--author', 'alice') == 0
    assert 'unchanged data/models/2x-MRNet-demo.json' in capsys.readouterr().out
    assert _snapshot(checkout) == before
    assert _run(checkout, '--author', 'alice', '--license', 'CC-BY-4.0') == 2
    assert 'pass --overwrite' in capsys.readouterr().err
    assert _snapshot(checkout) == before
    assert _run(checkout, '--author', 'alice', '--license', 'CC-BY-4.0', '--overwrite') == 0
    entry = json.loads((checkout / 'data' / 'models' / '2x-MRNet-demo.json').read_text(encoding='utf-8'))
    assert entry['license'] == 'CC-BY-4.0'


@pytest.mark.parametrize('kwargs, extra, message', [
    ({'weights': None}, [], 'needs --weights'),
    ({'weights': 'no/such/weights.pth'}, [], 'no/such/weights.pth: no such file'),
    ({'url': None}, [], '--weights-url'),
    ({'url': 'not a url'}, [], "--weights-url 'not a url'"),
    ({'url': 'ftp://example.com/w.pth'}, [], 'http(s) URL'),
    ({'url': 'https://cdn.discordapp.com/attachments/1/w.pth'}, [], 'Discord'),
    ({}, ['--tags', 'nonexistent'], '--tags nonexistent'),
    ({}, ['--tags', 'scale:2'], '--tags scale:2'),
    ({}, ['--license', 'MIT License'], '--license'),
    ({}, ['--date', '27.11.2026'], '--date'),
    ({}, ['--name=_'], '--name'),
    ({}, ['--scale', '4'], 'x4'),
])
def test_bad_input_errors_before_writing(checkout, capsys, kwargs, extra, message):
    before = _snapshot(checkout)
    assert _run(checkout, *extra, **kwargs) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err and len(err.strip().splitlines()) == 1
    assert _snapshot(checkout) == before


def test_not_weights_and_not_a_checkout(checkout, tmp_path, capsys):
    bogus = tmp_path / 'bogus.pth'
    bogus.write_bytes(b'not a torch file')
    before = _snapshot(checkout)
    assert _run(checkout, weights=str(bogus)) == 2
    assert 'bogus.pth' in capsys.readouterr().err
    assert _snapshot(checkout) == before
    (checkout / 'data' / 'users.json').unlink()
    assert _run(checkout) == 2
    err = capsys.readouterr().err
    assert 'OpenModelDB checkout' in err and 'data/users.json' in err
