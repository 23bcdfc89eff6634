"""``mrnet contribute basicsr|spandrel|comfyui DIR``: write MRNet into a checkout of a host project as its pull
request has it (``basicsr.py``: BasicSR's model zoo; ``spandrel.py``: a spandrel architecture; ``comfyui.py``: a
ComfyUI custom node; ``common.py``: the shared writing, idempotent and never replacing a differing file without
``--overwrite``)."""
import argparse
import sys

from .common import ContributeError


def build_parser():
    parser = argparse.ArgumentParser(
        prog='mrnet contribute', description='Write MRNet into a checkout of BasicSR (drop-in arch, model and dataset '
        'files, option files, a docs/ModelZoo.md section and, with --weights, pretrained weights) or of spandrel '
        '(an architecture, its registration, tests, a test model and snapshot images, a README row) or of ComfyUI '
        '(a custom node that adds MRNet to spandrel for the stock upscale-model nodes).')
    parser.add_argument('target', choices=['basicsr', 'spandrel', 'comfyui'], help='the host project of the checkout')
    parser.add_argument('dir', help='the checkout: BasicSR (holds basicsr/archs, basicsr/models, basicsr/data, '
                        'basicsr/train.py), spandrel (holds libs/spandrel/spandrel/architectures, tests/util.py) or '
                        'ComfyUI (holds nodes.py, custom_nodes)')
    parser.add_argument('--weights', help='basicsr: pretrained weights to add under experiments/pretrained_models/')
    parser.add_argument('--test-options', help='basicsr: test option file (checkout path, e.g. '
                        'options/test/MRNet/demo/test_MRNet_demo_x2.yml) whose network fits --weights; default: '
                        "the shipped test file of the weights' scale")
    parser.add_argument('--no-ema', action='store_true', help="basicsr: use a checkpoint's params, not params_ema")
    parser.add_argument('--weights-url', help='spandrel: the public URL of the demo weights, for the inference '
                        'test to download in CI (tests/models/ is git-ignored there)')
    parser.add_argument('--name', default=None, help='comfyui: the custom node\'s folder under custom_nodes/ and '
                        'its registry name (default: ComfyUI-MRNet)')
    parser.add_argument('--publisher-id', help='comfyui: your publisher id on registry.comfy.org, for '
                        'pyproject.toml\'s [tool.comfy] PublisherId (default: empty, to fill in before publishing)')
    parser.add_argument('--icon', help='comfyui: the URL of the node\'s icon, for [tool.comfy] Icon (default: empty)')
    parser.add_argument('--overwrite', action='store_true', help='replace files that exist with other contents')
    parser.add_argument('--pr-body', metavar='FILE', help='also write the pull-request description (Markdown) here')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.target == 'basicsr' and args.weights_url:
        print('mrnet contribute: --weights-url is for spandrel; for basicsr use --weights', file=sys.stderr)
        return 2
    if args.target == 'spandrel' and (args.weights or args.test_options or args.no_ema):
        print('mrnet contribute: --weights, --test-options and --no-ema are for basicsr', file=sys.stderr)
        return 2
    comfyui_only = [o for o, v in (('--name', args.name), ('--publisher-id', args.publisher_id),
                                   ('--icon', args.icon)) if v is not None]
    if args.target != 'comfyui' and comfyui_only:
        print(f'mrnet contribute: {", ".join(comfyui_only)} are for comfyui', file=sys.stderr)
        return 2
    if args.target == 'comfyui':
        other = [o for o, v in (('--weights', args.weights), ('--test-options', args.test_options),
                                ('--no-ema', args.no_ema), ('--weights-url', args.weights_url),
                                ('--pr-body', args.pr_body)) if v]
        if other:
            print(f'mrnet contribute: {", ".join(other)} are not for comfyui (a custom node is its own '
                  'repository: no pull request, no weights)', file=sys.stderr)
            return 2
    try:
        if args.target == 'basicsr':
            from . import basicsr as host
        elif args.target == 'spandrel':
            from . import spandrel as host
        else:
            from . import comfyui as host
        return host.run(args)
    except ContributeError as e:
        print(f'mrnet contribute: {e}', file=sys.stderr)
        return 2
