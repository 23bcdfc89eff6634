"""``mrnet prepare``: turn DIV2K and benchmark folders into what BasicSR's loaders read, in Python.

Four subcommands::

    mrnet prepare div2k --hr DIR [--lr-root DIR] --output datasets/DIV2K --scales 2 3 4 [--workers N]
    mrnet prepare benchmark --input DIR --output DIR --scales 2 3 4 [--workers N]
    mrnet prepare photos [--source skimage|debian|all] --output datasets/photos_bench [--hr-only]
    mrnet prepare verify PATH [PATH ...]

``div2k`` cuts HR sub-images and the matching LR ones and packs each folder into an LMDB; ``benchmark``
writes BasicSR's Set5 layout (``GTmod12/`` + ``LRbicx{s}/``); ``photos`` builds a real-photo training set
(LMDBs) and held-out set from scikit-image's photos, the Debian photo set or both; ``verify`` reads every key of
LMDBs and every file of image folders and lists the bad ones (exit status 1 when any is bad). The work is done by
the modules of ``mrnet_arch.dataprep`` (``prepare``, ``lmdb_store``, ``photo_sets``, ``debian_photos`` and
``store_check``; their docstrings have the details); this module parses the arguments.

Paths given on the command line are relative to the working directory, as in any shell tool; an ``--output``
(and ``--cache``) left out is the default under the project root, where the shipped option files read
(``mrnet_arch.commandline.cli_paths``).
"""
import argparse
import json
import os
import sys
from os import path as osp

from mrnet_arch.commandline.cli_paths import output_or_default
from mrnet_arch.commandline.optional import require
from mrnet_arch.dataprep import debian_photos, photo_sets, store_check
from mrnet_arch.dataprep.lmdb_store import CODECS, DEFAULT_CODEC
from mrnet_arch.dataprep.prepare import prepare_benchmark, prepare_div2k
from mrnet_arch.errors import InputError

DEFAULT_OUTPUTS = {'div2k': 'datasets/DIV2K', 'photos': 'datasets/photos_bench'}
DEFAULT_CACHE = 'datasets/debian_cache'
RELATIVE = 'relative to the working directory'


def build_parser():
    parser = argparse.ArgumentParser(prog='mrnet prepare', description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='dataset', required=True, metavar='{div2k,benchmark,photos,verify}')
    default_workers = min(8, os.cpu_count() or 1)
    p = sub.add_parser('div2k', help='DIV2K sub-images + LMDBs for training')
    p.add_argument('--hr', required=True, help='folder of HR images, e.g. DIV2K/DIV2K_train_HR')
    p.add_argument('--lr-root', help='folder holding DIV2K_train_LR_bicubic/X{s} (official LR); '
                   'omitted: LR generated with MATLAB bicubic')
    p.add_argument('--output', default=None,
                   help=f'output folder, {RELATIVE} (default: datasets/DIV2K under the project root, where the '
                   'option files read)')
    p.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4], help='default: 2 3 4')
    p.add_argument('--workers', type=int, default=default_workers, help=f'processes (default: {default_workers})')
    p.add_argument('--crop-size', type=int, default=480, help='HR tile size (default: 480)')
    p.add_argument('--step', type=int, default=240, help='HR tile step (default: 240)')
    p.add_argument('--lmdb-codec', choices=sorted(CODECS), default=DEFAULT_CODEC,
                   help='format of the LMDB values: bmp (decodes fastest; default), png0 (PNG without compression) '
                   'or png (PNG level 1, as BasicSR\'s make_lmdb_from_imgs: about half the size of bmp on the '
                   'photos measured, much slower to decode)')
    p = sub.add_parser('benchmark', help='GTmod12 + LRbicx{s} of a benchmark (Set5, Set14, B100, Urban100, Manga109)')
    p.add_argument('--input', required=True, help='folder of HR images')
    p.add_argument('--output', required=True, help=f'output folder, e.g. datasets/Set5, {RELATIVE}')
    p.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4], help='default: 2 3 4')
    p.add_argument('--workers', type=int, default=default_workers, help=f'processes (default: {default_workers})')
    _add_photos_parser(sub, default_workers)
    p = sub.add_parser('verify', help='read every key of LMDBs and every file of image folders; list the bad ones')
    p.add_argument('paths', nargs='+', metavar='PATH', help='an LMDB folder (.lmdb) or a folder of images')
    return parser


def _verify(paths):
    """``mrnet prepare verify``: one summary line per store, then its bad keys or files; 1 when any is bad."""
    bad = 0
    for path in paths:
        try:
            report = store_check.verify(path)
        except FileNotFoundError as e:
            print(f'mrnet prepare verify: {e}', file=sys.stderr)
            bad += 1
            continue
        unit = 'keys' if report.kind == 'lmdb' else 'files'
        if report.problems:
            bad += 1
            print(f'[prepare verify] {path}: {len(report.problems)} bad of {report.checked} {unit}:')
            for problem in report.problems:
                print(f'  {problem}')
        else:
            print(f'[prepare verify] {path}: {report.checked} {unit}, all good')
    return 1 if bad else 0


def _add_photos_parser(sub, default_workers):
    p = sub.add_parser('photos', help='a real-photo training set (LMDBs) and held-out set (Set5 layout)')
    p.add_argument('--source', choices=photo_sets.SOURCES, default='skimage',
                   help="skimage: scikit-image's photos (no download); debian: the Debian photo set; all: both")
    p.add_argument('--output', default=None,
                   help=f'output folder, {RELATIVE} (default: datasets/photos_bench under the project root)')
    p.add_argument('--scale', type=int, default=2, help='default: 2')
    p.add_argument('--workers', type=int, default=default_workers, help=f'processes (default: {default_workers})')
    p.add_argument('--crop-size', type=int, default=192, help='HR tile size of the training LMDBs (default: 192)')
    p.add_argument('--step', type=int, default=96, help='HR tile step (default: 96)')
    p.add_argument('--lmdb-codec', choices=sorted(CODECS), default=DEFAULT_CODEC,
                   help='format of the LMDB values, as for div2k (default: bmp)')
    d = p.add_argument_group('--source debian or all')
    d.add_argument('--manifest', default=debian_photos.DEFAULT_MANIFEST,
                   help='the photo list (default: the one shipped in mrnet_arch/photo_data/)')
    d.add_argument('--cache', default=None,
                   help=f'downloaded .debs and extracted originals, {RELATIVE} (default: {DEFAULT_CACHE} under the '
                   'project root)')
    d.add_argument('--max-side', type=int, default=1024, help='HR long side at most (MATLAB bicubic); 0: keep')
    d.add_argument('--packages', nargs='+', default=None, help='only these packages')
    d.add_argument('--skip-packages', nargs='*', default=list(debian_photos.DEFAULT_SKIP))
    d.add_argument('--limit-packages', type=int, default=None, help='the first N packages (by name)')
    d.add_argument('--hr-format', choices=sorted(debian_photos.HR_FORMATS), default='webp',
                   help='lossless format of the HR photos (default: webp)')
    d.add_argument('--hr-only', action='store_true',
                   help='write the HR photos and provenance only (a folder to copy to a machine without network)')


def _photos(args):
    debian = {}
    if args.source != 'skimage':
        debian = dict(manifest=args.manifest, cache=args.cache, packages=args.packages, skip=args.skip_packages,
                      limit=args.limit_packages, max_side=args.max_side, hr_format=args.hr_format)
        if not osp.isfile(args.manifest):
            raise photo_sets.PhotoSetError(f'--manifest {args.manifest}: no such file (a TSV of file, width, height, '
                                           'MP, package, licence)')
    if args.max_side < 0 or args.crop_size <= 0 or args.step <= 0:
        raise photo_sets.PhotoSetError(f'--max-side ({args.max_side}) must be >= 0, --crop-size ({args.crop_size}) '
                                       f'and --step ({args.step}) positive')
    result = photo_sets.build(args.output, args.scale, crop_size=args.crop_size, step=args.step,
                              workers=args.workers, source=args.source, hr_only=args.hr_only,
                              lmdb_codec=args.lmdb_codec, **debian)
    print(json.dumps(result, indent=1))


def resolve_paths(args):
    """Make the output paths of parsed options absolute: those given against the working directory, those left
    out (``--output`` of div2k and photos, ``--cache``) as their defaults under the project root."""
    args.output = output_or_default(args.output, DEFAULT_OUTPUTS.get(args.dataset, ''))
    if args.dataset == 'photos':
        args.cache = output_or_default(args.cache, DEFAULT_CACHE)
    return args


def main(argv=None):
    """``mrnet prepare``; returns 0 on success (``verify``: 1 when a store has a bad key or file). Bad input or data
    raises ``InputError`` (``PrepareError``, ``PhotoSetError``), a failed download ``FetchError``, a full disk
    ``DiskFullError``: ``mrnet_arch.cli`` turns them into a message naming the file and exit status 2 or 1."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.dataset == 'verify':
        return _verify(args.paths)
    scales = args.scales if args.dataset != 'photos' else [args.scale]
    if any(s < 1 for s in scales):
        raise InputError(f'--scale(s) must be positive, got {scales}')
    if args.dataset == 'photos' and args.source != 'debian':  # skimage and all use scikit-image's photos
        require(['skimage'], 'the photos subcommand')
    resolve_paths(args)
    if args.dataset == 'div2k':
        paths = prepare_div2k(args.hr, args.output, args.scales, args.lr_root, args.workers, args.crop_size,
                              args.step, lmdb_codec=args.lmdb_codec)
        for _, lmdb_path in paths.values():
            print(f'[prepare div2k] {lmdb_path}')
    elif args.dataset == 'benchmark':
        folders = prepare_benchmark(args.input, args.output, args.scales, args.workers)
        for folder in folders.values():
            print(f'[prepare benchmark] {folder}')
    else:
        _photos(args)
    return 0
