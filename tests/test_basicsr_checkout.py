"""MRNet from a BasicSR checkout: ``mrnet contribute basicsr DIR``, then the checkout's own
``basicsr/train.py`` and ``basicsr/test.py`` run the contributed option files.

The checkout is the installed basicsr package laid out as a git checkout (the sdist ships ``train.py`` and
``test.py`` inside the package) with GitHub master's one-line torchvision fix applied to
``basicsr/data/degradations.py`` (commit 8d56e3a), as a master checkout has it. It is put on
``PYTHONPATH`` only; the plugin is never imported by those runs. Data: real photos from scikit-image,
prepared by ``mrnet prepare``. The option files run with size overrides only (``--force_yml``). The checkout gets
BasicSR's own lint settings (``BASICSR_SETUP_CFG``), and the contributed Python files pass its CI's lint commands.
"""
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from os import path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml

from _photos import REPO, env, run_mrnet, write_photos
from mrnet_arch.archs.mrnet_arch import MRNet
from mrnet_arch.archs.mrnet_config import receptive_radius
from mrnet_arch.commands.contribute import basicsr as contribute_basicsr
from mrnet_arch.storage.weights import infer_config, read_state_dict, save_safetensors

# BasicSR's lint settings: the [flake8], [yapf] and [isort] sections of setup.cfg in
# https://github.com/XPixelGroup/BasicSR at commit 8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a (master, 2024-05-17).
# Its CI (.github/workflows/pylint.yml, same commit) runs `flake8 .`, `isort --check-only --diff basicsr/ ...` and
# `yapf -r -d basicsr/ ...` with them (and codespell, not run here).
BASICSR_SETUP_CFG = """[flake8]
ignore =
    # line break before binary operator (W503)
    W503,
    # line break after binary operator (W504)
    W504,
max-line-length=120

[yapf]
based_on_style = pep8
column_limit = 120
blank_line_before_nested_class_or_def = true
split_before_expression_after_opening_paren = true

[isort]
line_length = 120
multi_line_output = 0
known_standard_library = pkg_resources,setuptools
known_first_party = basicsr
known_third_party = PIL,cv2,lmdb,numpy,pytest,requests,scipy,skimage,torch,torchvision,tqdm,yaml
no_lines_before = STDLIB,LOCALFOLDER
default_section = THIRDPARTY
"""
BASICSR_LINT = (  # BasicSR's CI lint commands, on the given files
    ('flake8', ),
    ('isort', '--check-only', '--diff'),
    ('yapf', '-d'),
)
TORCHVISION_IMPORT = 'from torchvision.transforms.functional_tensor import rgb_to_grayscale'
MASTER_IMPORT = 'from torchvision.transforms.functional import rgb_to_grayscale'
BENCHMARKS = {  # benchmark -> real photos (skimage name, height, width)
    'Set5': {'chelsea.png': ('chelsea', 96, 120)},
    'Set14': {'coffee.png': ('coffee', 84, 96)},
    'B100': {'astronaut.png': ('astronaut', 72, 108)},
    'Urban100': {'rocket.png': ('rocket', 96, 84)},
    'Manga109': {'hubble.png': ('hubble_deep_field', 60, 72)},
}
SMALL = ['num_gpu=0', 'manual_seed=3']
SMALL_TRAIN = SMALL + ['logger:print_freq=1', 'datasets:train:num_worker_per_gpu=0',
                       'datasets:train:batch_size_per_gpu=2',
                       'datasets:train:dataset_enlarge_ratio=1', 'train:total_iter=4', 'val:val_freq=2',
                       'logger:save_checkpoint_freq=2', 'network_g:num_feat=8', 'network_g:num_block=1']


def lay_out_checkout(folder):
    """Copy the installed basicsr package into ``folder/basicsr`` with master's torchvision import, and BasicSR's
    lint settings into ``folder/setup.cfg``."""
    source = importlib.util.find_spec('basicsr').submodule_search_locations[0]
    shutil.copytree(source, osp.join(folder, 'basicsr'), ignore=shutil.ignore_patterns('__pycache__'))
    with open(osp.join(folder, 'setup.cfg'), 'w', encoding='utf-8') as f:
        f.write(BASICSR_SETUP_CFG)
    degradations = osp.join(folder, 'basicsr', 'data', 'degradations.py')
    with open(degradations, encoding='utf-8') as f:
        text = f.read()
    if TORCHVISION_IMPORT in text:
        with open(degradations, 'w', encoding='utf-8') as f:
            f.write(text.replace(TORCHVISION_IMPORT, MASTER_IMPORT))
    for script in ('train.py', 'test.py'):
        assert osp.isfile(osp.join(folder, 'basicsr', script)), f'the installed basicsr lacks {script}'
    return folder


def run_checkout(checkout, script, opt, overrides, extra=(), timeout=400):
    """``PYTHONPATH=. python basicsr/<script> -opt <opt> --force_yml ...`` in the checkout."""
    e = dict(os.environ, PYTHONPATH=checkout, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    e.pop('MRNET_ROOT', None)
    proc = subprocess.run([sys.executable, f'basicsr/{script}', '-opt', opt, *extra, '--force_yml', *overrides],
                          cwd=checkout, env=e, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    """A BasicSR checkout with the contribution and real-photo data for x2/x3/x4 and five benchmarks."""
    root = tmp_path_factory.mktemp('checkout')
    folder = lay_out_checkout(str(root / 'BasicSR'))
    proc = run_mrnet(['contribute', 'basicsr', folder], root)
    assert re.search(r'\d+ written, 0 replaced, 0 unchanged', proc.stdout), proc.stdout
    hr = write_photos(str(root / 'hr'), {'astronaut.png': ('astronaut', 192, 192),
                                         'coffee.png': ('coffee', 192, 192)})
    run_mrnet(['prepare', 'div2k', '--hr', hr, '--output', osp.join(folder, 'datasets', 'DIV2K'), '--scales', '2',
               '3', '4', '--crop-size', '96', '--step', '96', '--workers', '1'], root)
    for name, photos in BENCHMARKS.items():
        src = write_photos(str(root / 'benchmarks' / name), photos)
        run_mrnet(['prepare', 'benchmark', '--input', src, '--output', osp.join(folder, 'datasets', name),
                   '--scales', '2', '3', '4', '--workers', '1'], root)
    return folder


def contributed_python_files():
    """Checkout paths of every Python file ``mrnet contribute basicsr`` copies: each module of the plugin's
    archs/, models/ and data/ but ``__init__.py``."""
    from mrnet_arch.project import package_dir
    return sorted(f'basicsr/{folder}/{osp.basename(p)}' for folder in ('archs', 'models', 'data')
                  for p in glob.glob(osp.join(package_dir(), folder, '*.py')) if osp.basename(p) != '__init__.py')


def test_contributed_files_pass_basicsrs_lint(tmp_path):
    """flake8, isort and yapf, with BasicSR's settings in the checkout's setup.cfg, find nothing in the contributed
    files (every one of them: the list is the plugin's folders, and each must have been written)."""
    folder = lay_out_checkout(str(tmp_path / 'BasicSR'))
    proc = run_mrnet(['contribute', 'basicsr', folder, '--pr-body', str(tmp_path / 'pr.md')], tmp_path)
    files = contributed_python_files()
    with open(tmp_path / 'pr.md', encoding='utf-8') as f:
        body = f.read()
    assert 'Memory Recursive Network' in body and '| MRNet_x2 | MRNet | x2 | 878,339 |' in body
    assert all(f'`{rel}`' in body for rel in files)
    assert 'basicsr/archs/mrnet_arch.py' in files and 'basicsr/archs/mrnet_config.py' in files
    for rel in files:
        assert re.search(rf'^wrote\s+{re.escape(rel)}$', proc.stdout, re.M), (rel, proc.stdout)
    problems = []
    for command in BASICSR_LINT:
        lint = subprocess.run([sys.executable, '-m', *command, *files], cwd=folder, capture_output=True, text=True,
                              timeout=300)
        if lint.returncode != 0 or lint.stdout.strip():
            problems.append(f'$ {" ".join(command)}: exit {lint.returncode}\n{lint.stdout[-3000:]}'
                            f'{lint.stderr[-2000:]}')
    assert not problems, '\n'.join(problems)


def test_contribution_is_idempotent_and_never_overwrites(checkout, tmp_path):
    again = run_mrnet(['contribute', 'basicsr', checkout], tmp_path)
    assert re.search(r': 0 written, 0 replaced, \d+ unchanged', again.stdout), again.stdout
    zoo = osp.join(checkout, 'docs', 'ModelZoo.md')
    with open(zoo, encoding='utf-8') as f:
        assert f.read().count('<!-- MRNet -->') == 1
    arch = osp.join(checkout, 'basicsr', 'archs', 'mrnet_arch.py')
    with open(arch, 'a', encoding='utf-8') as f:
        f.write('# a local edit\n')
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'contribute', 'basicsr', checkout],
                          env=env(str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'basicsr/archs/mrnet_arch.py' in proc.stderr and '--overwrite' in proc.stderr
    with open(arch, encoding='utf-8') as f:
        assert f.read().endswith('# a local edit\n')  # nothing was written
    run_mrnet(['contribute', 'basicsr', checkout, '--overwrite'], tmp_path)
    import mrnet_arch.archs.mrnet_arch as plugin_arch
    with open(arch, encoding='utf-8') as a, open(plugin_arch.__file__, encoding='utf-8') as b:
        copy, plugin = a.read(), b.read()
    # the plugin's file but for the registry suffix of each of its four classes
    assert copy.count("@ARCH_REGISTRY.register(suffix='basicsr')\n") == plugin.count('@ARCH_REGISTRY.register()\n') == 4
    assert copy == plugin.replace('@ARCH_REGISTRY.register()\n', "@ARCH_REGISTRY.register(suffix='basicsr')\n")


def test_checkout_trains_x2_tests_five_benchmarks_and_resumes_with_the_plugin(checkout):
    train_yml = 'options/train/MRNet/train_MRNet_x2.yml'
    out = run_checkout(checkout, 'train.py', train_yml, SMALL_TRAIN + ['datasets:train:gt_size=64'])
    assert 'basicsr.models.mrnet_model' in out or 'MRNetModel' in out
    assert len(re.findall(r'Validation Set5\s+# psnr: [0-9.]+', out)) == 3  # iterations 2, 4 and the end
    exp = osp.join(checkout, 'experiments', 'MRNet_x2')
    assert torch.load(osp.join(exp, 'training_states', '4.state'), weights_only=True)['iter'] == 4

    test = run_checkout(checkout, 'test.py', 'options/test/MRNet/test_MRNet_x2.yml',
                        SMALL + ['network_g:num_feat=8', 'network_g:num_block=1'])
    for name in BENCHMARKS:
        assert re.search(rf'Validation {name}\s+# psnr: [0-9.]+\s+Best', test), (name, test[-3000:])
        assert os.listdir(osp.join(checkout, 'results', 'MRNet_x2', 'visualization', name))

    # The checkout's own train.py resumes onto CUDA only; on the CPU the plugin's entry point resumes the run
    # (project root: the checkout, found from the option file's options/ folder).
    e = env(checkout)
    e.pop('MRNET_ROOT')
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'train', '-opt', osp.join(checkout, train_yml),
                           '--auto_resume', '--force_yml', *SMALL_TRAIN, 'train:total_iter=6',
                           'datasets:train:gt_size=64'],
                          cwd='/', env=e, capture_output=True, text=True, timeout=400)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert f'project root: {checkout}' in log
    assert re.search(r'Resuming training from epoch: \d+, iter: 4\.', log), log[-3000:]
    assert torch.load(osp.join(exp, 'training_states', '6.state'), weights_only=True)['iter'] == 6
    assert os.listdir(osp.join(checkout, 'experiments')).count('MRNet_x2') == 1


IMPORT_BESIDE = r"""
import sys
import basicsr
import mrnet_arch  # noqa: F401  (the plugin registers the plain names)
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY
assert basicsr.__file__.startswith(sys.argv[1]), basicsr.__file__
for registry, name in ((ARCH_REGISTRY, 'MRNet'), (ARCH_REGISTRY, 'Bicubic'), (MODEL_REGISTRY, 'MRNetModel'),
                       (DATASET_REGISTRY, 'CropFirstPairedImageDataset')):
    print(name, registry.get(name).__module__, registry.get(name + '_basicsr').__module__)
"""


def test_plugin_imports_beside_a_basicsr_that_holds_the_contribution(checkout):
    """The checkout's basicsr (its copies registered as ``<name>_basicsr``) and the plugin in one process: no name
    clash, the plain names are the plugin's; the plugin's ``mrnet test`` runs the checkout's option file there."""
    e = env(checkout, PYTHONPATH=os.pathsep.join([checkout, REPO]))
    e.pop('MRNET_ROOT')
    proc = subprocess.run([sys.executable, '-c', IMPORT_BESIDE, checkout], cwd=checkout, env=e, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split('\n')[:4] == [
        'MRNet mrnet_arch.archs.mrnet_arch basicsr.archs.mrnet_arch',
        'Bicubic mrnet_arch.archs.bicubic_arch basicsr.archs.bicubic_arch',
        'MRNetModel mrnet_arch.models.mrnet_model basicsr.models.mrnet_model',
        'CropFirstPairedImageDataset mrnet_arch.data.crop_first_dataset basicsr.data.crop_first_dataset',
    ], proc.stdout
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'test', '-opt', 'options/test/MRNet/test_MRNet_x2.yml',
                           '--force_yml', *SMALL, 'name=MRNet_x2_beside', 'network_g:num_feat=8',
                           'network_g:num_block=1', 'path:pretrain_network_g=~'],
                          cwd=checkout, env=e, capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and 'Traceback' not in out, out[-4000:]
    assert re.search(r'Validation Set5\s+# psnr: [0-9.]+', out), out[-3000:]


def test_checkout_trains_multiscale(checkout):
    out = run_checkout(checkout, 'train.py', 'options/train/MRNet/train_MRNet_multiscale.yml',
                       SMALL_TRAIN + ['datasets:train:lq_size=24', 'network_g:num_recursions=[1,2,2]'])
    for scale in (2, 3, 4):
        assert len(re.findall(rf'Validation Set5_x{scale}\s+# psnr: [0-9.]+', out)) == 3
    saved = torch.load(osp.join(checkout, 'experiments', 'MRNet_multiscale', 'models', 'net_g_latest.pth'),
                       weights_only=True)['params']
    assert {k.split('.')[1] for k in saved if k.startswith('reconstruction.')} == {'x2', 'x3', 'x4'}


def test_contribute_with_weights_adds_them_and_test_options(checkout, tmp_path):
    from mrnet_arch.project import package_dir
    demo = osp.join(package_dir(), 'demo_weights', 'MRNet_demo_x2.pth')
    mine = str(tmp_path / 'MRNet_mine_x2.pth')
    shutil.copy(demo, mine)
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'contribute', 'basicsr', checkout, '--weights', mine],
                          env=env(str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and 'do not match network_g of options/test/MRNet/test_MRNet_x2.yml' in proc.stderr
    run_mrnet(['contribute', 'basicsr', checkout, '--weights', mine, '--test-options',
               'options/test/MRNet/demo/test_MRNet_demo_x2.yml'], tmp_path)
    # the test option file named by its path (relative to the working directory) rather than its checkout path
    again = run_mrnet(['contribute', 'basicsr', checkout, '--weights', mine, '--test-options',
                       osp.relpath(osp.join(checkout, 'options', 'test', 'MRNet', 'demo', 'test_MRNet_demo_x2.yml'),
                                   tmp_path)], tmp_path)
    assert re.search(r' 0 written, 0 replaced, \d+ unchanged', again.stdout), again.stdout
    assert osp.isfile(osp.join(checkout, 'experiments', 'pretrained_models', 'MRNet_mine_x2.pth'))
    assert osp.isfile(osp.join(checkout, 'experiments', 'pretrained_models', 'MRNet_mine_x2.md'))
    with open(osp.join(checkout, 'docs', 'ModelZoo.md'), encoding='utf-8') as f:
        assert 'experiments/pretrained_models/MRNet_mine_x2.pth' in f.read()
    set5 = ['datasets:test_1:dataroot_gt=datasets/Set5/GTmod12', 'datasets:test_1:dataroot_lq=datasets/Set5/LRbicx2']
    test = run_checkout(checkout, 'test.py', 'options/test/MRNet/test_MRNet_mine_x2.yml', SMALL + set5)
    assert re.search(r'Validation \S+\s+# psnr: [0-9.]+', test)
    assert 'in tiles of' not in test

    # The checkout's own test.py runs MRNetModel.test() in the tiles of val:tile (HAT's option; the overlap: the
    # receptive radius); the saved image equals the untiled one up to float rounding.
    with open(osp.join(checkout, 'options', 'test', 'MRNet', 'test_MRNet_mine_x2.yml'), encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt['val']['tile'] = {'tile_size': 16}
    tiles_yml = str(tmp_path / 'test_MRNet_mine_x2_tiles.yml')
    with open(tiles_yml, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f)
    results = osp.join(checkout, 'results', opt['name'], 'visualization')
    whole = {name: cv2.imread(path) for name, path in _images(results)}
    tiled = run_checkout(checkout, 'test.py', tiles_yml, SMALL + set5)
    radius = receptive_radius(infer_config(read_state_dict(mine)[0]))
    assert f'[mrnet] test: 60x48 input in tiles of 16 px (overlap {radius} px)' in tiled, tiled[-3000:]
    saved = dict(_images(results))
    assert whole and saved.keys() == whole.keys()
    for name, image in whole.items():
        assert np.abs(cv2.imread(saved[name]).astype(int) - image.astype(int)).max() <= 1, name


def test_contribute_adds_the_pretrained_weights_when_the_package_holds_them(tmp_path, monkeypatch):
    """A stand-in for the campaign's shipped weights (paper-size MRNet x2 with a bicubic global skip, random, its
    card and provenance beside it) goes into the plan as weights given with --weights go, plus its provenance; no
    stand-in, no such files."""
    shipped = tmp_path / 'pretrained'
    shipped.mkdir()
    weights = shipped / 'MRNet-S_x2_bicubic-skip.safetensors'
    net = MRNet(upscale=2, global_skip='bicubic')
    save_safetensors(net, dict(infer_config(net.state_dict()), global_skip='bicubic'), str(weights))
    (shipped / 'MODEL_CARD.md').write_text('# the shipped card\n', encoding='utf-8')
    (shipped / 'PROVENANCE.md').write_text('# the shipped provenance\n', encoding='utf-8')
    monkeypatch.setattr(contribute_basicsr, 'pretrained_weights', lambda: str(weights))
    files = contribute_basicsr.plan(str(tmp_path / 'BasicSR'))
    folder = 'experiments/pretrained_models'
    assert files[f'{folder}/MRNet-S_x2_bicubic-skip.safetensors'] == weights.read_bytes()
    assert files[f'{folder}/MRNet-S_x2_bicubic-skip.md'] == '# the shipped card\n'
    assert files[f'{folder}/MRNet-S_x2_bicubic-skip_PROVENANCE.md'] == '# the shipped provenance\n'
    assert f'{folder}/MRNet_demo_x2.pth' in files  # the demo weights stay, for the demo options
    test_opt = yaml.safe_load(files['options/test/MRNet/test_MRNet-S_x2_bicubic-skip.yml'])
    assert test_opt['network_g']['global_skip'] == 'bicubic'
    assert test_opt['path']['pretrain_network_g'] == f'{folder}/MRNet-S_x2_bicubic-skip.safetensors'
    row = [line for line in files['docs/ModelZoo.md'].splitlines() if 'bicubic-skip.safetensors' in line]
    assert len(row) == 1
    assert f'| MRNet + bicubic global skip | x2 | {sum(p.numel() for p in net.parameters()):,} |' in row[0]
    assert f'provenance `{folder}/MRNet-S_x2_bicubic-skip_PROVENANCE.md`' in row[0]
    assert 'MRNet-S_x2_bicubic-skip.safetensors' in contribute_basicsr.pr_body(files)

    monkeypatch.setattr(contribute_basicsr, 'pretrained_weights', lambda: str(tmp_path / 'absent.safetensors'))
    files = contribute_basicsr.plan(str(tmp_path / 'BasicSR'))
    assert not [p for p in files if 'bicubic-skip' in p] and 'bicubic-skip' not in files['docs/ModelZoo.md']


def _images(folder):
    """``(name, path)`` of every PNG under ``folder``."""
    return sorted((osp.relpath(p, folder), p) for p in glob.glob(osp.join(folder, '**', '*.png'), recursive=True))


def test_contribute_refuses_a_folder_that_is_no_checkout(tmp_path):
    (tmp_path / 'basicsr' / 'archs').mkdir(parents=True)
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'contribute', 'basicsr', str(tmp_path)],
                          env=env(str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'is not a BasicSR checkout' in proc.stderr and 'basicsr/train.py' in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ['basicsr']
