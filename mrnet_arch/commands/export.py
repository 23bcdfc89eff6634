"""``mrnet export``: write weights as safetensors (with the arch config) or as an ONNX model.

- safetensors: the full network's state dict (all scales of a MultiScaleMRNet); the metadata holds
  ``format: pt`` and ``mrnet_config``, the arch config as JSON (BasicSR ``network_g`` options), which
  ``mrnet_arch.core.weights.load_model`` reads back (it also settles what the tensors cannot tell, such as
  'baseline' versus 'residual'). ``--scale`` sets the default scale of a MultiScaleMRNet.
- ONNX: one scale (``--scale``, default the weights' first), input ``input`` [N, C, H, W] float32 in
  [0, 1], output ``output`` [N, C, H*s, W*s], batch, height and width dynamic. Exported with the
  TorchScript-based exporter (``dynamo=False``), which handles the model's Python loop over the
  recursions by unrolling it.
"""
import argparse
import io
import os
import sys
import warnings

import torch

from mrnet_arch.core.arguments import add_weights_arguments
from mrnet_arch.core.files import DiskFullError, write_bytes
from mrnet_arch.core.weights import WeightsError, load_model, save_safetensors

DEFAULT_OPSET = 17


class _FixedScale(torch.nn.Module):
    """A MultiScaleMRNet at one scale, with a one-argument forward (for tracing)."""

    def __init__(self, net, scale):
        super().__init__()
        self.net, self.scale = net, int(scale)

    def forward(self, x):
        return self.net(x, scale=self.scale)


def export_onnx(net, config, output, opset=DEFAULT_OPSET):
    """Export ``net`` at ``config['upscale']`` to ONNX with dynamic batch, height and width."""
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
    parser.add_argument('--format', required=True, choices=('safetensors', 'onnx'))
    parser.add_argument('--output', required=True, help='output file')
    parser.add_argument('--scale', type=int,
                        help='ONNX: the scale to export; safetensors: default scale of a MultiScaleMRNet')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    return parser


def main(argv=None):
    """Run ``mrnet export``; returns 0 on success, 2 on errors, 1 when the disk is full."""
    args = build_parser().parse_args(argv)
    try:
        if os.path.exists(args.output):
            if os.path.realpath(args.output) == os.path.realpath(args.weights):
                raise ValueError(f'--output {args.output} is the weight file itself')
            if not args.overwrite:
                raise ValueError(f'--output {args.output} exists: pass --overwrite to replace it')
        net, config = load_model(args.weights, scale=args.scale, prefer_ema=not args.no_ema)
    except (ValueError, WeightsError) as err:
        print(f'mrnet export: error: {err}', file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    try:
        if args.format == 'safetensors':
            save_safetensors(net, config, args.output)
        else:
            export_onnx(net, config, args.output, args.opset)
    except ImportError as err:
        print(f'mrnet export: error: ONNX export needs the onnx package (pip install "mrnet_arch[export]"): '
              f'{err}', file=sys.stderr)
        return 2
    except DiskFullError as err:
        print(f'mrnet export: error: {err}', file=sys.stderr)
        return 1
    print(f'mrnet export: wrote {args.output} ({config["type"]}, x{config["upscale"]}, {args.format})',
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
