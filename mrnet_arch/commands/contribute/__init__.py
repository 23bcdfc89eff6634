"""``mrnet contribute basicsr|spandrel DIR``: write MRNet into a checkout of a host project as its pull request has
it (``basicsr.py``: BasicSR's model zoo; ``spandrel.py``: a spandrel architecture; ``common.py``: the shared
writing, idempotent and never replacing a differing file without ``--overwrite``)."""
import argparse
import sys

from mrnet_arch.core.cli_paths import same_file

from .common import ContributeError


def build_parser():
    parser = argparse.ArgumentParser(
        prog='mrnet contribute', description='Write MRNet into a checkout of BasicSR (drop-in arch, model and dataset '
        'files, option files, a docs/ModelZoo.md section and, with --weights, pretrained weights) or of spandrel '
        '(an architecture, its registration, tests, a test model and snapshot images, a README row).')
    parser.add_argument('target', choices=['basicsr', 'spandrel'], help='the host project of the checkout')
    parser.add_argument('dir', help='the checkout, relative to the working directory: BasicSR (holds basicsr/archs, '
                        'basicsr/models, basicsr/data, basicsr/train.py) or spandrel (holds '
                        'libs/spandrel/spandrel/architectures, tests/util.py)')
    parser.add_argument('--weights', help='basicsr: pretrained weights to add under experiments/pretrained_models/')
    parser.add_argument('--test-options', help='basicsr: the shipped test option file whose network fits --weights, '
                        'by its path in the checkout (options/test/MRNet/demo/test_MRNet_demo_x2.yml) or as a path '
                        "to that file in the checkout; default: the shipped test file of the weights' scale")
    parser.add_argument('--no-ema', action='store_true', help="basicsr: use a checkpoint's params, not params_ema")
    parser.add_argument('--weights-url', help='spandrel: the public URL of the demo weights, for the inference '
                        'test to download in CI (tests/models/ is git-ignored there)')
    parser.add_argument('--overwrite', action='store_true', help='replace files that exist with other contents')
    parser.add_argument('--pr-body', metavar='FILE', help='also write the pull-request description (Markdown) here, '
                        'relative to the working directory (never the --weights file)')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.target == 'basicsr' and args.weights_url:
        print('mrnet contribute: --weights-url is for spandrel; for basicsr use --weights', file=sys.stderr)
        return 2
    if args.target == 'spandrel' and (args.weights or args.test_options or args.no_ema):
        print('mrnet contribute: --weights, --test-options and --no-ema are for basicsr', file=sys.stderr)
        return 2
    if args.pr_body and args.weights and same_file(args.pr_body, args.weights):
        print(f'mrnet contribute: --pr-body {args.pr_body} is the --weights file: inputs are never overwritten, '
              'choose another name', file=sys.stderr)
        return 2
    try:
        if args.target == 'basicsr':
            from . import basicsr as host
        else:
            from . import spandrel as host
        return host.run(args)
    except ContributeError as e:
        print(f'mrnet contribute: {e}', file=sys.stderr)
        return 2
