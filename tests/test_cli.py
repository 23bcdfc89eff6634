"""The ``mrnet`` command and ``python -m mrnet_arch``: every subcommand resolves, errors name what is wrong."""
import importlib
import subprocess
import sys

from mrnet_arch.cli import COMMANDS


def test_every_subcommand_resolves_to_a_function():
    for name, (target, _) in COMMANDS.items():
        module, func = target.split(':')
        assert callable(getattr(importlib.import_module(module), func)), name


def test_python_m_lists_commands_and_rejects_unknown_ones():
    out = subprocess.run([sys.executable, '-m', 'mrnet_arch', '--help'], capture_output=True, text=True)
    assert out.returncode == 0
    for name in COMMANDS:
        assert f'\n  {name} ' in out.stdout
    out = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'bogus'], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice: 'bogus'" in out.stderr


def test_missing_option_file_is_named(tmp_path):
    missing = tmp_path / 'nope.yml'
    out = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'train', '-opt', str(missing)], capture_output=True,
                         text=True)
    assert out.returncode != 0 and f'option file not found: {missing}' in out.stderr
