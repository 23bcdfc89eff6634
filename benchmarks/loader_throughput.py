"""Throughput of the training data path on its own: BasicSR's ``PairedImageDataset`` over LMDBs of 480 px HR
sub-images (DIV2K's layout), ``build_dataloader`` with ``EnlargedSampler``, random 96 px HR patches
(48 px LR, x2), flips and rotations, and BasicSR's prefetcher, as ``mrnet train`` runs it.

At a 6 ms training step, batch 16, the loader must deliver about 2,700 sub-images a second. This measures
what it delivers, per number of loader workers, with and without pinned memory, and with the CUDA
prefetcher where a GPU is present (the batches are then copied to the GPU too):

    python benchmarks/loader_throughput.py --workers 0 1 2 --batches 60 --output-dir benchmarks/results

Data: ``--data DIR`` holding ``paths.json`` (``benchmarks/make_photo_data.py``); without it, a set of
``--crop-size`` px sub-images (default 480, DIV2K's) is built from scikit-image's photos under
``datasets/loader_bench_<size>``. The LMDBs are read
once before timing, so the page cache holds them, as it does after the first epoch of a real run.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

import mrnet_arch  # noqa: E402,F401  (registration)
from mrnet_arch.core.files import write_json, write_text  # noqa: E402
from mrnet_arch.core.machine import machine_info  # noqa: E402


def dataset_options(paths, batch, workers, pin_memory, prefetch_mode):
    """The ``datasets: train`` options of ``options/train_MRNet_x2.yml`` on the given LMDBs and loader settings."""
    return {'name': 'loader_bench', 'type': 'PairedImageDataset', 'phase': 'train', 'scale': 2,
            'dataroot_gt': paths['train_gt'], 'dataroot_lq': paths['train_lq'], 'meta_info_file': None,
            'filename_tmpl': '{}', 'io_backend': {'type': 'lmdb'}, 'gt_size': 96, 'use_hflip': True, 'use_rot': True,
            'num_worker_per_gpu': workers, 'batch_size_per_gpu': batch, 'dataset_enlarge_ratio': 100,
            'prefetch_mode': prefetch_mode, 'pin_memory': pin_memory}


def measure(paths, batch, workers, pin_memory, prefetch_mode, batches, warmup):
    """Sub-images per second over ``batches`` batches after ``warmup`` batches (worker start-up left out)."""
    import torch

    from basicsr.data import build_dataloader, build_dataset
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
    opt = dataset_options(paths, batch, workers, pin_memory, prefetch_mode)
    dataset = build_dataset(opt)
    sampler = EnlargedSampler(dataset, 1, 0, opt['dataset_enlarge_ratio'])
    gpus = 1 if torch.cuda.is_available() else 0
    loader = build_dataloader(dataset, opt, num_gpu=max(gpus, 1), dist=False, sampler=sampler, seed=0)
    full = {'num_gpu': gpus}
    prefetcher = CUDAPrefetcher(loader, full) if prefetch_mode == 'cuda' else CPUPrefetcher(loader)
    prefetcher.reset()
    for _ in range(warmup):
        prefetcher.next()
    if gpus:
        torch.cuda.synchronize()
    start = time.perf_counter()
    seen = 0
    for _ in range(batches):
        data = prefetcher.next()
        if data is None:
            prefetcher.reset()
            data = prefetcher.next()
        seen += data['gt'].shape[0]
    if gpus:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {'workers': workers, 'pin_memory': pin_memory, 'prefetch_mode': prefetch_mode or 'none',
            'batch': batch, 'batches': batches, 'seconds': round(seconds, 3),
            'sub_images_per_s': round(seen / seconds, 1)}


def _data(args):
    if args.data:
        folder = args.data
    else:
        folder = osp.join(ROOT, 'datasets', f'loader_bench_{args.crop_size}')
        if not osp.isfile(osp.join(folder, 'paths.json')):
            import importlib.util
            spec = importlib.util.spec_from_file_location('make_photo_data',
                                                          osp.join(ROOT, 'benchmarks', 'make_photo_data.py'))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.build(folder, scale=2, crop_size=args.crop_size, step=args.crop_size // 2, workers=1)
    with open(osp.join(folder, 'paths.json'), encoding='utf-8') as f:
        paths = json.load(f)
    for key in ('train_gt', 'train_lq'):
        if not paths.get(key) or not osp.isdir(paths[key]):
            raise SystemExit(f'{folder}/paths.json: {key} is no LMDB folder: {paths.get(key)}')
        for name in os.listdir(paths[key]):  # read once: the page cache holds them, as after a first epoch
            with open(osp.join(paths[key], name), 'rb') as f:
                while f.read(1 << 24):
                    pass
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data', help='folder with paths.json (make_photo_data.py); default: built from skimage photos')
    p.add_argument('--crop-size', type=int, default=480, help='HR sub-image size of the built set (DIV2K: 480)')
    p.add_argument('--workers', type=int, nargs='+', default=[0, 2, 4, 8])
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--batches', type=int, default=100)
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument('--output-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--name', default='loader_throughput')
    args = p.parse_args(argv)
    import torch
    paths = _data(args)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    machine = machine_info(device)
    modes = [(False, None), (True, None)] + ([(True, 'cuda')] if device.type == 'cuda' else [])
    results = []
    for workers in args.workers:
        for pin_memory, prefetch_mode in modes:
            results.append(measure(paths, args.batch, workers, pin_memory, prefetch_mode, args.batches, args.warmup))
            print(results[-1], flush=True)
    lines = [f"# Training data path throughput, {machine['device_name']}", '',
             f"- Date (UTC): {machine['date_utc']}; CPU {machine['cpu_model']} ({machine['cpu_count']} cores); "
             f"torch {machine['torch']}; load average at the start {machine.get('load_average_1_5_15')}",
             f'- PairedImageDataset over LMDBs of {args.crop_size} px HR sub-images (PNG, as `make_lmdb_from_imgs` '
             f'stores them), 96 px HR / 48 px LR patches, x2, flips and '
             f'rotations, batch {args.batch}; {args.batches} batches timed after {args.warmup}',
             '- Target for a 6 ms training step: about 2,700 sub-images/s', '',
             '| loader workers | pin_memory | prefetch | sub-images/s |', '|---|---|---|---|']
    lines += [f"| {r['workers']} | {r['pin_memory']} | {r['prefetch_mode']} | {r['sub_images_per_s']:.0f} |"
              for r in results]
    text = '\n'.join(lines) + '\n'
    os.makedirs(args.output_dir, exist_ok=True)
    write_json(osp.join(args.output_dir, args.name + '.json'),
               {'machine': machine, 'settings': vars(args), 'results': results}, indent=1)
    write_text(osp.join(args.output_dir, args.name + '.md'), text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
