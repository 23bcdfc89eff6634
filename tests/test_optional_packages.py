"""Optional packages (``mrnet_arch.commandline.optional``): every command checks, given its arguments, the optional
packages it will need before it starts any work; a missing one stops it with one line naming the pip extra.

Each command runs as ``python -m mrnet_arch`` in a subprocess whose ``sitecustomize`` sets ``sys.modules[name] =
None`` for the packages named in ``$MRNET_TEST_MISSING``, so that importing them fails as if they were not
installed.
"""
import ast
import os
import subprocess
import sys
from os import path as osp

import pytest

from mrnet_arch.commandline import optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_WEIGHTS = osp.join(REPO, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')
HIDE = '''import os
import sys

for _name in os.environ.get('MRNET_TEST_MISSING', '').split(','):
    if _name:
        sys.modules[_name] = None  # "import _name" now raises ModuleNotFoundError
'''


def run_without(missing, args, tmp_path, cwd=None, path=None):
    """``python -m mrnet_arch ARGS`` with the packages ``missing`` made unimportable; returns the CompletedProcess."""
    hook = tmp_path / 'hide_packages'
    hook.mkdir(exist_ok=True)
    (hook / 'sitecustomize.py').write_text(HIDE, encoding='utf-8')
    env = dict(os.environ, MRNET_TEST_MISSING=','.join(missing), OMP_NUM_THREADS='1', MRNET_ROOT=str(tmp_path / 'root'))
    env['PYTHONPATH'] = os.pathsep.join([str(hook), REPO, env.get('PYTHONPATH', '')])
    if path is not None:
        env['PATH'] = path
    return subprocess.run([sys.executable, '-m', 'mrnet_arch', *args], cwd=str(cwd or tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)


def path_without(tool):
    """``$PATH`` without the folders that hold ``tool``."""
    return os.pathsep.join(d for d in os.environ.get('PATH', '').split(os.pathsep)
                           if d and not osp.exists(osp.join(d, tool)))


@pytest.mark.parametrize('missing,args,for_what,pip_name,extra', [
    ('matplotlib', ['bench', '--plot', '--models', 'Bicubic', '--device', 'cpu', '--output-dir', 'out'],
     '--plot', 'matplotlib', 'bench'),
    ('onnx', ['export', '--weights', DEMO_WEIGHTS, '--format', 'onnx', '--output', 'out/demo.onnx'],
     '--format onnx', 'onnx', 'export'),
    ('skimage', ['prepare', 'photos', '--output', 'out', '--workers', '1'], 'the photos subcommand', 'scikit-image',
     'photos'),
    ('skimage', ['demo', '--iters', '1'], 'the demo', 'scikit-image', 'photos'),
    ('ruff', ['contribute', 'spandrel', 'out'], 'the spandrel contribution', 'ruff', 'contribute'),
])
def test_a_missing_optional_package_stops_the_command_at_once(tmp_path, missing, args, for_what, pip_name, extra):
    """One line naming the extra, exit status 1, no traceback, and nothing written: no output folder, nothing
    under the project root (``mrnet demo`` writes there), a spandrel checkout left as it was."""
    checkout = tmp_path / 'out'
    if missing == 'ruff':  # a spandrel checkout, which must stay as it is
        (checkout / 'tests').mkdir(parents=True)
        (checkout / 'tests' / 'util.py').write_text('# spandrel test utilities\n', encoding='utf-8')
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
    proc = run_without([missing], args, tmp_path, path=path_without('ruff') if missing == 'ruff' else None)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f'mrnet {args[0]}: error: {for_what} needs {pip_name}, which is not installed: pip install '
        f'"mrnet_arch[{extra}]"']
    assert proc.stdout == ''  # no model benchmarked, no weights read, no photo written
    hook = tmp_path / 'hide_packages'
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*') if hook not in p.parents and p != hook) \
        == before
    assert not (tmp_path / 'root').exists()


def test_commands_that_need_no_optional_package_run_without_any(tmp_path):
    """``mrnet infer`` and ``mrnet export --format safetensors`` with every optional package hidden."""
    import cv2
    import numpy as np
    cv2.imwrite(str(tmp_path / 'photo.png'), np.random.default_rng(0).integers(0, 256, (12, 10, 3), np.uint8))
    everything = list(optional.EXTRAS)
    proc = run_without(everything, ['infer', '--weights', DEMO_WEIGHTS, '--input', 'photo.png', '--output',
                                    'photo_x2.png', '--device', 'cpu', '--precision', 'fp32'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(tmp_path / 'photo_x2.png')).shape == (24, 20, 3)
    proc = run_without(everything, ['export', '--weights', DEMO_WEIGHTS, '--format', 'safetensors', '--output',
                                    'demo.safetensors'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'demo.safetensors').stat().st_size > 0


def test_require_names_every_missing_package_and_its_extras(monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnx', None)
    monkeypatch.setitem(sys.modules, 'matplotlib', None)
    with pytest.raises(optional.MissingPackageError) as caught:
        optional.require(['onnx', 'matplotlib', 'numpy'], 'this check')
    assert str(caught.value) == ('this check needs onnx, matplotlib, which are not installed: '
                                 'pip install "mrnet_arch[export,bench]"')
    optional.require(['numpy'], 'numpy is there')  # returns


def test_a_tool_on_path_counts_as_installed(monkeypatch, tmp_path):
    """ruff is used as a command: a ``ruff`` on PATH (pipx, a system package) serves as well as the package."""
    monkeypatch.setitem(sys.modules, 'ruff', None)
    tool = tmp_path / 'ruff'
    tool.write_text('#!/bin/sh\necho ruff 0.5.0\n', encoding='utf-8')
    tool.chmod(0o755)
    monkeypatch.setenv('PATH', str(tmp_path))
    assert optional.available('ruff')
    monkeypatch.setenv('PATH', path_without('ruff'))
    assert not optional.available('ruff')


def _setup_extras():
    """``extras_require`` of setup.py, read with ``ast``."""
    with open(osp.join(REPO, 'setup.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'extras_require':
            return ast.literal_eval(node.value)
    raise AssertionError('setup.py has no extras_require')


def test_the_table_names_extras_that_setup_py_declares():
    extras = _setup_extras()
    for name, (pip_name, extra) in optional.EXTRAS.items():
        assert extra in extras, name
        assert any(req.split('=')[0].split('>')[0] == pip_name for req in extras[extra]), (name, extras[extra])


def test_bench_writes_its_results_before_the_plot(tmp_path, monkeypatch):
    """The measurements are in the JSON and Markdown files before the optional plot is drawn: a plot that fails
    loses nothing else."""
    import json

    from mrnet_arch.commands.bench import command

    def broken_plot(result, path):
        raise RuntimeError('the plot failed')

    monkeypatch.setattr(command, 'plot_report', broken_plot)
    with pytest.raises(RuntimeError, match='the plot failed'):
        command.run(['--models', 'Bicubic', 'MRNet:num_feat=8,num_block=1,num_recursion=2', '--device', 'cpu',
                     '--lr-size', '12', '16', '--skip-latency', '--output-dir', str(tmp_path), '--name', 'b', '--plot'])
    with open(tmp_path / 'b.json', encoding='utf-8') as f:
        saved = json.load(f)
    assert [m['label'] for m in saved['models']] == ['Bicubic', 'MRNet'] and saved['models'][1]['params'] > 0
    assert '| MRNet |' in (tmp_path / 'b.md').read_text(encoding='utf-8')
    assert not (tmp_path / 'b.png').exists()
