"""``mrnet contribute basicsr|spandrel|openmodeldb|comfyui DIR``: write MRNet into a checkout of a host project as
its pull request has it (``basicsr.py``: BasicSR's model zoo; ``spandrel.py``: a spandrel architecture;
``openmodeldb.py``: an OpenModelDB model entry; ``comfyui.py``: a ComfyUI custom node; ``common.py``: the shared
writing, idempotent and never replacing a differing file without ``--overwrite``)."""
import argparse

from mrnet_arch.commandline.cli_paths import same_file

from .common import ContributeError

TARGETS = ('basicsr', 'spandrel', 'openmodeldb', 'comfyui')
DEFAULT_TAGS = ('photo', )  # openmodeldb
ENTRY_OPTIONS = ('author', 'license', 'dataset', 'dataset_size', 'tags', 'date', 'scale')


def build_parser():
    parser = argparse.ArgumentParser(
        prog='mrnet contribute', description='Write MRNet into a checkout of BasicSR (drop-in arch, model and dataset '
        'files, option files, a docs/ModelZoo.md section and, with --weights, pretrained weights) or of spandrel '
        '(an architecture, its registration, tests, a test model and snapshot images, a README row) or of '
        'OpenModelDB (a model entry for --weights, with the mrnet architecture, its tag and the author) or of ComfyUI '
        '(a custom node that adds MRNet to spandrel for the stock upscale-model nodes).')
    parser.add_argument('target', choices=list(TARGETS), help='the host project of the checkout')
    parser.add_argument('dir', help='the checkout, relative to the working directory: BasicSR (holds basicsr/archs, '
                        'basicsr/models, basicsr/data, basicsr/train.py), spandrel (holds '
                        'libs/spandrel/spandrel/architectures, tests/util.py), OpenModelDB (holds data/models, '
                        'data/architectures.json, data/tags.json, data/users.json) or ComfyUI (holds nodes.py, '
                        'custom_nodes)')
    parser.add_argument('--weights', help='basicsr: pretrained weights to add under experiments/pretrained_models/; '
                        'openmodeldb: the weights the entry describes')
    parser.add_argument('--test-options', help='basicsr: the shipped test option file whose network fits --weights, '
                        'by its path in the checkout (options/test/MRNet/demo/test_MRNet_demo_x2.yml) or as a path '
                        "to that file in the checkout; default: the shipped test file of the weights' scale")
    parser.add_argument('--no-ema', action='store_true',
                        help="basicsr, openmodeldb: use a checkpoint's params, not params_ema")
    parser.add_argument('--weights-url', help='spandrel: the public URL of the inference test\'s weights (the '
                        'pretrained ones once shipped, else the demo\'s), for CI to download (tests/models/ is '
                        'git-ignored there); openmodeldb: the public URL of --weights (required)')
    parser.add_argument('--name', help='openmodeldb: model name (default: the weight file\'s name), the file is '
                        'data/models/<scale>x-<name>.json; comfyui: the custom node\'s folder under custom_nodes/ '
                        'and its registry name (default: ComfyUI-MRNet)')
    entry = parser.add_argument_group('openmodeldb', 'the entry; defaults from the weights\' provenance '
                                      '(PROVENANCE.md beside them, or the experiment\'s option file)')
    entry.add_argument('--author', help='author name or OpenModelDB user id (default: the LICENSE\'s holder)')
    entry.add_argument('--license', help='SPDX licence of the weights (default: their provenance\'s)')
    entry.add_argument('--dataset', help='training dataset (default: their provenance\'s)')
    entry.add_argument('--dataset-size', type=int, help='number of training images (default: their provenance\'s)')
    entry.add_argument('--tags', nargs='+', help=f'tags of data/tags.json (default: {" ".join(DEFAULT_TAGS)})')
    entry.add_argument('--date', help='publication date yyyy-mm-dd (default: their provenance\'s, else the file\'s)')
    entry.add_argument('--scale', type=int, help='the scale of multi-scale weights (default: their first)')
    comfy = parser.add_argument_group('comfyui')
    comfy.add_argument('--publisher-id', help='your publisher id on registry.comfy.org, for pyproject.toml\'s '
                       '[tool.comfy] PublisherId (default: empty, to fill in before publishing)')
    comfy.add_argument('--icon', help='the URL of the node\'s icon, for [tool.comfy] Icon (default: empty)')
    parser.add_argument('--overwrite', action='store_true', help='replace files that exist with other contents')
    parser.add_argument('--pr-body', metavar='FILE', help='also write the pull-request description (Markdown) here, '
                        'relative to the working directory (never the --weights file)')
    return parser


def main(argv=None):
    """Run ``mrnet contribute``; returns the host's status. Options that do not fit the target, and a checkout,
    weights or file that stop the contribution, raise ``ContributeError`` (an ``InputError``): ``mrnet_arch.cli``
    turns it into a message and exit status 2."""
    args = build_parser().parse_args(argv)
    if args.target == 'basicsr' and args.weights_url:
        raise ContributeError('--weights-url is for spandrel and openmodeldb; for basicsr use --weights')
    if args.target == 'spandrel' and (args.weights or args.test_options or args.no_ema):
        raise ContributeError('--weights, --test-options and --no-ema are for basicsr and openmodeldb')
    if args.target != 'openmodeldb' and any(getattr(args, k) is not None for k in ENTRY_OPTIONS):
        raise ContributeError(f'--{", --".join(k.replace("_", "-") for k in ENTRY_OPTIONS)} are for openmodeldb')
    if args.target == 'openmodeldb' and (args.test_options or args.pr_body):
        raise ContributeError('--test-options and --pr-body are for basicsr and spandrel')
    if args.pr_body and args.weights and same_file(args.pr_body, args.weights):
        raise ContributeError(f'--pr-body {args.pr_body} is the --weights file: inputs are never overwritten, '
                              'choose another name')
    if args.name is not None and args.target not in ('openmodeldb', 'comfyui'):
        raise ContributeError('--name is for openmodeldb and comfyui')
    comfyui_only = [o for o, v in (('--publisher-id', args.publisher_id), ('--icon', args.icon)) if v is not None]
    if args.target != 'comfyui' and comfyui_only:
        raise ContributeError(f'{", ".join(comfyui_only)} are for comfyui')
    if args.target == 'comfyui':
        other = [o for o, v in (('--weights', args.weights), ('--test-options', args.test_options),
                                ('--no-ema', args.no_ema), ('--weights-url', args.weights_url),
                                ('--pr-body', args.pr_body)) if v]
        if other:
            raise ContributeError(f'{", ".join(other)} are not for comfyui (a custom node is its own repository: '
                                  'no pull request, no weights)')
    if args.target == 'basicsr':
        from . import basicsr as host
    elif args.target == 'spandrel':
        from . import spandrel as host
    elif args.target == 'openmodeldb':
        from . import openmodeldb as host
    else:
        from . import comfyui as host
    return host.run(args)
