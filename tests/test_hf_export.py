"""``mrnet export --format hf`` and ``Upscaler.from_pretrained``: a Hugging Face Hub model repository of the demo
weights (and of a tiny multi-scale network), its card's metadata as the Hub reads it, and loading it back from the
folder and, offline, as a repo id from huggingface_hub's cache; all without network."""
import json
import os
import shutil
import subprocess
import sys
from os import path as osp

import numpy as np
import pytest
import torch
import yaml

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MultiScaleMRNet, Upscaler
from mrnet_arch.cli import main as mrnet
from mrnet_arch.project import package_dir
from mrnet_arch.storage.weights import WeightsError, load_model


def main(argv):
    """``mrnet export``, with its errors mapped to exit statuses as on the command line."""
    return mrnet(['export', *argv])


WEIGHTS = osp.join(package_dir(), 'demo_weights', 'MRNet_demo_x2.pth')
REPO = osp.dirname(package_dir())
RESULTS = {'DemoHeldout': {'psnr': 33.5, 'ssim': 0.91}, 'Set5': {'psnr': 36.0}}


def _front_matter(path):
    text = open(path, encoding='utf-8').read()
    assert text.startswith('---\n')
    head, _, body = text[4:].partition('\n---\n')
    return yaml.safe_load(head), body


@pytest.fixture(scope='module')
def repo(tmp_path_factory):
    out = tmp_path_factory.mktemp('hf') / 'mrnet-demo'
    results = out.parent / 'results.json'
    results.write_text(json.dumps(RESULTS), encoding='utf-8')
    assert main(['--weights', WEIGHTS, '--format', 'hf', '--output', str(out), '--results', str(results)]) == 0
    return out


def _image():
    return (np.random.RandomState(0).rand(23, 17, 3) * 255).astype(np.uint8)


def test_repository_files_and_card_metadata(repo):
    assert sorted(os.listdir(repo)) == ['README.md', 'config.json', 'model.safetensors']
    _, config = load_model(WEIGHTS)
    assert json.loads((repo / 'config.json').read_text(encoding='utf-8')) == config
    net, loaded = load_model(str(repo / 'model.safetensors'))
    assert loaded == config
    meta, body = _front_matter(repo / 'README.md')
    assert meta['license'] == 'mit'  # the demo weights' PROVENANCE.md: MIT
    assert meta['pipeline_tag'] == 'image-to-image'
    assert {'super-resolution', 'mrnet', 'basicsr'} <= set(meta['tags'])
    (index, ) = meta['model-index']
    assert index['name'] == 'MRNet_demo_x2'
    scores = {(r['dataset']['name'], m['type']): m['value'] for r in index['results'] for m in r['metrics']}
    assert scores == {(s, k): v for s, metrics in RESULTS.items() for k, v in metrics.items()}
    assert all(r['dataset']['config'] == f'x{config["upscale"]}' and r['task']['type'] == 'image-to-image'
               for r in index['results'])
    # the body is mrnet card's, with provenance and the paper (no DOI: the paper text carries none)
    assert '# MRNet_demo_x2' in body and '## Results' in body and '| DemoHeldout | 33.5000 | 0.9100 |' in body
    assert '## Provenance' in body and 'Memory Recursive Network for Single Image Super-Resolution' in body
    assert 'doi.org' not in body


def test_card_parses_with_huggingface_hub(repo):
    hub = pytest.importorskip('huggingface_hub')  # in the test extra: CI has it
    card = hub.ModelCard.load(str(repo / 'README.md'))
    assert card.data.license == 'mit' and card.data.pipeline_tag == 'image-to-image'
    assert 'super-resolution' in card.data.tags and card.data.model_name == 'MRNet_demo_x2'
    got = {(r.dataset_name, r.metric_type, r.dataset_config): r.metric_value for r in card.data.eval_results}
    assert got == {(s, k, 'x2'): v for s, metrics in RESULTS.items() for k, v in metrics.items()}
    assert all(r.task_type == 'image-to-image' for r in card.data.eval_results)


def test_from_pretrained_folder_equals_from_weights(repo):
    kwargs = dict(device='cpu', precision='fp32')
    pretrained, reference = Upscaler.from_pretrained(str(repo), **kwargs), Upscaler.from_weights(WEIGHTS, **kwargs)
    assert pretrained.config == reference.config
    assert np.array_equal(pretrained.upscale(_image()), reference.upscale(_image()))


def test_from_pretrained_repo_id_from_the_hub_cache_offline(repo, tmp_path):
    pytest.importorskip('huggingface_hub')  # in the test extra: CI has it
    commit = '0123456789abcdef0123456789abcdef01234567'
    cached = tmp_path / 'hub' / 'models--someone--mrnet-demo'
    (cached / 'refs').mkdir(parents=True)
    (cached / 'refs' / 'main').write_text(commit)
    shutil.copytree(repo, cached / 'snapshots' / commit)
    out = tmp_path / 'sr.npy'
    script = ('import sys, numpy as np; from mrnet_arch import Upscaler; '
              "up = Upscaler.from_pretrained('someone/mrnet-demo', device='cpu', precision='fp32'); "
              'np.save(sys.argv[1], up.upscale(np.load(sys.argv[2])))')
    np.save(tmp_path / 'lr.npy', _image())
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(tmp_path / 'hub'), PYTHONPATH=REPO)
    subprocess.run([sys.executable, '-c', script, str(out), str(tmp_path / 'lr.npy')], env=env, check=True,
                   timeout=240)
    reference = Upscaler.from_weights(WEIGHTS, device='cpu', precision='fp32').upscale(_image())
    assert np.array_equal(np.load(out), reference)
    # a repo that is not in the cache: a WeightsError naming it
    proc = subprocess.run([sys.executable, '-c', script.replace('mrnet-demo', 'not-cached'), str(out),
                           str(tmp_path / 'lr.npy')], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0 and 'WeightsError: Hub repo someone/not-cached' in proc.stderr


def test_repo_id_without_huggingface_hub_names_the_extra():
    script = ("import sys; sys.modules['huggingface_hub'] = None\n"
              'from mrnet_arch import Upscaler\n'
              "try:\n    Upscaler.from_pretrained('someone/mrnet-demo')\n"
              'except ImportError as err:\n    print(err)\n')
    proc = subprocess.run([sys.executable, '-c', script], env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                          text=True, timeout=240, check=True)
    assert proc.stdout.strip() == ('loading the Hub repo someone/mrnet-demo needs huggingface_hub: '
                                   'pip install "mrnet_arch[hf]"')


def test_from_pretrained_bad_sources(tmp_path):
    with pytest.raises(WeightsError, match='no model.safetensors'):
        Upscaler.from_pretrained(str(tmp_path))
    with pytest.raises(WeightsError, match='expected a model folder'):
        Upscaler.from_pretrained(str(tmp_path / 'missing'))


def test_multiscale_repository_keeps_its_scales(tmp_path):
    torch.manual_seed(0)
    net = MultiScaleMRNet(num_feat=8, num_block=1, upscales=(2, 3), num_recursions=(2, 3)).eval()
    weights = tmp_path / 'ms.pth'
    torch.save({'params': net.state_dict()}, weights)
    out = tmp_path / 'repo'
    assert main(['--weights', str(weights), '--format', 'hf', '--output', str(out), '--license', 'Apache-2.0']) == 0
    meta, _ = _front_matter(out / 'README.md')
    assert meta['license'] == 'apache-2.0' and 'model-index' not in meta  # no --results: no scores to index
    for scale in (2, 3):
        up = Upscaler.from_pretrained(str(out), scale=scale, device='cpu', precision='fp32')
        ref = Upscaler.from_weights(str(weights), scale=scale, device='cpu', precision='fp32')
        assert up.scale == scale and np.array_equal(up.upscale(_image()), ref.upscale(_image()))


def test_bad_input_stops_before_writing(tmp_path, capsys):
    copy = tmp_path / 'copy.pth'
    shutil.copy(WEIGHTS, copy)  # no PROVENANCE.md beside it: no licence known
    out = tmp_path / 'repo'
    cases = [
        (['--weights', str(copy)], 'pass --license'),
        (['--weights', WEIGHTS, '--results', str(tmp_path / 'none.json')], '--results'),
        (['--weights', str(tmp_path / 'none.pth')], 'none.pth'),
    ]
    for args, message in cases:
        assert main(args + ['--format', 'hf', '--output', str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
    bad = tmp_path / 'bad.json'
    bad.write_text('{"Set5": {"psnr": "high"}}', encoding='utf-8')
    assert main(['--weights', WEIGHTS, '--format', 'hf', '--output', str(out), '--results', str(bad)]) == 2
    assert 'bad.json' in capsys.readouterr().err and not out.exists()
    afile = tmp_path / 'file'
    afile.write_text('x')
    assert main(['--weights', WEIGHTS, '--format', 'hf', '--output', str(afile)]) == 2
    assert 'is a file' in capsys.readouterr().err and afile.read_text() == 'x'
    assert main(['--weights', WEIGHTS, '--format', 'hf', '--output', str(out)]) == 0
    card = (out / 'README.md').read_bytes()
    assert main(['--weights', WEIGHTS, '--format', 'hf', '--output', str(out), '--license', 'CC-BY-4.0']) == 2
    assert 'pass --overwrite' in capsys.readouterr().err and (out / 'README.md').read_bytes() == card
    assert main(['--weights', WEIGHTS, '--format', 'hf', '--output', str(out), '--license', 'CC-BY-4.0',
                 '--overwrite']) == 0
    assert _front_matter(out / 'README.md')[0]['license'] == 'cc-by-4.0'
    assert main(['--weights', WEIGHTS, '--format', 'onnx', '--output', str(tmp_path / 'm.onnx'), '--license',
                 'MIT']) == 2
    assert 'only for --format hf' in capsys.readouterr().err
