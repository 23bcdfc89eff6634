"""One error family (``mrnet_arch.errors``): every exception class of the plugin is an ``InputError`` or a
``RunError`` (a BasicSR drop-in's error by its entry in ``DROP_IN_ERRORS``), and ``mrnet`` ends every command the
same way: ``mrnet <command>: error: <message>`` on stderr, exit status 2 for bad input or usage, 1 for a failed
run, no traceback."""
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from os import path as osp

import pytest
import torch

import mrnet_arch
from _tiny import env
from mrnet_arch import MRNet
from mrnet_arch.cli import main as mrnet
from mrnet_arch.cli import run_command
from mrnet_arch.errors import DROP_IN_ERRORS, InputError, MRNetError, RunError, error_kind, exit_status
from mrnet_arch.models.mrnet_checkpoint import DiskFullError, WeightsError

DROP_IN_FOLDERS = ('mrnet_arch.archs.', 'mrnet_arch.models.', 'mrnet_arch.data.')


def _plugin_modules():
    """Every module of the package but ``__main__`` (importing it runs the command line)."""
    names = ['mrnet_arch']
    for info in pkgutil.walk_packages(mrnet_arch.__path__, 'mrnet_arch.'):
        if not info.name.endswith('__main__'):
            names.append(info.name)
    return [importlib.import_module(name) for name in names]


def _exception_classes():
    """Every exception class defined at the top level of a module of the plugin."""
    found = {}
    for module in _plugin_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found[f'{cls.__module__}.{cls.__qualname__}'] = cls
    return found


def test_every_exception_class_of_the_plugin_is_in_the_family():
    classes = _exception_classes()
    # the walk finds the classes of every layer: shared, commands, drop-ins, the family itself
    for name in ('mrnet_arch.preflight.check_report.CheckError', 'mrnet_arch.commands.compare.CompareError',
                 'mrnet_arch.commandline.optional.MissingPackageError', 'mrnet_arch.errors.MRNetError',
                 *DROP_IN_ERRORS):
        assert name in classes, name
    problems = []
    for name, cls in sorted(classes.items()):
        if name.startswith(DROP_IN_FOLDERS):  # copied into BasicSR as they are: registered, not derived
            if issubclass(cls, MRNetError) or name not in DROP_IN_ERRORS:
                problems.append(f'{name}: a drop-in error must be registered in DROP_IN_ERRORS, not derive from '
                                'MRNetError')
        elif not issubclass(cls, MRNetError):
            problems.append(f'{name}: does not derive from mrnet_arch.errors.MRNetError')
        elif cls is not MRNetError and not issubclass(cls, (InputError, RunError)):
            problems.append(f'{name}: is neither an InputError nor a RunError')
    assert not problems, '\n'.join(problems)
    for name, kind in DROP_IN_ERRORS.items():  # no stale entry; each is a kind
        assert name in classes and name.startswith(DROP_IN_FOLDERS) and kind in (InputError, RunError), name


def test_kinds_and_exit_statuses():
    from mrnet_arch.commandline.run_lock import RunLockError
    from mrnet_arch.preflight.check_report import CheckError
    assert (exit_status(InputError('x')), exit_status(RunError('x'))) == (2, 1)
    assert error_kind(CheckError('x')) is InputError and isinstance(CheckError('x'), ValueError)
    assert error_kind(RunLockError('x')) is RunError and isinstance(RunLockError('x'), RuntimeError)
    assert error_kind(WeightsError('x')) is InputError and exit_status(DiskFullError('/d', 'f')) == 1

    class Narrower(WeightsError):  # a subclass of a drop-in error keeps its kind
        pass

    assert error_kind(Narrower) is InputError
    assert error_kind(ValueError('x')) is None and exit_status(KeyError('x')) is None


@pytest.mark.parametrize('error, status', [
    (InputError('--tile must be >= 0, got -1'), 2),
    (RunError('apt-get download failed'), 1),
    (WeightsError('w.pth: not MRNet weights'), 2),  # drop-in errors, by their registered kind
    (DiskFullError('/out', 'a.png', needed=1 << 20, free=0), 1),
])
def test_run_command_maps_each_kind_to_one_line_and_its_status(capsys, error, status):
    def command(argv):
        raise error

    assert run_command('mrnet fake', command, []) == status
    captured = capsys.readouterr()
    assert captured.err == f'mrnet fake: error: {error}\n' and captured.out == ''


def test_run_command_passes_statuses_through_and_other_exceptions_on():
    assert run_command('mrnet fake', lambda argv: 1, []) == 1  # a command's own status (e.g. some images failed)
    assert run_command('mrnet fake', lambda argv: {'done': True}, []) == 0
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run_command('mrnet fake', lambda argv: 1 / 0, [])


@pytest.fixture()
def weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / 'w.pth'
    torch.save({'params': MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=2).state_dict()}, path)
    return str(path)


def test_a_command_maps_an_input_error_to_2_and_a_run_error_to_1(weights, tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / 'missing.json')
    assert mrnet(['card', '--weights', weights, '--results', missing]) == 2
    assert capsys.readouterr().err == f'mrnet card: error: --results {missing}: no such file\n'

    from mrnet_arch.commands import export

    def full_disk(net, config, path):
        raise DiskFullError(osp.dirname(path), osp.basename(path), needed=4096, free=0)

    monkeypatch.setattr(export, 'save_safetensors', full_disk)
    out = str(tmp_path / 'out' / 'w.safetensors')
    assert mrnet(['export', '--weights', weights, '--format', 'safetensors', '--output', out]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f'mrnet export: error: {tmp_path / "out"}: the disk is full')


def test_argparse_usage_errors_stay_argparses(capsys):
    with pytest.raises(SystemExit) as caught:
        mrnet(['infer', '--no-such-option'])
    assert caught.value.code == 2 and 'usage: mrnet infer' in capsys.readouterr().err


def test_on_the_command_line_one_line_and_no_traceback(weights, tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'infer', '--weights', weights, '--input',
                           str(tmp_path / 'nowhere'), '--output', str(tmp_path / 'out')],
                          env=env(str(tmp_path)), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f'mrnet infer: error: --input {tmp_path / "nowhere"}: no such file or folder']
    assert not os.path.exists(tmp_path / 'out')


def test_values_the_user_gives_are_input_errors_that_are_also_value_errors(capsys):
    """``--device``, precisions, ``Upscaler`` arguments, ``--crop`` and ``--results``: ``InvalidValueError``."""
    from mrnet_arch.errors import InvalidValueError
    from mrnet_arch.inference.device import resolve_device
    from mrnet_arch.inference.precision import resolve_precision
    from mrnet_arch.reports.crops import parse_crop
    for call, message in ((lambda: resolve_device('nodevice'), '--device nodevice: not a device'),
                          (lambda: resolve_precision('fp8', 'cpu'), 'precision must be one of'),
                          (lambda: parse_crop('1,2,3', (64, 64)), '--crop: expected x,y,w,h')):
        with pytest.raises(InvalidValueError, match=message) as info:
            call()
        assert isinstance(info.value, ValueError) and exit_status(info.value) == 2
    if not torch.cuda.is_available():  # mrnet infer ends on it in one line, status 2, with no conversion of its own
        assert mrnet(['infer', '--weights', 'w.pth', '--input', '.', '--output', 'out', '--device', 'cuda']) == 2
        assert capsys.readouterr().err == ('mrnet infer: error: --device cuda: CUDA is not available (use --device cpu '
                                           'or auto)\n')
