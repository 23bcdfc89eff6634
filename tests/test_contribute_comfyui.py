"""``mrnet contribute comfyui DIR`` into a laid-out ComfyUI checkout (CI has no ComfyUI): the custom node, imported
the way ComfyUI's ``nodes.load_custom_node`` imports a folder, adds MRNet to spandrel's registry (twice changes
nothing) without importing basicsr or the plugin; ComfyUI's model loading (``comfy.utils.load_torch_file`` then
``ModelLoader().load_from_state_dict``) and upscaling steps then give ``mrnet infer``'s output on a real photo for
the demo weights as ``.pth`` (BasicSR ``params`` and ``params``/``params_ema`` wrappers) and ``.safetensors``; the
``pyproject.toml`` has the ``[project]`` and ``[tool.comfy]`` tables of the Comfy registry."""
import json
import os
import re
import subprocess
import sys
import tomllib
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

from _photos import check_rerun_and_local_edit, env, run_mrnet, write_photos

pytest.importorskip('spandrel')
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')
NODE = 'custom_nodes/ComfyUI-MRNet'

# What ComfyUI does, step by step, in a fresh interpreter that has neither basicsr nor the plugin imported.
COMFYUI = r'''
import importlib.util, json, os, sys
import cv2, numpy as np, safetensors.torch, torch

node, weights_dir, photo, out_dir = sys.argv[1:5]


def load_custom_node(module_path):
    """nodes.load_custom_node for a folder: module name = the folder path (dots replaced), spec from __init__.py."""
    sys_module_name = module_path.replace('.', '_x_')
    spec = importlib.util.spec_from_file_location(sys_module_name, os.path.join(module_path, '__init__.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[sys_module_name] = module
    spec.loader.exec_module(module)
    return module


first = load_custom_node(node)
second = load_custom_node(node)  # imported again (another ComfyUI start in the same process): nothing changes
from spandrel import MAIN_REGISTRY, ImageModelDescriptor, ModelLoader
ids = [a.architecture.id for a in MAIN_REGISTRY]
result = {'mappings': [first.NODE_CLASS_MAPPINGS, first.NODE_DISPLAY_NAME_MAPPINGS, second.NODE_CLASS_MAPPINGS],
          'counts': [ids.count('MRNet'), ids.count('MultiScaleMRNet')],
          'foreign': sorted(m for m in sys.modules if m.split('.')[0] in ('basicsr', 'mrnet_arch')),
          'models': {}}
img = cv2.cvtColor(cv2.imread(photo, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
image = torch.from_numpy(img.astype(np.float32) / 255.0)[None]  # LoadImage: IMAGE is [B, H, W, C] in [0, 1]
for name in sorted(os.listdir(weights_dir)):
    path = os.path.join(weights_dir, name)
    # UpscaleModelLoader: comfy.utils.load_torch_file(path, safe_load=True), then spandrel
    if path.endswith('.safetensors'):
        sd = safetensors.torch.load_file(path)
    else:
        pl_sd = torch.load(path, map_location='cpu', weights_only=True)
        sd = pl_sd['state_dict'] if 'state_dict' in pl_sd else pl_sd
    model = ModelLoader().load_from_state_dict(sd).eval()
    # ImageUpscaleWithModel: NHWC -> NCHW, the model (one tile: the photo is smaller than its 512 px tile), clamp
    with torch.no_grad():
        s = model(image.movedim(-1, -3))
    s = torch.clamp(s.movedim(-3, -1), min=0, max=1.0)
    np.save(os.path.join(out_dir, name + '.npy'), s[0].numpy())
    saved = np.clip(255. * s[0].numpy(), 0, 255).astype(np.uint8)  # SaveImage
    cv2.imwrite(os.path.join(out_dir, name + '.png'), cv2.cvtColor(saved, cv2.COLOR_RGB2BGR))
    result['models'][name] = [isinstance(model, ImageModelDescriptor), model.architecture.id, model.scale,
                              model.purpose, model.tags]
print(json.dumps(result))
'''


def lay_out_comfyui(folder):
    """The parts of a ComfyUI checkout the command looks for: ``nodes.py`` and ``custom_nodes/``."""
    os.makedirs(osp.join(folder, 'custom_nodes'))
    with open(osp.join(folder, 'nodes.py'), 'w', encoding='utf-8') as f:
        f.write('"""ComfyUI\'s nodes (a marker here)."""\n')
    return folder


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    root = tmp_path_factory.mktemp('comfyui')
    folder = lay_out_comfyui(str(root / 'ComfyUI'))
    proc = run_mrnet(['contribute', 'comfyui', folder], root)
    assert re.search(r': 6 written, 0 replaced, 0 unchanged', proc.stdout), proc.stdout
    return folder


def test_the_node_loads_mrnet_weights_as_comfyui_does_with_mrnet_infers_output(checkout, tmp_path):
    from safetensors.torch import save_file

    from mrnet_arch.storage.weights import load_model
    weights = tmp_path / 'upscale_models'
    weights.mkdir()
    sd = torch.load(DEMO, map_location='cpu', weights_only=True)['params']
    torch.save({'params': sd}, weights / 'demo_params.pth')
    other = {k: v + 0.01 for k, v in sd.items()}  # params differs: the model must run params_ema, the demo's
    torch.save({'params': other, 'params_ema': sd}, weights / 'demo_params_ema.pth')
    run_mrnet(['export', '--weights', DEMO, '--format', 'safetensors', '--output',
               str(weights / 'demo_export.safetensors')], tmp_path)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(weights / 'demo_plain.safetensors'))
    photos = write_photos(str(tmp_path / 'photos'), {'coffee.png': ('coffee', 36, 44)})
    photo = osp.join(photos, 'coffee.png')
    out = tmp_path / 'out'
    out.mkdir()
    e = dict(env(str(tmp_path)))
    e.pop('PYTHONPATH')  # neither the plugin's checkout nor anything else of it on the path
    proc = subprocess.run([sys.executable, '-c', COMFYUI, osp.join(checkout, NODE), str(weights), photo, str(out)],
                          env=e, cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['mappings'] == [{}, {}, {}] and result['counts'] == [1, 1]
    assert result['foreign'] == []  # imports neither basicsr nor mrnet_arch

    run_mrnet(['infer', '--weights', DEMO, '--input', photo, '--output', str(tmp_path / 'infer'), '--precision',
               'fp32'], tmp_path)
    [written] = os.listdir(tmp_path / 'infer')
    infer = cv2.imread(str(tmp_path / 'infer' / written), cv2.IMREAD_COLOR).astype(np.int32)
    net, config = load_model(DEMO)
    rgb = cv2.cvtColor(cv2.imread(photo, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    with torch.no_grad():
        want = net(torch.from_numpy(rgb).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert want.shape == (72, 88, 3)
    names = ['demo_export.safetensors', 'demo_params.pth', 'demo_params_ema.pth', 'demo_plain.safetensors']
    assert sorted(result['models']) == names
    for name in names:
        is_image_model, arch_id, scale, purpose, tags = result['models'][name]
        assert (is_image_model, arch_id, scale, purpose) == (True, 'MRNet', 2, 'SR'), name
        assert tags[:2] == [f'{config["num_feat"]}nf', f'{config["num_block"]}nb'], (name, tags)
        np.testing.assert_allclose(np.load(str(out / f'{name}.npy')), want, rtol=0, atol=1e-5, err_msg=name)
        saved = cv2.imread(str(out / f'{name}.png'), cv2.IMREAD_COLOR).astype(np.int32)
        assert saved.shape == infer.shape and np.abs(saved - infer).max() <= 1, name  # SaveImage truncates


def test_written_files_and_registry_metadata(checkout):
    folder = osp.join(checkout, NODE)
    assert sorted(os.listdir(folder)) == ['LICENSE', 'README.md', '__init__.py', 'mrnet_arch.py', 'mrnet_config.py',
                                          'pyproject.toml']
    with open(osp.join(REPO, 'LICENSE'), encoding='utf-8') as a, open(osp.join(folder, 'LICENSE'),
                                                                      encoding='utf-8') as b:
        assert a.read() == b.read()
    with open(osp.join(folder, 'pyproject.toml'), 'rb') as f:
        toml = tomllib.load(f)
    assert toml['project']['name'] == 'comfyui-mrnet' and toml['project']['version']
    assert toml['project']['license'] == {'file': 'LICENSE'}
    assert set(toml['tool']['comfy']) == {'PublisherId', 'DisplayName', 'Icon'}
    assert toml['tool']['comfy']['DisplayName']
    for name in ('__init__.py', 'mrnet_arch.py'):
        with open(osp.join(folder, name), encoding='utf-8') as f:
            text = f.read()
        assert not re.search(r'^\s*(from|import) (basicsr|mrnet_arch)\b', text, re.M), name


def test_rerun_changes_nothing_options_reach_the_pyproject_and_a_local_edit_is_kept(checkout, tmp_path):
    check_rerun_and_local_edit('comfyui', checkout, f'{NODE}/__init__.py', tmp_path, unchanged='6')
    run_mrnet(['contribute', 'comfyui', checkout, '--name', 'MRNet_nodes', '--publisher-id', 'someone', '--icon',
               'https://example.org/icon.png'], tmp_path)
    with open(osp.join(checkout, 'custom_nodes', 'MRNet_nodes', 'pyproject.toml'), 'rb') as f:
        toml = tomllib.load(f)
    assert toml['project']['name'] == 'mrnet_nodes'
    assert toml['tool']['comfy']['PublisherId'] == 'someone'
    assert toml['tool']['comfy']['Icon'] == 'https://example.org/icon.png'


@pytest.mark.parametrize('args, message', [
    (['--name', 'bad/name'], "--name 'bad/name'"),
    (['--weights-url', 'https://example.org/w.pth'], '--weights-url are not for comfyui'),
    (['--pr-body', 'pr.md'], '--pr-body are not for comfyui'),
])
def test_bad_options_stop_before_anything_is_written(tmp_path, args, message):
    folder = lay_out_comfyui(str(tmp_path / 'ComfyUI'))
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'contribute', 'comfyui', folder, *args],
                          env=env(str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert 'Traceback' not in proc.stderr and os.listdir(osp.join(folder, 'custom_nodes')) == []


def test_refuses_a_folder_that_is_no_comfyui_checkout(tmp_path):
    (tmp_path / 'custom_nodes').mkdir()
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'contribute', 'comfyui', str(tmp_path)],
                          env=env(str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and 'is not a ComfyUI checkout' in proc.stderr and 'nodes.py' in proc.stderr
    assert 'Traceback' not in proc.stderr and sorted(os.listdir(tmp_path)) == ['custom_nodes']
    assert os.listdir(tmp_path / 'custom_nodes') == []
