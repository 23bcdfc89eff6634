"""Optional packages: which pip extra of ``mrnet_arch`` (``setup.py``'s ``extras_require``) brings each one, and
the check every command runs, given its arguments, before it starts any work.

``require(['matplotlib'], '--plot')`` returns when the package imports, and otherwise stops with one line naming
the extra to install; the command prints it after its own name::

    mrnet bench: error: --plot needs matplotlib, which is not installed: pip install "mrnet_arch[bench]"

What each command needs: ``mrnet bench --plot`` matplotlib; ``mrnet export --format onnx`` onnx;
``mrnet prepare photos`` (``--source skimage``) and ``mrnet demo`` scikit-image; ``mrnet contribute spandrel`` ruff
(the Python package, or a ``ruff`` on ``PATH``; its pinned version is checked by the command). ``mrnet infer``,
``card``, ``compare``, ``train``, ``test``, ``prepare div2k`` and ``prepare benchmark`` need none.
"""
import importlib
import shutil

from mrnet_arch.errors import RunError

PROJECT = 'mrnet_arch'

# import name -> (what pip installs, the extra of setup.py that brings it)
EXTRAS = {
    'matplotlib': ('matplotlib', 'bench'),
    'onnx': ('onnx', 'export'),
    'onnxruntime': ('onnxruntime', 'export'),
    'skimage': ('scikit-image', 'photos'),
    'spandrel': ('spandrel', 'spandrel'),
    'ruff': ('ruff', 'contribute'),
}
# packages that are used as a command-line tool: one on PATH serves as well as the Python package
TOOLS = ('ruff', )


class MissingPackageError(RunError):
    """Optional packages a command needs are not installed; the message (one line) names the pip extra."""


def available(name):
    """Whether the optional package ``name`` (its import name) can be imported (for ``TOOLS``: or is on PATH)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return name in TOOLS and shutil.which(name) is not None
    return True


def install_command(names):
    """The pip command that installs the optional packages ``names``: ``pip install "mrnet_arch[bench]"``."""
    extras = list(dict.fromkeys(EXTRAS[n][1] for n in names if n in EXTRAS))
    others = [n for n in names if n not in EXTRAS]
    parts = ([f'"{PROJECT}[{",".join(extras)}]"'] if extras else []) + others
    return 'pip install ' + ' '.join(parts)


def require(packages, for_what):
    """Stop unless every package of ``packages`` imports.

    Args:
        packages (Iterable[str]): Import names (keys of ``EXTRAS``).
        for_what (str): What needs them, without the command's name, which the message already starts with
            (``'--plot'``, ``'the demo'``).

    Raises:
        MissingPackageError: Some are missing; one line: what needs them and the ``pip install`` that brings
            them (a ``RunError``: ``mrnet`` exits with status 1).
    """
    missing = [name for name in dict.fromkeys(packages) if not available(name)]
    if missing:
        shown = ', '.join(EXTRAS.get(n, (n, None))[0] for n in missing)
        verb = 'is' if len(missing) == 1 else 'are'
        raise MissingPackageError(f'{for_what} needs {shown}, which {verb} not installed: {install_command(missing)}')
