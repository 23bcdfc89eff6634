"""Throughput of the training data path on its own, the earlier path and the current one side by side in one run.

The dataset settings are those of ``options/train_MRNet_x2.yml`` (``datasets: train``: random 96 px HR / 48 px LR
patches, x2, flips and rotations, batch 16, ``dataset_enlarge_ratio`` 100), run as ``mrnet train`` runs them:
``build_dataloader`` with ``EnlargedSampler`` and BasicSR's prefetcher. Four paths, each over the same 480 px
sub-images (DIV2K's layout):

- ``old``: BasicSR's ``PairedImageDataset`` over LMDBs of PNG level 1 (what ``mrnet prepare div2k`` wrote before);
- ``codec``: ``PairedImageDataset`` over BMP LMDBs (what ``mrnet prepare div2k`` writes by default now);
- ``crop``: ``CropFirstPairedImageDataset`` over the PNG level-1 LMDBs;
- ``new``: ``CropFirstPairedImageDataset`` over BMP LMDBs (the shipped option file over the default LMDBs).

For each number of loader workers (``--workers``, default 0 1 2) every path is timed ``--repeats`` times,
interleaved, and the median kept; "per process" divides by the loader processes (the main one for 0 workers).
The main process runs torch and OpenCV with one thread. The LMDBs are read once before timing, so the page
cache holds them, as after a first epoch::

    python benchmarks/loader_throughput.py --workers 0 1 2 --repeats 3 --name loader_cpu_<date>

Data: ``--data DIR`` holding ``paths.json`` (``mrnet prepare photos``); without it, scikit-image's photos are cut
into 480 px sub-images under ``datasets/loader_bench_<size>``. Both LMDB codecs are built from the sub-image
folders beside the LMDBs of ``paths.json``.
"""
import argparse
import json
import math
import os
import os.path as osp
import statistics
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

import mrnet_arch  # noqa: E402,F401  (registration)
from mrnet_arch.measurement.machine import machine_info  # noqa: E402
from mrnet_arch.storage.files import write_json, write_text  # noqa: E402

PATHS = {  # name -> (dataset type, LMDB codec)
    'old': ('PairedImageDataset', 'png'),
    'codec': ('PairedImageDataset', 'bmp'),
    'crop': ('CropFirstPairedImageDataset', 'png'),
    'new': ('CropFirstPairedImageDataset', 'bmp'),
}
STEP_MS = (6, 11)  # GPU step times (batch 16) that docs/performance.md sizes the loader for


def shipped_train_options():
    """``datasets: train`` of ``options/train_MRNet_x2.yml``, as BasicSR's parser reads it."""
    import yaml

    from basicsr.utils.options import ordered_yaml
    with open(osp.join(ROOT, 'options', 'train_MRNet_x2.yml'), encoding='utf-8') as f:
        opt = yaml.load(f, Loader=ordered_yaml()[0])
    train = dict(opt['datasets']['train'])
    train.update(phase='train', scale=opt['scale'])
    return train


def measure(lmdbs, path, workers, batches, warmup):
    """Sub-images per second of wall time, and per second of the main process's CPU time, of one path over
    ``batches`` batches after ``warmup`` batches (start-up left out)."""
    import torch

    from basicsr.data import build_dataloader, build_dataset
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
    dataset_type, codec = PATHS[path]
    opt = shipped_train_options()
    opt.update(type=dataset_type, dataroot_gt=lmdbs[codec][0], dataroot_lq=lmdbs[codec][1], io_backend={'type': 'lmdb'},
               num_worker_per_gpu=workers)
    dataset = build_dataset(opt)
    sampler = EnlargedSampler(dataset, 1, 0, opt['dataset_enlarge_ratio'])
    gpus = 1 if torch.cuda.is_available() else 0
    loader = build_dataloader(dataset, opt, num_gpu=max(gpus, 1), dist=False, sampler=sampler, seed=0)
    prefetcher = CUDAPrefetcher(loader, {'num_gpu': gpus}) if gpus else CPUPrefetcher(loader)
    prefetcher.reset()
    for _ in range(warmup):
        prefetcher.next()
    if gpus:
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    seen = 0
    for _ in range(batches):
        data = prefetcher.next()
        if data is None:
            prefetcher.reset()
            data = prefetcher.next()
        seen += data['gt'].shape[0]
    if gpus:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    del prefetcher, loader
    return seen / wall, seen / cpu


def _data(args):
    """{codec: (GT LMDB, LQ LMDB)} of the same sub-images, built when missing; and the number of sub-images."""
    from mrnet_arch.dataprep.lmdb_store import build_lmdb
    from mrnet_arch.dataprep.photo_sets import build
    from mrnet_arch.dataprep.prepare import div2k_paths
    folder = args.data or osp.join(ROOT, 'datasets', f'loader_bench_{args.crop_size}')
    if not args.data and not osp.isfile(osp.join(folder, 'paths.json')):
        build(folder, scale=2, crop_size=args.crop_size, step=args.crop_size // 2, workers=1)
    with open(osp.join(folder, 'paths.json'), encoding='utf-8') as f:
        paths = json.load(f)
    written = div2k_paths(osp.dirname(paths.get('train_gt') or ''), [paths.get('scale', 2)])
    tiles = {'train_gt': written['hr'][0], 'train_lq': written[paths.get('scale', 2)][0]}
    for key, tile_dir in tiles.items():
        if not osp.isdir(tile_dir):
            raise SystemExit(f'{folder}/paths.json: {key}: no sub-image folder {tile_dir} beside {paths.get(key)} '
                             '(written by mrnet prepare photos / div2k)')
    lmdbs = {}
    for codec in ('png', 'bmp'):
        pair = tuple(osp.join(folder, 'loader_codecs', codec, f'{key}.lmdb') for key in ('gt', 'lq'))
        build_lmdb(tiles['train_gt'], pair[0], codec=codec)
        build_lmdb(tiles['train_lq'], pair[1], codec=codec)
        lmdbs[codec] = pair
        for lmdb_path in pair:  # read once: the page cache holds them, as after a first epoch
            for name in os.listdir(lmdb_path):
                with open(osp.join(lmdb_path, name), 'rb') as f:
                    while f.read(1 << 24):
                        pass
    return lmdbs, len(os.listdir(tiles['train_gt']))


def report(results, cpu_results, machine, end_load, args, num_tiles):
    """The Markdown tables: median sub-images/s per path and worker count, per process, new / old; with 0 workers
    also per second of the main process's CPU time (what one thread delivers when it has a core to itself)."""
    lines = [f"# Training data path throughput, old and new side by side, {machine['device_name']}", '',
             f"- Date (UTC): {machine['date_utc']}; {machine['cpu_count']} cores "
             f"({', '.join(machine['cpu_features'])}); "
             f"torch {machine['torch']}; "
             f"basicsr {machine.get('basicsr')}",
             f"- Load average (1, 5, 15 min) at the start {[round(x, 2) for x in machine['load_average_1_5_15']]}, "
             f"at the end {[round(x, 2) for x in end_load]}{'; ' + args.note if args.note else ''}",
             f'- Data: {num_tiles} HR sub-images of {args.crop_size} px ({args.source_note}) and their x2 LR, '
             f'as LMDBs of PNG level 1 and of BMP built from the same sub-images',
             '- Dataset settings of options/train_MRNet_x2.yml: 96 px HR / 48 px LR patches, flips and rotations, '
             f'batch 16; {args.batches} batches timed after {args.warmup}, median of {args.repeats} interleaved runs; '
             'torch and OpenCV with 1 thread in the main process', '',
             '| loader workers | path | dataset | LMDB values | sub-images/s | per loader process | vs old |',
             '|---|---|---|---|---|---|---|']
    for workers in args.workers:
        old = results[workers]['old']
        for path, (dataset_type, codec) in PATHS.items():
            rate = results[workers][path]
            lines.append(f'| {workers} | {path} | {dataset_type} | {"PNG level 1" if codec == "png" else "BMP"} | '
                         f'{rate:,.0f} | {rate / max(1, workers):,.0f} | {rate / old:.1f}x |')
    if cpu_results:
        lines += ['', 'With 0 workers, per second of the main process\'s CPU time (1 thread; on a shared machine the '
                  'wall-time rate above is lower by the share of a core the process got):', '',
                  '| path | sub-images per CPU second | vs old |', '|---|---|---|']
        lines += [f"| {path} | {rate:,.0f} | {rate / cpu_results['old']:.1f}x |" for path, rate in cpu_results.items()]
    if cpu_results:  # what one loader process delivers with a core to itself
        per_process, basis = cpu_results, 'the 0-worker rate per CPU second, i.e. one loader process per core'
    else:
        per_process = {path: results[min(args.workers)][path] / max(1, min(args.workers)) for path in PATHS}
        basis = f'the {min(args.workers)}-worker wall-time rate per process'
    lines += ['', f'Loader processes (one core each) a GPU needs at batch 16, from {basis} on this CPU:', '',
              '| step time | sub-images/s needed | old path | new path |', '|---|---|---|---|']
    for step_ms in STEP_MS:
        need = 16 / (step_ms / 1000.)
        lines.append(f"| {step_ms} ms | {need:,.0f} | {math.ceil(need / per_process['old'])} | "
                     f"{math.ceil(need / per_process['new'])} |")
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data', help='folder with paths.json (mrnet prepare photos); default: built from skimage photos')
    p.add_argument('--crop-size', type=int, default=480, help='HR sub-image size of the built set (DIV2K: 480)')
    p.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--batches', type=int, default=60)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--note', default='', help='a remark for the results file (e.g. what else ran on the machine)')
    p.add_argument('--output-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--name', default='loader_throughput')
    args = p.parse_args(argv)
    if min(args.workers) < 0 or args.batches < 1 or args.repeats < 1 or args.warmup < 0:
        raise SystemExit('loader_throughput.py: --workers must be >= 0, --batches and --repeats >= 1, --warmup >= 0')
    import cv2
    import torch
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    args.source_note = f'from {args.data}' if args.data else "scikit-image's photos (mrnet prepare photos)"
    lmdbs, num_tiles = _data(args)
    machine = machine_info(torch.device('cuda' if torch.cuda.is_available() else 'cpu'))
    runs = {w: {path: [] for path in PATHS} for w in args.workers}
    cpu_runs = {path: [] for path in PATHS}
    for repeat in range(args.repeats):
        for workers in args.workers:
            for path in PATHS:
                rate, cpu_rate = measure(lmdbs, path, workers, args.batches, args.warmup)
                runs[workers][path].append(rate)
                if workers == 0:
                    cpu_runs[path].append(cpu_rate)
                print(f'repeat {repeat}, workers {workers}, {path}: {rate:,.0f} sub-images/s '
                      f'({cpu_rate:,.0f} per CPU second of the main process)', flush=True)
    results = {w: {path: statistics.median(r) for path, r in by_path.items()} for w, by_path in runs.items()}
    cpu_results = {path: statistics.median(r) for path, r in cpu_runs.items() if r}
    end_load = list(os.getloadavg())
    text = report(results, cpu_results, machine, end_load, args, num_tiles)
    os.makedirs(args.output_dir, exist_ok=True)
    settings = {k: v for k, v in vars(args).items()}
    write_json(osp.join(args.output_dir, args.name + '.json'),
               {'machine': machine, 'load_average_end': end_load, 'settings': settings, 'sub_images': num_tiles,
                'paths': {k: {'dataset': v[0], 'lmdb_codec': v[1]} for k, v in PATHS.items()},
                'runs_sub_images_per_s': {str(w): r for w, r in runs.items()},
                'median_sub_images_per_s': {str(w): r for w, r in results.items()},
                'runs_0_workers_sub_images_per_cpu_s': cpu_runs, 'median_0_workers_sub_images_per_cpu_s': cpu_results},
               indent=1)
    write_text(osp.join(args.output_dir, args.name + '.md'), text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
