"""Entry points shared by ``mrnet_arch/train.py``, ``mrnet_arch/test.py`` and the ``mrnet`` command.

BasicSR's pipelines read ``sys.argv`` and resolve relative paths (``datasets/...``) against the working
directory; these wrappers make ``-opt`` absolute, then run the pipeline from the project root
(``mrnet_arch.project.project_root``), so a command gives the same result from any working directory. The
pipeline runs inside ``compat.pipeline_fixes()``, whose changes to basicsr end with the call.
Before BasicSR parses the options, the option file itself is checked (``checks.read_option_file``: YAML
syntax, with the line; ``check_structure``: the keys BasicSR reads without a default; ``check_force_yml``); right
after it parses them (``--force_yml`` applied, ``init_dist`` done for ``--launcher``),
``mrnet_arch.preflight.checks.check_options`` checks every key (unknown ones are errors, or warnings with
``--allow-unknown-options``), the types, networks, weights and dataset files, and ``mrnet train`` takes the
experiment's lock (``commandline/run_lock.py``, rank 0). A problem stops the command with an error of
``mrnet_arch.errors`` naming the option or file (``mrnet_arch.cli`` prints it, exit status 2; 1 for a held lock or
a full disk), before any experiment or results folder is created or renamed.
"""
import argparse
import os
import sys

import mrnet_arch  # noqa: F401  (registration)
from mrnet_arch import compat
from mrnet_arch.commandline import run_lock
from mrnet_arch.errors import InputError
from mrnet_arch.preflight import checks
from mrnet_arch.project import project_root

ALLOW_UNKNOWN = '--allow-unknown-options'


def _prepare_argv(argv, prog):
    argv = list(sys.argv[1:] if argv is None else argv)
    opt_file = None
    for i, arg in enumerate(argv[:-1]):
        if arg == '-opt':
            opt_file = os.path.abspath(argv[i + 1])
            if not os.path.isfile(opt_file):
                raise InputError(f'option file not found: {argv[i + 1]} (looked at {opt_file})')
            argv[i + 1] = opt_file
    sys.argv = [prog] + argv
    root = project_root(opt_file)
    if not os.path.isdir(root):
        raise InputError(f'the project root {root} (from $MRNET_ROOT) is not a folder')
    print(f'[mrnet] project root: {root}', file=sys.stderr)
    os.chdir(root)
    return root


def _option_arguments():
    """``-opt``, ``--force_yml`` and ``--allow-unknown-options`` of ``sys.argv``; the last is removed from it
    (BasicSR's parser does not know it)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    parser.add_argument('--force_yml', nargs='+')
    args, _ = parser.parse_known_args(sys.argv[1:])
    allow = ALLOW_UNKNOWN in sys.argv
    sys.argv = [a for a in sys.argv if a != ALLOW_UNKNOWN]
    return args.opt, args.force_yml, allow


def _checked_parse_options(locks=None):
    """BasicSR's ``parse_options`` between the checks; a problem raises its ``CheckError`` or ``RunLockError``.

    Args:
        locks (list | None): For training: the experiment's lock is appended (rank 0) once the checks pass.
    """
    from basicsr.utils.options import parse_options

    def parse(root_path, is_train=True):
        opt_file, force_yml, allow = _option_arguments()
        try:
            if opt_file is not None:
                raw = checks.read_option_file(opt_file)
                checks.check_structure(raw, is_train)
                checks.check_force_yml(raw, force_yml)
        except checks.CheckError as e:  # the same error, naming the file
            raise type(e)(f'{opt_file}: {e}') from None
        opt, args = parse_options(root_path, is_train=is_train)
        if allow:
            opt['allow_unknown_options'] = True
        try:
            warnings = checks.check_options(opt, allow_unknown=allow)
            if locks is not None and opt.get('rank', 0) == 0:
                locks.append(run_lock.acquire(opt['path']['experiments_root'], opt['name']))
        except (checks.CheckError, run_lock.RunLockError) as e:  # the same error, naming the file
            raise type(e)(f'{args.opt}: {e}') from None
        for warning in warnings if opt.get('rank', 0) == 0 else ():
            print(f'[mrnet] {warning}', file=sys.stderr)
        return opt, args

    return parse


def train(argv=None):
    """``basicsr.train.train_pipeline`` with the plugin's fixes and checks, holding the experiment's lock;
    experiments land in ``<root>/experiments``."""
    root = _prepare_argv(argv, 'mrnet train')
    import basicsr.train
    locks = []
    try:
        with compat.pipeline_fixes([(basicsr.train, 'parse_options', _checked_parse_options(locks))]):
            basicsr.train.train_pipeline(root)
    finally:
        for lock in locks:
            run_lock.release(lock)


def test(argv=None):
    """``basicsr.test.test_pipeline`` with the plugin's checks; results land in ``<root>/results``."""
    root = _prepare_argv(argv, 'mrnet test')
    import basicsr.test
    with compat.pipeline_fixes([(basicsr.test, 'parse_options', _checked_parse_options())]):
        basicsr.test.test_pipeline(root)
