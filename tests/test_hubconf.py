"""``hubconf.py``: torch.hub's entry points ``mrnet`` and ``multiscale_mrnet``, loaded with ``source='local'`` (no
network): weights from a path or a (file://) URL give the network ``storage/weights.load_model`` gives,
without weights the paper's network; from a copy of the repository it imports the copy and needs no package but
torch and basicsr."""
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
from os import path as osp

import pytest
import torch

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch import MultiScaleMRNet
from mrnet_arch.archs.mrnet_config import PAPER_RECURSIONS
from mrnet_arch.project import package_dir
from mrnet_arch.storage.weights import infer_config, load_model

REPO = osp.dirname(package_dir())
WEIGHTS = osp.join(package_dir(), 'demo_weights', 'MRNet_demo_x2.pth')


def _hub(*args, **kwargs):
    return torch.hub.load(REPO, *args, source='local', **kwargs)


def _same(a, b, x, **kwargs):
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    with torch.no_grad():
        assert torch.equal(a(x, **kwargs), b(x, **kwargs))


def test_mrnet_with_weights_equals_load_model():
    net = _hub('mrnet', weights=WEIGHTS)
    reference, _ = load_model(WEIGHTS)
    assert not net.training
    _same(net, reference, torch.rand(1, 3, 12, 10))


def test_weights_from_a_url_are_cached_and_hash_checked(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    digest = hashlib.sha256(open(WEIGHTS, 'rb').read()).hexdigest()
    served = tmp_path / 'served'
    served.mkdir()
    good, bad = served / f'mrnet_demo-{digest[:8]}.pth', served / 'mrnet_demo-deadbeef.pth'
    shutil.copy(WEIGHTS, good)
    shutil.copy(WEIGHTS, bad)
    net = _hub('mrnet', weights=good.as_uri(), check_hash=True, progress=False)
    assert (tmp_path / 'torch' / 'hub' / 'checkpoints' / good.name).is_file()
    _same(net, load_model(WEIGHTS)[0], torch.rand(1, 3, 9, 11))
    with pytest.raises(RuntimeError, match='hash'):
        _hub('mrnet', weights=bad.as_uri(), check_hash=True, progress=False)
    assert not (tmp_path / 'torch' / 'hub' / 'checkpoints' / bad.name).exists()


def test_without_weights_the_paper_networks():
    for scale in (2, 3, 4):
        config = infer_config(_hub('mrnet', scale=scale).state_dict())
        assert (config['type'], config['upscale'], config['num_feat'], config['num_block']) == ('MRNet', scale, 64, 10)
        assert config['num_recursion'] == PAPER_RECURSIONS[scale]
    config = infer_config(_hub('multiscale_mrnet').state_dict())
    assert config['upscales'] == [2, 3, 4] and config['num_recursions'] == [PAPER_RECURSIONS[s] for s in (2, 3, 4)]


def test_multiscale_weights(tmp_path):
    torch.manual_seed(0)
    net = MultiScaleMRNet(num_feat=8, num_block=1, upscales=(2, 3), num_recursions=(2, 3)).eval()
    path = tmp_path / 'ms.pth'
    torch.save({'params': net.state_dict()}, path)
    loaded = _hub('multiscale_mrnet', weights=str(path), scale=3)
    assert loaded.upscale == 3
    _same(loaded, load_model(str(path), scale=3)[0], torch.rand(1, 3, 7, 8), scale=2)
    with pytest.raises(ValueError, match="load them with 'multiscale_mrnet'"):
        _hub('mrnet', weights=str(path))


def test_wrong_scale_and_missing_weights(tmp_path):
    with pytest.raises(ValueError, match=r'x2 weights: call mrnet\(scale=2'):
        _hub('mrnet', scale=4, weights=WEIGHTS)
    with pytest.raises(ValueError, match="load them with 'mrnet'"):
        _hub('multiscale_mrnet', weights=WEIGHTS)
    with pytest.raises(FileNotFoundError, match='no such file'):
        _hub('mrnet', weights=str(tmp_path / 'none.pth'))


_MODULES = ('import json, sys\n{code}\n'
            "print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} - set(sys.stdlib_module_names))))\n")


def _third_party(code, cwd):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, '-c', _MODULES.format(code=code)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_a_clone_imports_itself_and_needs_only_torch_and_basicsr(tmp_path):
    clone = tmp_path / 'clone'
    shutil.copytree(osp.join(REPO, 'mrnet_arch'), clone / 'mrnet_arch', ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(osp.join(REPO, 'hubconf.py'), clone)
    load = (f'import torch\nnet = torch.hub.load({str(clone)!r}, "mrnet", source="local", weights={WEIGHTS!r})\n'
            f'import mrnet_arch\nassert mrnet_arch.__file__.startswith({str(clone)!r}), mrnet_arch.__file__')
    used = _third_party(load, cwd=tmp_path)
    # what torch and basicsr import themselves (basicsr 1.4.2 needs the torchvision alias to import at all)
    base = _third_party(f'import sys\nsys.path.insert(0, {str(clone)!r})\nfrom mrnet_arch import compat\n'
                        'compat.install_import_alias()\nimport torch, basicsr', cwd=tmp_path)
    assert used - base <= {'mrnet_arch', 'hubconf'}
    # and hubconf names them, so torch.hub checks them before loading
    tree = ast.parse(open(osp.join(REPO, 'hubconf.py'), encoding='utf-8').read())
    (dependencies, ) = [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                        and [t.id for t in n.targets] == ['dependencies']]
    assert set(dependencies) == {'torch', 'basicsr'} <= base
