"""Paired dataset over several scales for multi-scale training (MRNet section 4.5, EDSR's MDSR).

One ``PairedImageDataset`` per scale pairs the common HR images with that scale's LR images. For
training, every sample holds a random patch pair of every scale (``lq_x2``, ``gt_x2``, ``lq_x3``, ...),
read from one decode of the HR image, cut from the 8-bit images and only then converted to float (the
values of converting first). ``MultiScaleMRNetModel`` then trains each iteration at the scale of its seeded,
balanced schedule (``scale_schedule`` in ``basicsr/models/mrnet_model.py``), a function of
the iteration alone. A resumed run therefore trains each iteration at the same scale as an uninterrupted
one, and every process of a distributed run agrees, whatever the number of loader workers. For
validation and testing (one scale) a sample holds ``lq``, ``gt`` and ``scale``.

A sample that fails to load raises ``RuntimeError`` naming its files.
"""
import copy
import numpy as np
import os
from torch.utils import data as data

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, bgr2ycbcr, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY


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

    BasicSR sets ``scale`` of every dataset to the top-level ``scale``; this dataset ignores it and uses
    ``scales``. A training sample holds ``lq_x<s>`` and ``gt_x<s>`` for every scale s; a val/test sample
    holds ``lq``, ``gt`` and ``scale`` (int).

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
        self.datasets = {}
        for scale, root in zip(self.scales, roots):
            sub_opt = copy.deepcopy(dict(opt))
            for key in ('scales', 'lq_size', 'type'):
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

    def _train_sample(self, index):
        """Patch pairs of every scale from one read of the HR image, cut from the uint8 images and converted to
        float afterwards (only the patches): the same values as converting first, as ``imfrombytes`` does."""
        base = self.datasets[self.scales[0]]
        gt_path = base.paths[index]['gt_path']
        img_gt = imfrombytes(self._client.get(gt_path, 'gt'), float32=False)
        sample = {'gt_path': gt_path}
        lq_size = int(self.opt['lq_size'])
        for scale in self.scales:
            lq_path = self.datasets[scale].paths[index]['lq_path']
            img_lq = imfrombytes(self._client.get(lq_path, f'lq_x{scale}'), float32=False)
            if img_gt is None or img_lq is None:
                raise ValueError('the bytes are no image that OpenCV decodes')
            gt, lq = paired_random_crop(img_gt, img_lq, lq_size * scale, scale, gt_path)
            gt, lq = augment([gt, lq], self.opt['use_hflip'], self.opt['use_rot'])  # flips in place, as before
            gt, lq = gt.astype(np.float32) / 255., lq.astype(np.float32) / 255.
            if self.opt.get('color') == 'y':
                gt, lq = bgr2ycbcr(gt, y_only=True)[..., None], bgr2ycbcr(lq, y_only=True)[..., None]
            gt, lq = img2tensor([gt, lq], bgr2rgb=True, float32=True)
            if base.mean is not None or base.std is not None:  # as PairedImageDataset's normalize
                mean = lq.new_tensor(base.mean if base.mean is not None else 0.).view(-1, 1, 1)
                std = lq.new_tensor(base.std if base.std is not None else 1.).view(-1, 1, 1)
                lq, gt = (lq - mean) / std, (gt - mean) / std
            sample.update({f'lq_x{scale}': lq, f'gt_x{scale}': gt, f'lq_path_x{scale}': lq_path})
        return sample

    def _paths(self, index):
        entries = [self.datasets[s].paths[index] for s in self.scales]
        lqs = [f"lq_x{s}={e['lq_path']}" for s, e in zip(self.scales, entries)]
        return ', '.join([f"gt={entries[0]['gt_path']}"] + lqs)

    def __getitem__(self, index):
        if index >= len(self):
            raise IndexError(index)  # the end of ``for sample in dataset``
        if self._client is None:
            self._open()
        try:
            if self.opt['phase'] == 'train':
                return self._train_sample(index)
            scale = self.scales[0]
            item = self.datasets[scale][index]
            item['scale'] = scale
            return item
        except Exception as e:  # noqa: BLE001  (re-raised with the file names)
            raise RuntimeError(f'{type(self).__name__}: could not load {self._paths(index)}: {type(e).__name__}: {e}. '
                               'Is the file a complete, readable image?') from e
