"""``mrnet export``: write weights as safetensors (with the arch config), as an ONNX model or as a Hugging Face
Hub model repository.

- safetensors: the full network's state dict (all scales of a MultiScaleMRNet); the metadata holds
  ``format: pt`` and ``mrnet_config``, the arch config as JSON (BasicSR ``network_g`` options), which
  ``mrnet_arch.storage.weights.load_model`` reads back (it also settles what the tensors cannot tell, such as
  'baseline' versus 'residual'). ``--scale`` sets the default scale of a MultiScaleMRNet.
- ONNX: one scale (``--scale``, default the weights' first), input ``input`` [N, C, H, W] float32 in
  [0, 1], output ``output`` [N, C, H*s, W*s], batch, height and width dynamic. Exported with the
  TorchScript-based exporter (``dynamo=False``), which handles the model's Python loop over the
  recursions by unrolling it.
- hf: ``--output`` is a folder, written as a Hub model repository (``mrnet_arch.publishing.hf_repo``):
  ``model.safetensors`` (as above), ``config.json`` and ``README.md``, the model card with the Hub's metadata
  (licence, ``pipeline_tag: image-to-image``, tags, ``model-index`` from ``--results``). The licence comes from
  ``--license`` or the weights' provenance. ``Upscaler.from_pretrained`` loads the folder or the uploaded repo.
"""
import argparse
import io
import os
import sys
import warnings

import torch
import yaml

from mrnet_arch.commandline.arguments import add_weights_arguments
from mrnet_arch.commandline.cli_paths import same_file
from mrnet_arch.commandline.optional import require
from mrnet_arch.errors import InputError
from mrnet_arch.publishing.hf_repo import REPO_FILES, write_repo
from mrnet_arch.publishing.model_card import read_results
from mrnet_arch.publishing.provenance import read_provenance
from mrnet_arch.storage.files import write_bytes
from mrnet_arch.storage.weights import load_model, save_safetensors

DEFAULT_OPSET = 17


class _FixedScale(torch.nn.Module):
    """A MultiScaleMRNet at one scale, with a one-argument forward (for tracing)."""

    def __init__(self, net, scale):
        super().__init__()
        self.net, self.scale = net, int(scale)

    def forward(self, x):
        return self.net(x, scale=self.scale)


def export_onnx(net, config, output, opset=DEFAULT_OPSET):
    """Export ``net`` at ``config['upscale']`` to ONNX with dynamic batch, height and width; the file is written
    once the export is complete (``storage.files.write_bytes``), so a failed export leaves no file."""
    net = net.cpu().float().eval()
    if config['type'] == 'MultiScaleMRNet':
        net = _FixedScale(net, config['upscale'])
    dummy = torch.rand(1, config['num_in_ch'], 16, 16)
    buffer = io.BytesIO()  # then written atomically: a full disk leaves no cut-short model
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', (DeprecationWarning, torch.jit.TracerWarning))
        torch.onnx.export(
            net, (dummy, ),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=['input'],
            output_names=['output'],
            dynamic_axes={
                'input': {0: 'batch', 2: 'height', 3: 'width'},
                'output': {0: 'batch', 2: 'height_out', 3: 'width_out'}
            })
    write_bytes(output, buffer.getvalue())


def build_parser():
    parser = argparse.ArgumentParser(prog='mrnet export', description=__doc__.split('\n\n')[0])
    add_weights_arguments(parser)
    parser.add_argument('--format', required=True, choices=('safetensors', 'onnx', 'hf'),
                        help='hf: a Hugging Face Hub model repository folder')
    parser.add_argument('--output', required=True, help='output file (hf: output folder), relative to the working '
                        'directory (never the --weights file)')
    parser.add_argument('--scale', type=int,
                        help='ONNX: the scale to export; safetensors: default scale of a MultiScaleMRNet')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file (hf: the '
                        'repository files in an existing folder)')
    parser.add_argument('--results', help='hf: test results for the card and its model-index (JSON or a BasicSR '
                        'log, as mrnet card reads them)')
    parser.add_argument('--options', help='hf: training option file for the card (default: found beside the weights)')
    parser.add_argument('--license', help="hf: the weights' licence, an SPDX id such as MIT (default: their "
                        'provenance\'s)')
    return parser


def check_hf_output(args):
    """Raise ``InputError`` when the hf repository cannot be written as asked (before anything is)."""
    for option, path in (('--results', args.results), ('--options', args.options)):
        if path and not os.path.isfile(path):
            raise InputError(f'{option} {path}: no such file')
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise InputError(f'--output {args.output} is a file; --format hf writes a folder')
    existing = [f for f in REPO_FILES if os.path.exists(os.path.join(args.output, f))]
    if existing and not args.overwrite:
        raise InputError(f'--output {args.output} already holds {", ".join(existing)}: pass --overwrite to replace '
                         'them')


def check_other_output(args):
    """Raise ``InputError`` when the output file cannot be written as asked (before anything is)."""
    hf_only = [o for o, v in (('--results', args.results), ('--options', args.options), ('--license', args.license))
               if v]
    if hf_only:
        raise InputError(f'{", ".join(hf_only)}: only for --format hf')
    if same_file(args.output, args.weights):
        raise InputError(f'--output {args.output} is the weight file itself: inputs are never overwritten, '
                         'choose another name')
    if os.path.isdir(args.output):
        raise InputError(f'--output {args.output} is a folder: give the output file')
    if os.path.exists(args.output) and not args.overwrite:
        raise InputError(f'--output {args.output} exists: pass --overwrite to replace it')


def main(argv=None):
    """Run ``mrnet export``; returns 0 on success. Bad input raises ``InputError`` (or ``WeightsError``), a full
    disk ``DiskFullError``: ``mrnet_arch.cli`` turns them into a message and exit status 2 or 1."""
    args = build_parser().parse_args(argv)
    if args.format == 'onnx':
        require(['onnx'], '--format onnx')  # before the weights are read
    (check_hf_output if args.format == 'hf' else check_other_output)(args)
    net, config = load_model(args.weights, scale=args.scale, prefer_ema=not args.no_ema)
    if args.format == 'hf':
        try:  # the provenance and --results are parsed now, so that a bad file stops before anything is written
            license = args.license or read_provenance(args.weights, config['upscale']).get('license')
            if args.results:
                read_results(args.results)
        except (ValueError, yaml.YAMLError) as err:
            raise InputError(str(err)) from err
        if not license:
            raise InputError(f'{args.weights}: its provenance names no licence; pass --license (e.g. MIT)')
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    if args.format == 'hf':
        for path in write_repo(net, config, args.weights, args.output, license, args.results, args.options,
                               prefer_ema=not args.no_ema):
            print(f'mrnet export: wrote {path}', file=sys.stderr)
    elif args.format == 'safetensors':
        save_safetensors(net, config, args.output)
    else:
        export_onnx(net, config, args.output, args.opset)
    print(f'mrnet export: wrote {args.output} ({config["type"]}, x{config["upscale"]}, {args.format})',
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    from mrnet_arch.cli import run_command
    sys.exit(run_command('mrnet export', main, None))
