"""The package's layers, read from the source with ``ast`` (nothing is imported but ``mrnet_arch.cli``).

- Commands (the modules behind ``mrnet --help``, ``mrnet_arch.cli.COMMANDS``, and every module of their
  packages, all under ``mrnet_arch.commands``) depend downwards only: on the shared layer (the job packages
  ``preflight``, ``commandline``, ``storage``, ``dataprep``, ``inference``, ``publishing``, ``measurement`` and
  ``reports``), ``archs``/``models``/``data`` and ``project``; never on another command.
- The shared layer imports no command.
- No folder of the package holds more than ``MAX_MODULES`` modules, and no module imports itself back through
  others, whether the imports are at module level or inside functions; nor does a shared package through
  other packages.
- Outside ``archs/``, ``models/`` and ``data/``, no module imports a private (``_name``) name of theirs: the general
  helpers the drop-ins need for themselves are private, and the plugin has its own.
- The modules of ``archs/``, ``models/`` and ``data/`` (the drop-ins ``*_arch.py``, ``*_model.py``,
  ``*_dataset.py`` and their torch-only siblings) import only torch, numpy, basicsr, the standard library (and
  safetensors, inside the function that reads a ``.safetensors`` file) and, relatively, a sibling of their own
  folder that registers nothing, so that the folder's files can be copied into a BasicSR checkout as they are.
"""
import ast
import glob
import sys
from os import path as osp

import pytest

from mrnet_arch.cli import COMMANDS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = osp.join(REPO, 'mrnet_arch')
COMMANDS_PACKAGE = 'mrnet_arch.commands'
DROP_IN_ROOTS = {'torch', 'numpy', 'basicsr', 'safetensors'}
DROP_IN_FOLDERS = ('archs', 'models', 'data')
SHARED_PACKAGES = ('preflight', 'commandline', 'storage', 'dataprep', 'inference', 'publishing', 'measurement',
                   'reports')
MAX_MODULES = 12


def _module_name(path):
    rel = osp.relpath(path, REPO)[:-len('.py')].replace(osp.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def _is_package(module):
    return osp.isfile(osp.join(REPO, *module.split('.'), '__init__.py'))


def imports_of(path):
    """Every module a file imports (top level and inside functions), with ``from X import y`` giving both X
    and X.y (``y`` may be a submodule), relative imports resolved."""
    module = _module_name(path)
    package = module if osp.basename(path) == '__init__.py' else module.rpartition('.')[0]
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                parent = '.'.join(parts[:len(parts) - node.level + 1])
                base = f'{parent}.{base}' if base else parent
            found.add(base)
            found.update(f'{base}.{alias.name}' for alias in node.names)
    return found


def command_units():
    """Command name -> the module or package that implements it (a package when the entry point is inside
    a subpackage of ``mrnet_arch.commands``, e.g. ``mrnet_arch.commands.bench``)."""
    units = {}
    for name, (target, _) in COMMANDS.items():
        module = target.split(':')[0]
        parent = module.rpartition('.')[0]
        assert _within(module, COMMANDS_PACKAGE), f'{name}: {module} is not under {COMMANDS_PACKAGE}'
        units[name] = parent if parent != COMMANDS_PACKAGE and _is_package(parent) else module
    return units


def files_of(unit):
    """The source files of a module, or of every module in a package."""
    if _is_package(unit):
        return sorted(glob.glob(osp.join(REPO, *unit.split('.'), '**', '*.py'), recursive=True))
    return [osp.join(REPO, *unit.split('.')) + '.py']


def _within(module, unit):
    return module == unit or module.startswith(unit + '.')


def test_every_command_is_found():
    units = command_units()
    assert units['bench'] == 'mrnet_arch.commands.bench' and units['prepare'] == 'mrnet_arch.commands.prepare'
    for unit in units.values():
        assert all(osp.isfile(f) for f in files_of(unit)), unit


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_commands_import_no_other_command(command):
    units = command_units()
    own = units[command]
    others = {u for u in units.values() if u != own}
    problems = []
    for path in files_of(own):
        for imported in sorted(imports_of(path)):
            hit = [u for u in others if _within(imported, u)]
            if hit:
                problems.append(f'{osp.relpath(path, REPO)} imports {imported} (command {hit[0]})')
    assert not problems, '\n'.join(problems)


def test_shared_layer_imports_no_command():
    units = set(command_units().values())
    paths = [p for name in SHARED_PACKAGES for p in glob.glob(osp.join(PACKAGE, name, '**', '*.py'), recursive=True)]
    assert len(paths) > 2 * len(SHARED_PACKAGES)
    problems = [
        f'{osp.relpath(path, REPO)} imports {imported}' for path in sorted(paths)
        for imported in sorted(imports_of(path))
        if any(_within(imported, u) for u in units) or _within(imported, COMMANDS_PACKAGE)
    ]
    assert not problems, '\n'.join(problems)


def _drop_in_folder_modules():
    """Every module of archs/, models/ and data/ but ``__init__.py``: the drop-ins (``*_arch.py``, ``*_model.py``,
    ``*_dataset.py``) and their torch-only siblings, all of which ``mrnet contribute basicsr`` copies."""
    return sorted(p for folder in ('archs', 'models', 'data') for p in glob.glob(osp.join(PACKAGE, folder, '*.py'))
                  if osp.basename(p) != '__init__.py')


def _is_drop_in(name):
    return name.endswith(('_arch', '_model', '_dataset'))


def drop_in_import_problems(path):
    """What a file of archs/, models/ or data/ imports beyond torch, numpy, basicsr, the standard library and,
    by a relative import (``from .mrnet_config import ...``, valid in the plugin and in a checkout's
    ``basicsr/archs/`` alike), a sibling module of its own folder that registers nothing."""
    folder = osp.dirname(path)
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = node.module or ''
            if node.level != 1 or not target or '.' in target or not osp.isfile(osp.join(folder, target + '.py')):
                problems.append(f'relative import {"." * node.level}{target} is not a sibling module')
            elif _is_drop_in(target):
                problems.append(f'imports the drop-in {target} (BasicSR imports the drop-ins in no fixed order)')
            continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) else [])
        allowed = DROP_IN_ROOTS | set(sys.stdlib_module_names)
        problems += [f'imports {name}' for name in names if name.split('.')[0] not in allowed]
    return [f'{osp.relpath(path, REPO)} {p}' for p in problems]


def test_drop_in_files_import_only_torch_numpy_basicsr_and_stdlib():
    paths = _drop_in_folder_modules()
    assert any(_is_drop_in(osp.splitext(osp.basename(p))[0]) for p in paths)
    problems = [p for path in paths for p in drop_in_import_problems(path)]
    assert not problems, '\n'.join(problems)


def test_drop_in_rule_catches_what_it_must(tmp_path):
    """The rule refuses an absolute plugin import, a relative import of a drop-in and a parent-package import."""
    folder = tmp_path / 'archs'
    folder.mkdir()
    (folder / 'other_arch.py').write_text('')
    (folder / 'helper.py').write_text('')
    bad = folder / 'x_arch.py'
    bad.write_text('import cv2\nfrom mrnet_arch.storage import files\nfrom .other_arch import A\nfrom .. import b\n'
                   'from .helper import ok\nimport torch\n')
    problems = drop_in_import_problems(str(bad))
    assert len(problems) == 4, problems


def test_the_import_reader_sees_what_it_must():
    """``imports_of`` finds absolute, from-package and function-level imports."""
    src = osp.join(PACKAGE, 'commands', 'bench', 'command.py')
    found = imports_of(src)
    assert 'mrnet_arch.measurement.specs' in found and 'mrnet_arch.commands.bench.measure.measure_latency' in found
    demo = imports_of(osp.join(PACKAGE, 'commands', 'demo.py'))
    assert 'mrnet_arch.dataprep.prepare' in demo and 'mrnet_arch.commands.prepare' not in demo


def _package_modules():
    """Module name -> file of every module of the package (``__init__.py`` as the package itself)."""
    paths = glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True)
    return {_module_name(p): p for p in paths}


def test_the_shared_packages_are_every_other_package():
    folders = {osp.basename(osp.dirname(p)) for p in glob.glob(osp.join(PACKAGE, '*', '__init__.py'))}
    assert folders == set(SHARED_PACKAGES) | set(DROP_IN_FOLDERS) | {'commands'}


def test_no_folder_holds_more_than_twelve_modules():
    counts = {}
    for path in glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True):
        if osp.basename(path) != '__init__.py':
            folder = osp.relpath(osp.dirname(path), REPO)
            counts[folder] = counts.get(folder, 0) + 1
    assert counts['mrnet_arch'] >= 5 and counts['mrnet_arch/commands'] >= 5
    crowded = {folder: n for folder, n in counts.items() if n > MAX_MODULES}
    assert not crowded, crowded


def import_graph():
    """Module -> the package's modules it imports (``from X import y``: X.y where that is a module, else X)."""
    modules = _package_modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in imports_of(path):
            while name and name not in modules:
                name = name.rpartition('.')[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle_through_three_modules():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert cycles({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycles():
    """Package ``__init__`` files that import their modules (``mrnet_arch``, ``archs``, ...) are left out as
    targets of imports by their own modules: a module of a package always runs its package's ``__init__`` first,
    so that edge is not a dependency the module chose."""
    graph = import_graph()
    assert 'mrnet_arch.measurement.machine' in graph['mrnet_arch.inference.precision']
    for module in graph:
        graph[module] = {t for t in graph[module] if not (_is_package(t) and _within(module, t))}
    found = cycles(graph)
    assert not found, found


def test_drop_in_private_names_stay_in_their_folders():
    prefixes = tuple(f'mrnet_arch.{folder}.' for folder in DROP_IN_FOLDERS)
    problems = []
    for module, path in sorted(_package_modules().items()):
        if module.startswith(prefixes):
            continue
        for name in imports_of(path):
            if name.startswith(prefixes) and name.rpartition('.')[2].startswith('_'):
                problems.append(f'{osp.relpath(path, REPO)} imports {name}')
    assert not problems, '\n'.join(problems)


def test_the_shared_packages_import_each_other_without_cycles():
    """Package by package: a module of one shared package that imports a module of another draws an edge."""
    shared = {f'mrnet_arch.{name}' for name in SHARED_PACKAGES}

    def package(module):
        return next((p for p in shared if _within(module, p)), None)

    edges = {p: set() for p in shared}
    for module, targets in import_graph().items():
        source = package(module)
        for target in targets:
            if source and package(target) not in (None, source):
                edges[source].add(package(target))
    assert 'mrnet_arch.storage' in edges['mrnet_arch.measurement']  # specs reads weight files
    found = cycles(edges)
    assert not found, found
