"""The scripts of ``benchmarks/`` and ``tools/`` as modules, for the tests of those scripts (they are scripts, not
part of the package, so they are loaded from their files)."""
import importlib.util
from os import path as osp

BENCHMARKS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'benchmarks')


def benchmark_script(name):
    """``benchmarks/<name>.py`` loaded as a module named ``_benchmark_<name>``."""
    spec = importlib.util.spec_from_file_location(f'_benchmark_{name}', osp.join(BENCHMARKS, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_script(name):
    """``tools/<name>.py`` loaded as a module named ``_tool_<name>``."""
    path = osp.join(osp.dirname(BENCHMARKS), 'tools', name + '.py')
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
