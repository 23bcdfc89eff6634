"""``mrnet prepare``: turn DIV2K and benchmark folders into what BasicSR's loaders read, in Python.

Two subcommands::

    mrnet prepare div2k --hr DIR [--lr-root DIR] --output datasets/DIV2K --scales 2 3 4 [--workers N]
    mrnet prepare benchmark --input DIR --output DIR --scales 2 3 4 [--workers N]

``div2k`` cuts HR sub-images and the matching LR ones and packs each folder into an LMDB; ``benchmark``
writes BasicSR's Set5 layout (``GTmod12/`` + ``LRbicx{s}/``). The work is done by the library
``mrnet_arch.core.prepare`` (its docstring has the details); this module parses the arguments.
"""
import argparse
import os
import sys
from os import path as osp

from mrnet_arch.core.lmdb_store import CODECS, DEFAULT_CODEC
from mrnet_arch.core.prepare import PrepareError, prepare_benchmark, prepare_div2k
from mrnet_arch.project import project_root


def build_parser():
    parser = argparse.ArgumentParser(prog='mrnet prepare', description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='dataset', required=True, metavar='{div2k,benchmark}')
    default_workers = min(8, os.cpu_count() or 1)
    p = sub.add_parser('div2k', help='DIV2K sub-images + LMDBs for training')
    p.add_argument('--hr', required=True, help='folder of HR images, e.g. DIV2K/DIV2K_train_HR')
    p.add_argument('--lr-root', help='folder holding DIV2K_train_LR_bicubic/X{s} (official LR); '
                   'omitted: LR generated with MATLAB bicubic')
    p.add_argument('--output', default='datasets/DIV2K',
                   help='output folder; a relative one is under the project root, where the option files '
                   'read (default: datasets/DIV2K)')
    p.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4], help='default: 2 3 4')
    p.add_argument('--workers', type=int, default=default_workers, help=f'processes (default: {default_workers})')
    p.add_argument('--crop-size', type=int, default=480, help='HR tile size (default: 480)')
    p.add_argument('--step', type=int, default=240, help='HR tile step (default: 240)')
    p.add_argument('--lmdb-codec', choices=sorted(CODECS), default=DEFAULT_CODEC,
                   help='format of the LMDB values: bmp (decodes fastest; default), png0 (PNG without compression) '
                   'or png (PNG level 1, as BasicSR\'s make_lmdb_from_imgs; about 0.6 times the size of bmp)')
    p = sub.add_parser('benchmark', help='GTmod12 + LRbicx{s} of a benchmark (Set5, Set14, B100, Urban100, Manga109)')
    p.add_argument('--input', required=True, help='folder of HR images')
    p.add_argument('--output', required=True,
                   help='output folder, e.g. datasets/Set5; a relative one is under the project root')
    p.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4], help='default: 2 3 4')
    p.add_argument('--workers', type=int, default=default_workers, help=f'processes (default: {default_workers})')
    return parser


def main(argv=None):
    """``mrnet prepare``; returns 0 on success, 1 with a message naming the file on a data error."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if any(s < 1 for s in args.scales):
        raise SystemExit(f'mrnet prepare: --scales must be positive, got {args.scales}')
    args.output = osp.join(project_root(), args.output)  # an absolute --output stays as it is
    try:
        if args.dataset == 'div2k':
            paths = prepare_div2k(args.hr, args.output, args.scales, args.lr_root, args.workers, args.crop_size,
                                  args.step, lmdb_codec=args.lmdb_codec)
            for _, lmdb_path in paths.values():
                print(f'[prepare div2k] {lmdb_path}')
        else:
            folders = prepare_benchmark(args.input, args.output, args.scales, args.workers)
            for folder in folders.values():
                print(f'[prepare benchmark] {folder}')
    except PrepareError as e:
        print(f'mrnet prepare: error: {e}', file=sys.stderr)
        return 1
    return 0
