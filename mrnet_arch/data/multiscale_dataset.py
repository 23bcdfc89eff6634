"""Paired dataset over several scales for multi-scale training (MRNet section 4.5, EDSR's MDSR).

One ``PairedImageDataset`` per scale (same HR, one LR per scale). PyTorch's ``DataLoader`` hands a whole
batch of indices to ``__getitems__``, which serves all of them at one scale, so every batch has a single
scale (``data['scale']``, read by ``MultiScaleMRNetModel``). The scale of the k-th batch is drawn from a
seeded, balanced schedule (each round of ``len(scales)`` batches visits every scale once in a random
order), so it depends only on ``(seed, k)``: every process of a distributed run, with the same number of
loader workers, trains the same scale at the same iteration. k counts the batches this process (or
loader worker) has served: it restarts with every epoch when the loader's workers are re-created (the
default), runs on across epochs with ``num_worker_per_gpu: 0`` or persistent workers, and restarts at 0
after ``--auto_resume``; the ranks agree in every case.

It works with BasicSR's ``build_dataloader`` and ``EnlargedSampler`` unchanged; batch k is recognised
from how many batches this process (or loader worker, which PyTorch serves round-robin) has produced.
"""
import copy
import os

import numpy as np
from torch.utils import data as data
from torch.utils.data import get_worker_info

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils import FileClient
from basicsr.utils.registry import DATASET_REGISTRY


def scale_schedule(scales, seed, batch_index):
    """The scale of batch ``batch_index``: a seeded shuffle of ``scales`` per round of ``len(scales)`` batches.

    Args:
        scales (list[int]): Scales.
        seed (int): Seed.
        batch_index (int): Index of the batch in the epoch (from 0).

    Returns:
        int: One of ``scales``.
    """
    n = len(scales)
    order = np.random.default_rng([seed, batch_index // n]).permutation(n)
    return scales[order[batch_index % n]]


class _ScaleClient:
    """One shared ``FileClient`` seen by the dataset of one scale: its ``'lq'`` key reads that scale's LR.

    An LMDB can be opened only once per process, and the HR LMDB is common to all scales, so the
    per-scale datasets share one client holding the HR and every LR database.
    """

    def __init__(self, client, scale):
        self.client, self.scale = client, scale

    def get(self, filepath, client_key='default'):
        return self.client.get(filepath, f'lq_x{self.scale}' if client_key == 'lq' else client_key)


@DATASET_REGISTRY.register()
class MultiScalePairedImageDataset(data.Dataset):
    """Paired HR/LR images at several scales, one scale per batch.

    Options (besides those of ``PairedImageDataset``, passed to each per-scale dataset):

    - ``scales`` (list[int]): The scales, e.g. ``[2, 3, 4]``; ``[4]`` for a single-scale val/test set.
    - ``dataroots_lq`` (list[str]): LR LMDB/folder of each scale, in the order of ``scales``; a single
      scale may give ``dataroot_lq`` instead. (Not ``dataroot_lq``: BasicSR's option parser wants a string
      there.)
    - ``lq_size`` (int, train): LR patch size; the HR patch of scale s is ``lq_size * s``
      (``gt_size`` is not allowed: it would give a different LR patch per scale).
    - ``scale_seed`` (int): Seed of the scale schedule. Default: 0.

    BasicSR sets ``scale`` of every dataset to the top-level ``scale``; this dataset ignores it and uses
    ``scales``. Each sample holds ``scale`` (int).

    Args:
        opt (dict): Dataset options.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        name = opt.get('name', 'MultiScalePairedImageDataset')
        if 'scales' not in opt:
            raise KeyError(f'dataset {name}: option "scales" (e.g. [2, 3, 4]) is required')
        self.scales = [int(s) for s in opt['scales']]
        if not self.scales or len(set(self.scales)) != len(self.scales):
            raise ValueError(f'dataset {name}: "scales" must be distinct scales, got {opt["scales"]}')
        if opt.get('dataroots_lq') is not None:
            roots = list(opt['dataroots_lq'])
        elif len(self.scales) == 1 and isinstance(opt.get('dataroot_lq'), str):
            roots = [opt['dataroot_lq']]
        else:
            raise KeyError(f'dataset {name}: give "dataroots_lq" (one LR folder/LMDB per scale of {self.scales}), '
                           'or "dataroot_lq" for a single scale')
        if len(roots) != len(self.scales):
            raise ValueError(f'dataset {name}: "dataroots_lq" needs one entry per scale {self.scales}, got {roots}')
        named = [('dataroot_gt', opt['dataroot_gt'])] + [(f'LR of x{s}', r) for s, r in zip(self.scales, roots)]
        for key, root in named:
            if not isinstance(root, str) or not os.path.exists(root):
                raise FileNotFoundError(f'dataset {name}: {key} not found: {root}')
        if opt['phase'] == 'train':
            if 'gt_size' in opt:
                raise ValueError(f'dataset {name}: use "lq_size" (LR patch size), not "gt_size", with several scales')
            if 'lq_size' not in opt:
                raise KeyError(f'dataset {name}: option "lq_size" (LR patch size, e.g. 48) is required for training')
        self.seed = int(opt.get('scale_seed', 0))
        self.datasets = {}
        for scale, root in zip(self.scales, roots):
            sub_opt = copy.deepcopy(dict(opt))
            for key in ('scales', 'lq_size', 'scale_seed', 'type'):
                sub_opt.pop(key, None)
            sub_opt.update(scale=scale, dataroot_lq=root)
            if 'lq_size' in opt:
                sub_opt['gt_size'] = int(opt['lq_size']) * scale
            self.datasets[scale] = PairedImageDataset(sub_opt)
        lengths = {s: len(d) for s, d in self.datasets.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f'dataset {name}: the scales hold different numbers of images {lengths}; '
                             'the LR sets must pair with the same HR images')
        self._roots = dict(zip(self.scales, roots))
        self._client = None  # opened lazily, in the process (loader worker) that reads
        self._batches = 0  # batches produced by this process (or loader worker) since it started

    def __len__(self):
        return len(self.datasets[self.scales[0]])

    def _open(self):
        io_opt = copy.deepcopy(dict(self.opt['io_backend']))
        backend = io_opt.pop('type')
        if backend == 'lmdb':
            io_opt['db_paths'] = [self.opt['dataroot_gt']] + [self._roots[s] for s in self.scales]
            io_opt['client_keys'] = ['gt'] + [f'lq_x{s}' for s in self.scales]
        self._client = FileClient(backend, **io_opt)
        for scale, dataset in self.datasets.items():
            dataset.file_client = _ScaleClient(self._client, scale)

    def _get(self, index, scale):
        if self._client is None:
            self._open()
        item = self.datasets[scale][index]
        item['scale'] = scale
        return item

    def __getitem__(self, index):
        """One sample without batching (e.g. val/test, batch size 1): the scale comes from the index."""
        return self._get(index, scale_schedule(self.scales, self.seed, index))

    def __getitems__(self, indices):
        """A whole batch (called by ``DataLoader`` with a batch size), all at the batch's scale."""
        info = get_worker_info()
        workers, worker_id = (1, 0) if info is None else (info.num_workers, info.id)
        batch_index = self._batches * workers + worker_id
        self._batches += 1
        scale = scale_schedule(self.scales, self.seed, batch_index)
        return [self._get(i, scale) for i in indices]
