"""Entry points shared by ``mrnet_arch/train.py``, ``mrnet_arch/test.py`` and the ``mrnet`` command.

BasicSR's pipelines read ``sys.argv`` and resolve relative paths (``datasets/...``) against the working
directory; these wrappers make ``-opt`` absolute, then run the pipeline from the project root
(``mrnet_arch.utils.project_root``), so a command gives the same result from any working directory.
"""
import os
import sys

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from mrnet_arch import compat
from mrnet_arch.utils import project_root


def _prepare_argv(argv, prog):
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv[:-1]):
        if arg == '-opt':
            path = os.path.abspath(argv[i + 1])
            if not os.path.isfile(path):
                raise SystemExit(f'{prog}: option file not found: {argv[i + 1]} (looked at {path})')
            argv[i + 1] = path
    sys.argv = [prog] + argv
    root = project_root()
    os.chdir(root)
    return root


def train(argv=None):
    """``basicsr.train.train_pipeline`` with the plugin's fixes; experiments land in ``<root>/experiments``."""
    root = _prepare_argv(argv, 'mrnet train')
    compat.patch_train_pipeline()
    from basicsr.train import train_pipeline
    train_pipeline(root)


def test(argv=None):
    """``basicsr.test.test_pipeline``; results land in ``<root>/results``."""
    root = _prepare_argv(argv, 'mrnet test')
    from basicsr.test import test_pipeline
    test_pipeline(root)
