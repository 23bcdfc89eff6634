"""Importing other BasicSR plugins before models are built: the ``--import MODULE`` option.

BasicSR archs register themselves in ``ARCH_REGISTRY`` when their module is imported. To compare MRNet with an
arch from another plugin (e.g. HAT, whose archs register on ``import hat.archs``), ``mrnet bench`` and
``mrnet compare`` import the modules named by ``--import`` first; the arch can then be named in ``--models``
(``HAT:upscale=2,...``).
"""
import importlib
import traceback

from mrnet_arch.errors import InputError

IMPORT_HELP = ("import this module before the models are built, so that its BasicSR archs register (e.g. "
               "hat.archs); repeatable. The module must be importable: installed, or on PYTHONPATH")


def add_import_argument(parser):
    """Add ``--import MODULE`` (repeatable; ``args.imports``, a list) to an argparse parser."""
    parser.add_argument('--import', dest='imports', action='append', default=[], metavar='MODULE', help=IMPORT_HELP)
    return parser


def import_modules(names):
    """Import each module of ``names``, in order.

    Args:
        names (list[str]): Dotted module names (``hat.archs``).

    Returns:
        list: The imported modules.

    Raises:
        InputError: A module that cannot be imported; the message names it and gives the error (the last
            line of the traceback for an error raised inside the module).
    """
    import mrnet_arch  # noqa: F401  (compat fixes before another plugin imports basicsr)
    modules = []
    for name in names:
        if not name or name.startswith('.') or any(not part.isidentifier() for part in name.split('.')):
            raise InputError(f'--import {name!r}: not a module name (expected e.g. hat.archs)')
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            hint = ('; install it or put its folder on PYTHONPATH' if err.name and name.startswith(err.name)
                    else '')
            raise InputError(f'--import {name}: cannot import it: {err}{hint}') from err
        except Exception as err:  # noqa: BLE001  (any error inside the module: name the module)
            where = traceback.extract_tb(err.__traceback__)[-1]
            raise InputError(f'--import {name}: importing it failed: {type(err).__name__}: {err} '
                             f'({where.filename}, line {where.lineno})') from err
    return modules
