"""The ``mrnet`` command (also ``python -m mrnet_arch``): one subcommand per task.

Each subcommand lives in its own module with a ``main(argv)`` function, imported only when used, so a command
loads its own dependencies only when it runs. ``mrnet --help`` still imports torch and basicsr: this module is
part of the ``mrnet_arch`` package, and importing any part of it runs ``mrnet_arch/__init__.py``, which
registers the plugin's classes in BasicSR's registries.

Errors end every command the same way, here (``run_command``): the plugin's errors (``mrnet_arch.errors``) print
``mrnet <command>: error: <message>`` on stderr, with no traceback, and exit with 2 for bad input or usage
(``InputError``) or 1 for a failed run (``RunError``); argparse's usage errors stay argparse's (status 2).
"""
import argparse
import importlib
import sys

from mrnet_arch.errors import exit_status

COMMANDS = {
    'train': ('mrnet_arch.commands.pipelines:train', "train through BasicSR's train pipeline (args: -opt YML "
              '[--auto_resume] [--launcher pytorch|slurm] [--debug] [--force_yml k=v] [--allow-unknown-options])'),
    'test': ('mrnet_arch.commands.pipelines:test', "evaluate through BasicSR's test pipeline (args: -opt YML)"),
    'demo': ('mrnet_arch.commands.demo:main', 'train MRNet x2 on real photos, then score and show it against bicubic'),
    'prepare': ('mrnet_arch.commands.prepare:main', 'prepare DIV2K (sub-images + LMDB) or a benchmark folder; verify '
                'LMDBs and image folders'),
    'infer': ('mrnet_arch.commands.infer:main', 'super-resolve your own images with trained weights'),
    'export': ('mrnet_arch.commands.export:main', 'export weights to safetensors or ONNX'),
    'card': ('mrnet_arch.commands.card:main', 'write a Markdown model card for a weight file'),
    'bench': ('mrnet_arch.commands.bench.command:main', 'compare models: params, MACs, latency, memory, PSNR/SSIM'),
    'compare': ('mrnet_arch.commands.compare:main', 'SR outputs of several models side by side: figures, an HTML page '
                'and the scores of bench'),
    'contribute': ('mrnet_arch.commands.contribute:main', 'write MRNet into a BasicSR checkout (archs, model, dataset, '
                   'options, model zoo), a spandrel checkout (architecture, tests) or a ComfyUI checkout (custom '
                   'node)'),
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    width = max(map(len, COMMANDS))
    parser = argparse.ArgumentParser(
        prog='mrnet', formatter_class=argparse.RawDescriptionHelpFormatter,
        description='MRNet super-resolution for BasicSR. "mrnet COMMAND --help" for details.',
        epilog='commands:\n' + '\n'.join(f'  {k:<{width}}  {v[1]}' for k, v in COMMANDS.items()))
    parser.add_argument('command', choices=sorted(COMMANDS), metavar='COMMAND', help='one of the commands below')
    if not argv or argv[0] in ('-h', '--help'):
        parser.print_help()
        return 0 if argv else 2
    args = parser.parse_args(argv[:1])
    module, func = COMMANDS[args.command][0].split(':')
    return run_command(f'mrnet {args.command}', getattr(importlib.import_module(module), func), argv[1:])


def run_command(prog, func, argv):
    """Run a command's ``main``; the one place that maps the plugin's errors to a message and an exit status.

    Args:
        prog (str): The command as typed (``'mrnet infer'``); starts the message.
        func (Callable): The command's ``main(argv)``.
        argv (list[str] | None): Its arguments.

    Returns:
        int: ``func``'s status (0 when it returns no int); for one of the plugin's errors (``InputError``,
        ``RunError``, a registered drop-in error), 2 or 1 after ``<prog>: error: <message>`` on stderr. Other
        exceptions propagate with their traceback.
    """
    try:
        result = func(argv)
    except Exception as err:  # noqa: BLE001  (re-raised unless it is one of the plugin's)
        status = exit_status(err)
        if status is None:
            raise
        print(f'{prog}: error: {err}', file=sys.stderr)
        return status
    return result if isinstance(result, int) else 0


if __name__ == '__main__':
    sys.exit(main())
