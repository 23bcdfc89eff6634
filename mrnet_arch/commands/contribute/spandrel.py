"""``mrnet contribute spandrel DIR``: write MRNet into a spandrel checkout as its pull request has it.

What it writes into the checkout at DIR (a folder holding ``libs/spandrel/spandrel/architectures/`` and
``tests/util.py``):

- ``libs/spandrel/spandrel/architectures/MRNet/__arch/``: ``mrnet_arch.py`` generated from the plugin's arch
  (``spandrel_files.arch_source``), ``mrnet_config.py`` (the plugin's facts module) and the plugin's LICENSE;
- ``libs/spandrel/spandrel/architectures/MRNet/__init__.py``: ``MRNetArch`` and ``MultiScaleMRNetArch``;
- ``libs/spandrel/spandrel/__helpers/main_registry.py``: both added at the end of ``MAIN_REGISTRY`` (their keys,
  ``mrm.conv_block.*``, are MRNet's own);
- ``tests/test_MRNet.py``, the weights of its inference test as ``tests/models/<file>`` (the package's pretrained
  weights, ``project.pretrained_weights()``, once the CPU campaign has shipped them, else the demo weights
  ``MRNet_demo_x2.pth``) and the snapshot images of that test, ``tests/images/outputs/<input>/<file stem>.png``,
  computed from spandrel's own test inputs the way its ``tests/util.py`` computes them;
- a row in README.md's list of super-resolution architectures.

The Python files are formatted and fixed by ruff in memory (the version ``requirements-dev.txt`` pins), so they
are in spandrel's style before they are compared with what the checkout has. Idempotent; a file that exists with
other contents is never replaced without ``--overwrite`` (registry and README are updated in place when the
change only adds lines).
"""
import importlib.util
import re
import shutil
import subprocess
import sys
from os import path as osp

from mrnet_arch.commandline.optional import require
from mrnet_arch.project import package_dir, pretrained_weights

from . import spandrel_files
from .common import ContributeError, check_folder, check_pr_body, license_text, only_adds_lines, read, report, write

ARCHS = 'libs/spandrel/spandrel/architectures'
ARCH_DIR = f'{ARCHS}/MRNet'
REGISTRY = 'libs/spandrel/spandrel/__helpers/main_registry.py'
CHECKOUT_PARTS = (ARCHS, REGISTRY, 'tests/util.py')
README = 'README.md'
PROG = 'mrnet contribute spandrel'
DEMO_WEIGHTS = 'demo_weights/MRNet_demo_x2.pth'
SNAPSHOT_TOLERANCE = 1  # assert_image_inference's default max_single_pixel_error
IMAGE_FILES = {'SR_16': '16x16.png', 'SR_32': '32x32.png', 'SR_64': '64x64.png'}  # spandrel's TestImage values
REGISTRY_ENTRIES = ('    ArchSupport.from_architecture(MRNet.MRNetArch()),\n'
                    '    ArchSupport.from_architecture(MRNet.MultiScaleMRNetArch()),\n')
PAPER = '*Memory Recursive Network for Single Image Super-Resolution*, ACM MM 2020'


def check_checkout(folder):
    """Raise ``ContributeError`` unless ``folder`` is a spandrel checkout."""
    check_folder(folder, CHECKOUT_PARTS, 'spandrel checkout (clone https://github.com/chaiNNer-org/spandrel and '
                 'pass its folder)')


def ruff_command(checkout):
    """The ruff to format with (the Python package, else a ``ruff`` on PATH; ``commandline.optional.require`` stops when
    there is neither): its version must be the one the checkout's ``requirements-dev.txt`` pins."""
    require(['ruff'], 'the spandrel contribution')
    cmd = [sys.executable, '-m', 'ruff'] if importlib.util.find_spec('ruff') is not None else [shutil.which('ruff')]
    requirements = osp.join(checkout, 'requirements-dev.txt')
    pinned = re.search(r'^ruff==(\S+)', read(requirements), re.M) if osp.isfile(requirements) else None
    install = f'pip install ruff=={pinned.group(1)}' if pinned else 'pip install ruff'
    version = subprocess.run(cmd + ['--version'], capture_output=True, text=True).stdout.split()[-1:]
    if pinned and version != [pinned.group(1)]:
        raise ContributeError(f'{requirements} pins ruff {pinned.group(1)}, found {" ".join(version) or "none"}; '
                              f'{install}')
    return cmd


def ruff_format(cmd, checkout, rel, text):
    """``text`` as ``ruff check --fix`` then ``ruff format`` leave it, configured as the checkout's file ``rel``."""
    for args in (['check', '--fix', '--exit-zero', '--quiet'], ['format', '--quiet']):
        proc = subprocess.run(cmd + args + ['--stdin-filename', osp.join(checkout, rel), '-'], input=text,
                              capture_output=True, text=True, cwd=checkout)
        if proc.returncode != 0:
            raise ContributeError(f'ruff {args[0]} failed on {rel}: {proc.stderr.strip()[-2000:]}')
        text = proc.stdout
    return text


def registry_text(old):
    """``main_registry.py`` with ``MRNet`` imported and its two architectures added at the end of the registry."""
    if 'MRNet.MRNetArch()' in old:
        return old
    imports = re.search(r'from \.\.architectures import \((.*?)\n\)', old, re.S)
    add = re.search(r'MAIN_REGISTRY\.add\((.*)\n\)', old, re.S)
    if not imports or not add:
        raise ContributeError(f'{REGISTRY}: found no "from ..architectures import (...)" and "MAIN_REGISTRY.add('
                              '...)" to add MRNet to')
    text = old[:add.end() - 1] + REGISTRY_ENTRIES + old[add.end() - 1:]
    return text[:imports.end() - 1] + '    MRNet,\n' + text[imports.end() - 1:]


def readme_row(weights_url=None):
    """The README row of MRNet in spandrel's list of super-resolution architectures."""
    models = f' | [Models]({weights_url})' if weights_url else ''
    return f'- MRNet ({PAPER}; MRNet-S and the multi-scale MRNet){models}\n'


def readme_text(old, weights_url=None):
    """README with MRNet's row at the end of the "Single Image Super Resolution" list."""
    if '- MRNet (' in old:
        return old
    heading = old.find('#### Single Image Super Resolution')
    end = old.find('\n\n####', heading)
    if heading < 0 or end < 0:
        raise ContributeError(f'{README}: found no "#### Single Image Super Resolution" list to add MRNet to')
    return old[:end + 1] + readme_row(weights_url) + old[end + 1:]


def snapshot_weights():
    """The weight file of the inference test: the package's pretrained weights when it holds them, else the demo
    weights."""
    shipped = pretrained_weights()
    return shipped if osp.isfile(shipped) else osp.join(package_dir(), DEMO_WEIGHTS)


def model_description(weights):
    """What the PR body says of the inference test's model."""
    name = osp.basename(weights)
    if osp.realpath(weights) == osp.realpath(pretrained_weights()):
        return (f'`tests/models/{name}` is the BasicSR plugin\'s pretrained MRNet-S x2 (the paper\'s size plus a '
                'bicubic global skip, trained on CPU on photos from Debian packages and scikit-image)')
    return f'`tests/models/{name}` is a small demo model (x2, trained on a few photos)'


def snapshot_images(checkout, weights):
    """``{checkout path: PNG bytes}``: the model's output for spandrel's test inputs, computed as its
    ``tests/util.py`` does (cv2 BGR -> RGB float in [0, 1], the model, clamp, round, RGB -> BGR). An existing
    snapshot within spandrel's tolerance of the new output is kept as it is (another thread count may round a
    pixel differently)."""
    import cv2
    import numpy as np
    import torch

    from mrnet_arch.storage.weights import load_model
    net, _ = load_model(weights)
    files = {}
    for name in IMAGE_FILES.values():
        path = osp.join(checkout, 'tests', 'images', 'inputs', name)
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise ContributeError(f'{path}: spandrel\'s test input is missing or unreadable')
        img = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_BGR2RGB)
        tensor = torch.from_numpy(np.transpose(img, (2, 0, 1))).unsqueeze(0)
        with torch.no_grad():
            out = net(tensor).clamp(0, 1)
        out = np.transpose(out.squeeze(0).numpy(), (1, 2, 0))
        out = cv2.cvtColor(np.clip((out * 255.0).round(), 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        rel = f'tests/images/outputs/{osp.splitext(name)[0]}/{osp.splitext(osp.basename(weights))[0]}.png'
        target = osp.join(checkout, rel)
        existing = cv2.imread(target, cv2.IMREAD_COLOR) if osp.isfile(target) else None  # no OpenCV warning
        if existing is not None and existing.shape == out.shape and np.abs(
                existing.astype(np.int32) - out.astype(np.int32)).max() <= SNAPSHOT_TOLERANCE:
            files[rel] = read(target, binary=True)  # the same snapshot, within spandrel's tolerance
            continue
        ok, png = cv2.imencode('.png', out)
        if not ok:
            raise ContributeError(f'could not encode the snapshot of {name}')
        files[rel] = png.tobytes()
    return files


def plan(checkout, weights_url=None):
    """``{checkout path: text or bytes}`` of everything the contribution writes into ``checkout``."""
    from mrnet_arch.storage.weights import infer_config, read_state_dict
    cmd = ruff_command(checkout)
    weights = snapshot_weights()
    config = infer_config(read_state_dict(weights)[0])
    python = {
        f'{ARCH_DIR}/__arch/mrnet_arch.py': spandrel_files.arch_source(),
        f'{ARCH_DIR}/__arch/mrnet_config.py': spandrel_files.config_source(),
        f'{ARCH_DIR}/__init__.py': spandrel_files.init_source(),
        'tests/test_MRNet.py': spandrel_files.test_source(config, osp.basename(weights), weights_url),
        REGISTRY: registry_text(read(osp.join(checkout, REGISTRY))),
    }
    files = {rel: ruff_format(cmd, checkout, rel, text) for rel, text in python.items()}
    files[f'{ARCH_DIR}/__arch/LICENSE'] = license_text()
    files[f'tests/models/{osp.basename(weights)}'] = read(weights, binary=True)
    files.update(snapshot_images(checkout, weights))
    if osp.isfile(osp.join(checkout, README)):
        files[README] = readme_text(read(osp.join(checkout, README)), weights_url)
    return files


def is_addition(rel, old, new):
    """``common.write``'s test: the registry and README are updated in place when the change only adds lines."""
    return rel in (REGISTRY, README) and only_adds_lines(old, new)


def pr_body(files, weights, weights_url=None):
    """The pull-request description (Markdown); ``weights``: the inference test's weight file."""
    from .basicsr import MRNET_SUMMARY
    added = sorted(p for p in files if p.startswith(ARCH_DIR) or p.startswith('tests/'))
    return '\n'.join([
        '# Add MRNet (ACM MM 2020)', '', MRNET_SUMMARY, '',
        'Two architectures: `MRNet` (one scale, the paper\'s MRNet-S) and `MultiScaleMRNet` (one MRM shared by '
        'several scales; the model runs its smallest scale). Every hyperparameter but `res_scale`, `img_range` and '
        '`rgb_mean` is read from the state dict (the `baseline` recursive module, whose layers are those of '
        '`residual`, holds a marker buffer); these three are listed as undetectable in the code.', '',
        '## What is added', '',
        *[f'- `{p}`' for p in added], f'- `{REGISTRY}`: both architectures, at the end of `MAIN_REGISTRY`',
        f'- `{README}`: a row in the super-resolution list', '',
        'The architecture code is MIT-licensed (LICENSE beside it), torch only.', '', '## How it was tested', '',
        '- `ruff check libs tests`, `ruff format --check libs tests`, `pyright libs tests`',
        '- `pytest tests/test_MRNet.py tests/test_registry.py`: every network configuration of the paper '
        '(MRNet-S x2/x3/x4, the multi-scale MRNet, the Table 1 and Table 2 ablations, Figure 7) and further '
        'variants round-trip through `assert_loads_correctly`; size requirements; inference snapshots of the '
        'model below.',
        '- Outside spandrel: the architecture gives outputs equal to the BasicSR plugin\'s for the same weights.',
        '', '## Model', '',
        f'{model_description(weights)}; '
        + (f'CI downloads it from {weights_url}.' if weights_url else
           '`tests/models/` is git-ignored here: it must be uploaded and its URL given to `ModelFile.from_url` '
           '(`mrnet contribute spandrel --weights-url URL`).'), '',
        '## README row', '', readme_row(weights_url)])


def run(args):
    """``mrnet contribute spandrel``: plan, write, report. Returns the exit code."""
    require(['ruff'], 'the spandrel contribution')  # before anything is read or written
    checkout = osp.abspath(args.dir)
    check_checkout(checkout)
    check_pr_body(args.pr_body)
    files = plan(checkout, args.weights_url)
    status = write(checkout, files, overwrite=args.overwrite, is_addition=is_addition)
    report(checkout, status, f'Check with: cd {checkout} && ruff check libs tests && pyright libs tests && '
           'pytest tests/test_MRNet.py tests/test_registry.py', args.pr_body,
           pr_body(files, snapshot_weights(), args.weights_url) if args.pr_body else None)
    return 0
