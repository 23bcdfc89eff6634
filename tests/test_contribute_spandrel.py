"""``mrnet contribute spandrel DIR`` into the installed spandrel package laid out as a checkout (CI cannot fetch
spandrel): the written architecture registers, detects MRNet and nothing else, loads every config and gives the
plugin's outputs, through spandrel's public API; the command is idempotent and never overwrites."""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from os import path as osp

import pytest
import torch

from _photos import check_rerun_and_local_edit, env, run_mrnet, write_photos
from mrnet_arch.archs.mrnet_arch import MRNet
from mrnet_arch.commands.contribute import spandrel as contribute_spandrel
from mrnet_arch.storage.weights import infer_config, save_safetensors

pytest.importorskip('spandrel')
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ARCH = 'libs/spandrel/spandrel/architectures/MRNet'

CHECK = r'''
import json, sys
import torch
import spandrel
from spandrel import MAIN_REGISTRY, ModelLoader
assert spandrel.__file__.startswith(sys.argv[1]), spandrel.__file__
from spandrel.architectures.MRNet import MRNet, MultiScaleMRNet, MRNetArch, MultiScaleMRNetArch
import mrnet_arch  # noqa: F401  (the plugin: compat alias, BasicSR registration)
from mrnet_arch.archs.mrnet_arch import MRNet as PluginMRNet, MultiScaleMRNet as PluginMultiScaleMRNet
from mrnet_arch.commands.contribute.spandrel_files import EXTRA_CONFIGS, shipped_configs

result = {'ids': [a.architecture.id for a in MAIN_REGISTRY.architectures('detection')], 'configs': []}
plugin = {'MRNet': PluginMRNet, 'MultiScaleMRNet': PluginMultiScaleMRNet}
for config in [*shipped_configs(), *EXTRA_CONFIGS]:
    torch.manual_seed(0)
    kwargs = {k: v for k, v in config.items() if k != 'type'}
    net = plugin[config['type']](**kwargs).eval()
    model = ModelLoader().load_from_state_dict(net.state_dict())
    x = torch.rand(1, kwargs.get('num_in_ch', 3), 9, 7)
    with torch.no_grad():
        same = torch.equal(model(x), net(x).clamp(0, 1))
    hp = {k: v for k, v in model.model.hyperparameters.items() if k in kwargs}
    result['configs'].append([config['type'], model.architecture.id, type(model.model).__name__, same,
                              hp == kwargs, model.scale, int(net.upscale)])

from spandrel.architectures.RCAN import RCAN
from spandrel.architectures.SPAN import SPAN
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.Compact import Compact
from spandrel.architectures.OmniSR import OmniSR
others = {'RCAN': RCAN(n_resgroups=1, n_resblocks=1), 'SPAN': SPAN(num_in_ch=3, num_out_ch=3),
          'ESRGAN': ESRGAN(num_blocks=2), 'Compact': Compact(num_conv=2),
          'OmniSR': OmniSR()}
result['others'] = {name: [MRNetArch().detect(m.state_dict()), MultiScaleMRNetArch().detect(m.state_dict()),
                           ModelLoader().load_from_state_dict(m.state_dict()).architecture.id]
                    for name, m in others.items()}
print(json.dumps(result))
'''


def lay_out_spandrel(folder):
    """The installed spandrel package as ``folder/libs/spandrel/spandrel``, a tests/util.py marker, a README
    with spandrel's list of super-resolution architectures and test inputs (real photos) in tests/images/inputs/."""
    source = importlib.util.find_spec('spandrel').submodule_search_locations[0]
    shutil.copytree(source, osp.join(folder, 'libs', 'spandrel', 'spandrel'),
                    ignore=shutil.ignore_patterns('__pycache__'))
    os.makedirs(osp.join(folder, 'tests'))
    with open(osp.join(folder, 'tests', 'util.py'), 'w', encoding='utf-8') as f:
        f.write('"""spandrel\'s test helpers (a marker here)."""\n')
    with open(osp.join(folder, 'README.md'), 'w', encoding='utf-8') as f:
        f.write('# Spandrel\n\n#### Single Image Super Resolution\n\n- [SPAN](https://github.com/hongyuanyu/SPAN)\n'
                '\n#### Face Restoration\n\n- [GFPGAN](https://github.com/TencentARC/GFPGAN)\n')
    write_photos(osp.join(folder, 'tests', 'images', 'inputs'),
                 {f'{n}x{n}.png': ('coffee', n, n) for n in (16, 32, 64)})
    return folder


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    root = tmp_path_factory.mktemp('spandrel')
    folder = lay_out_spandrel(str(root / 'spandrel'))
    proc = run_mrnet(['contribute', 'spandrel', folder, '--pr-body', str(root / 'pr.md')], root)
    assert re.search(r': \d+ written, 2 replaced, 0 unchanged', proc.stdout), proc.stdout
    return folder


def test_written_architecture_registers_detects_loads_and_equals_the_plugin(checkout):
    e = dict(env(checkout), PYTHONPATH=os.pathsep.join([osp.join(checkout, 'libs', 'spandrel'), REPO]))
    proc = subprocess.run([sys.executable, '-c', CHECK, checkout], env=e, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['ids'][-2:] == ['MRNet', 'MultiScaleMRNet']  # at the end: nothing earlier claims MRNet weights
    from mrnet_arch.commands.contribute.spandrel_files import EXTRA_CONFIGS, shipped_configs
    configs = [*shipped_configs(), *EXTRA_CONFIGS]
    assert len(result['configs']) == len(configs) > 30
    assert any(c.get('recursive_module') == 'input_encoder' for c in configs)  # Table 1 ...
    assert any(c.get('fusion') == 'conv1x1' for c in configs)  # ... and Table 2 are among them
    for config, (wanted, arch_id, cls, same, hyper, scale, plugin_scale) in zip(configs, result['configs']):
        assert (arch_id, cls, same, hyper, scale) == (wanted, wanted, True, True, plugin_scale), config
    for name, (single, multi, detected) in result['others'].items():
        assert not single and not multi and detected == name, (name, single, multi, detected)


def test_written_files_and_pr_body(checkout):
    for rel in ('__arch/mrnet_arch.py', '__arch/mrnet_config.py', '__arch/LICENSE', '__init__.py'):
        assert osp.isfile(osp.join(checkout, ARCH, rel)), rel
    with open(osp.join(checkout, ARCH, '__arch', 'mrnet_arch.py'), encoding='utf-8') as f:
        arch = f.read()
    assert 'basicsr' not in arch.replace('basicsr.archs.arch_util', '').replace('for BasicSR', '')
    assert arch.count('@store_hyperparameters()') == 2 and len(re.findall(r'def __init__\(\s*self,\s*\*,', arch)) == 2
    with open(osp.join(REPO, 'LICENSE'), encoding='utf-8') as a, \
            open(osp.join(checkout, ARCH, '__arch', 'LICENSE'), encoding='utf-8') as b:
        assert a.read() == b.read()
    with open(osp.join(checkout, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    assert readme.index('- MRNet (') < readme.index('#### Face Restoration') and readme.count('- MRNet (') == 1
    model = osp.basename(contribute_spandrel.snapshot_weights())  # the demo's, or the pretrained once shipped
    for n in (16, 32, 64):
        assert osp.isfile(osp.join(checkout, 'tests', 'images', 'outputs', f'{n}x{n}', f'{osp.splitext(model)[0]}.png'))
    assert osp.isfile(osp.join(checkout, 'tests', 'models', model))
    with open(osp.join(osp.dirname(checkout), 'pr.md'), encoding='utf-8') as f:
        body = f.read()
    assert 'Memory Recursive Network' in body and f'`{ARCH}/__init__.py`' in body
    assert 'pytest tests/test_MRNet.py' in body


def test_the_inference_test_runs_the_pretrained_weights_once_the_package_holds_them(tmp_path, monkeypatch):
    """A stand-in for the campaign's shipped weights (paper-size MRNet x2 with a bicubic global skip, random)
    becomes the model of the inference test: its file, its snapshots and a test named after it; without it, the
    demo weights."""
    weights = tmp_path / 'MRNet-S_x2_bicubic-skip.safetensors'
    torch.manual_seed(0)
    net = MRNet(upscale=2, global_skip='bicubic')
    save_safetensors(net, dict(infer_config(net.state_dict()), global_skip='bicubic'), str(weights))
    monkeypatch.setattr(contribute_spandrel, 'pretrained_weights', lambda: str(weights))
    checkout = lay_out_spandrel(str(tmp_path / 'spandrel'))
    files = contribute_spandrel.plan(checkout)
    assert files['tests/models/MRNet-S_x2_bicubic-skip.safetensors'] == weights.read_bytes()
    assert not [p for p in files if 'MRNet_demo_x2' in p]
    for n in (16, 32, 64):
        assert f'tests/images/outputs/{n}x{n}/MRNet-S_x2_bicubic-skip.png' in files
    test = files['tests/test_MRNet.py']
    assert 'def test_MRNet_S_x2_bicubic_skip():' in test and 'ModelFile("MRNet-S_x2_bicubic-skip.safetensors")' in test
    assert '"bicubic skip"' in test and '(2, 3, 3)' in test
    body = contribute_spandrel.pr_body(files, str(weights))
    assert "plugin's pretrained MRNet-S x2" in body and 'small demo model' not in body

    monkeypatch.setattr(contribute_spandrel, 'pretrained_weights', lambda: str(tmp_path / 'absent.safetensors'))
    assert osp.basename(contribute_spandrel.snapshot_weights()) == 'MRNet_demo_x2.pth'
    files = contribute_spandrel.plan(checkout)
    assert 'tests/models/MRNet_demo_x2.pth' in files and 'def test_MRNet_demo_x2():' in files['tests/test_MRNet.py']
    assert not [p for p in files if 'bicubic-skip' in p]
    assert 'small demo model' in contribute_spandrel.pr_body(files, contribute_spandrel.snapshot_weights())


def test_rerun_changes_nothing_and_a_local_edit_is_never_overwritten(checkout, tmp_path):
    init = check_rerun_and_local_edit('spandrel', checkout, f'{ARCH}/__init__.py', tmp_path)
    run_mrnet(['contribute', 'spandrel', checkout, '--overwrite'], tmp_path)
    with open(init, encoding='utf-8') as f:
        assert not f.read().endswith('# a local edit\n')


def test_refuses_a_folder_that_is_no_spandrel_checkout(tmp_path):
    (tmp_path / 'tests').mkdir()
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'contribute', 'spandrel', str(tmp_path)],
                          env=env(str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and 'is not a spandrel checkout' in proc.stderr and 'tests/util.py' in proc.stderr
    assert 'Traceback' not in proc.stderr and sorted(os.listdir(tmp_path)) == ['tests']


def test_a_pr_body_in_a_missing_folder_stops_before_anything_is_written(tmp_path):
    folder = lay_out_spandrel(str(tmp_path / 'spandrel'))
    with open(osp.join(folder, 'libs', 'spandrel', 'spandrel', '__helpers', 'main_registry.py'), 'rb') as f:
        registry = f.read()
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'contribute', 'spandrel', folder, '--pr-body',
                           str(tmp_path / 'missing' / 'pr.md')], env=env(str(tmp_path)), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and '--pr-body' in proc.stderr and 'does not exist' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not osp.exists(osp.join(folder, ARCH)) and not osp.exists(osp.join(folder, 'tests', 'test_MRNet.py'))
    with open(osp.join(folder, 'libs', 'spandrel', 'spandrel', '__helpers', 'main_registry.py'), 'rb') as f:
        assert f.read() == registry
