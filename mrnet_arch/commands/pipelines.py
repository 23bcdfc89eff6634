"""Entry points shared by ``mrnet_arch/train.py``, ``mrnet_arch/test.py`` and the ``mrnet`` command.

BasicSR's pipelines read ``sys.argv`` and resolve relative paths (``datasets/...``) against the working
directory; these wrappers make ``-opt`` absolute, then run the pipeline from the project root
(``mrnet_arch.project.project_root``), so a command gives the same result from any working directory. The
pipeline runs inside ``compat.pipeline_fixes()``, whose changes to basicsr end with the call.
Right after BasicSR parses the options (``--force_yml`` applied, ``init_dist`` done for ``--launcher``),
``mrnet_arch.core.checks.check_options`` validates them and the dataset files; a problem stops the command with
a message naming the option or file, before any experiment folder is created or renamed.
"""
import os
import sys

import mrnet_arch  # noqa: F401  (registration)
from mrnet_arch import compat
from mrnet_arch.core import checks
from mrnet_arch.project import project_root


def _prepare_argv(argv, prog):
    argv = list(sys.argv[1:] if argv is None else argv)
    opt_file = None
    for i, arg in enumerate(argv[:-1]):
        if arg == '-opt':
            opt_file = os.path.abspath(argv[i + 1])
            if not os.path.isfile(opt_file):
                raise SystemExit(f'{prog}: option file not found: {argv[i + 1]} (looked at {opt_file})')
            argv[i + 1] = opt_file
    sys.argv = [prog] + argv
    root = project_root(opt_file)
    print(f'[mrnet] project root: {root}', file=sys.stderr)
    os.chdir(root)
    return root


def _checked_parse_options(prog):
    """BasicSR's ``parse_options`` followed by ``checks.check_options``; a problem exits with its message."""
    from basicsr.utils.options import parse_options

    def parse(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train=is_train)
        try:
            checks.check_options(opt)
        except checks.CheckError as e:
            raise SystemExit(f'{prog}: {args.opt}: {e}') from None
        return opt, args

    return parse


def train(argv=None):
    """``basicsr.train.train_pipeline`` with the plugin's fixes and checks; experiments land in
    ``<root>/experiments``."""
    root = _prepare_argv(argv, 'mrnet train')
    import basicsr.train
    with compat.pipeline_fixes([(basicsr.train, 'parse_options', _checked_parse_options('mrnet train'))]):
        basicsr.train.train_pipeline(root)


def test(argv=None):
    """``basicsr.test.test_pipeline`` with the plugin's checks; results land in ``<root>/results``."""
    root = _prepare_argv(argv, 'mrnet test')
    import basicsr.test
    from mrnet_arch.core.test_memory import bounded_build_model  # MRNet forwards tiled within the memory budget
    with compat.pipeline_fixes([(basicsr.test, 'parse_options', _checked_parse_options('mrnet test')),
                                (basicsr.test, 'build_model', bounded_build_model(basicsr.test.build_model))]):
        basicsr.test.test_pipeline(root)
