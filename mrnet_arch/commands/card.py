"""``mrnet card``: a Markdown model card for a weight file, for model-zoo submissions.

What the card holds and where its parts come from: ``mrnet_arch.publishing.model_card``.
"""
import argparse
import sys
from os import path as osp

import yaml

from mrnet_arch.commandline.arguments import add_weights_arguments
from mrnet_arch.commandline.cli_paths import overwritten_inputs
from mrnet_arch.errors import InputError
from mrnet_arch.publishing.model_card import make_card
from mrnet_arch.storage.files import write_text


def build_parser():
    parser = argparse.ArgumentParser(prog='mrnet card', description=__doc__.split('\n\n')[0])
    add_weights_arguments(parser)
    parser.add_argument('--results', help='test results: JSON {"Set5": {"psnr": .., "ssim": ..}, ...} or a BasicSR log')
    parser.add_argument('--options', help="training option file (default: the experiment's copy beside the weights)")
    parser.add_argument('--output', help='Markdown file to write, relative to the working directory, never one of '
                        'the input files (default: standard output)')
    return parser


def main(argv=None):
    """Run ``mrnet card``; returns 0 on success. Bad input raises ``InputError`` (or ``WeightsError``):
    ``mrnet_arch.cli`` turns it into a message and exit status 2."""
    args = build_parser().parse_args(argv)
    for option, path in (('--results', args.results), ('--options', args.options)):
        if path and not osp.isfile(path):
            raise InputError(f'{option} {path}: no such file')
    inputs = [p for p in (args.weights, args.results, args.options) if p]
    if args.output and overwritten_inputs([args.output], inputs):
        raise InputError(f'--output {args.output} is an input file: inputs are never overwritten, choose another '
                         'name')
    try:
        card = make_card(args.weights, args.results, args.options, prefer_ema=not args.no_ema)
    except (ValueError, yaml.YAMLError) as err:  # weights, --results or --options that cannot be read
        raise InputError(str(err)) from err
    if args.output:
        write_text(args.output, card)
        print(f'mrnet card: wrote {args.output}', file=sys.stderr)
    else:
        sys.stdout.write(card)
    return 0


if __name__ == '__main__':
    from mrnet_arch.cli import run_command
    sys.exit(run_command('mrnet card', main, None))
