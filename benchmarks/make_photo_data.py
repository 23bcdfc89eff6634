"""Build the real-photo training set and held-out set used by the GPU check and the equal-budget runs.

Photos are scikit-image's bundled real photographs (no download). Training photos are cut into HR
sub-images with ``mrnet prepare``'s ``prepare_div2k`` (``mrnet_arch.core.prepare``; tile 192 px, step 96,
MATLAB-bicubic LR x2) and
packed into LMDBs; the held-out photos get BasicSR's Set5 layout (``GTmod12/`` + ``LRbicx2/``) via
``prepare_benchmark``. No held-out photo is in the training set.

    python benchmarks/make_photo_data.py --output datasets/photos_bench

Writes ``OUTPUT/paths.json`` with the LMDB and held-out folders (``train_gt``, ``train_lq``, ``holdout``).
"""
import argparse
import json
import os
import os.path as osp
import sys

import cv2

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

import mrnet_arch  # noqa: E402,F401  (compat fixes)
from mrnet_arch.core.prepare import prepare_benchmark, prepare_div2k  # noqa: E402

TRAIN_PHOTOS = ('astronaut', 'rocket', 'stereo_motorcycle', 'hubble_deep_field', 'retina', 'immunohistochemistry')
HOLDOUT_PHOTOS = ('coffee', 'chelsea')


def _write_photos(names, folder):
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    for name in names:
        img = getattr(data, name)()
        if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
            img = img[0]
        if not cv2.imwrite(osp.join(folder, f'{name}.png'), img[..., :3][..., ::-1]):
            raise OSError(f'could not write {name}.png in {folder}')


def build(output, scale=2, crop_size=192, step=96, workers=1):
    """Write the data set (skipping work already done); returns the paths dict."""
    output = osp.abspath(output)
    hr_train, hr_holdout = osp.join(output, 'train_HR'), osp.join(output, 'holdout_HR')
    _write_photos(TRAIN_PHOTOS, hr_train)
    _write_photos(HOLDOUT_PHOTOS, hr_holdout)
    paths = prepare_div2k(hr_train, osp.join(output, 'train'), scales=[scale], crop_size=crop_size, step=step,
                          workers=workers)
    prepare_benchmark(hr_holdout, osp.join(output, 'holdout'), scales=[scale], workers=workers)
    result = {'scale': scale, 'train_gt': paths['hr'][1], 'train_lq': paths[scale][1],
              'holdout': osp.join(output, 'holdout'), 'train_photos': list(TRAIN_PHOTOS),
              'holdout_photos': list(HOLDOUT_PHOTOS), 'tiles': len(os.listdir(paths['hr'][0]))}
    with open(osp.join(output, 'paths.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--output', default='datasets/photos_bench')
    p.add_argument('--scale', type=int, default=2)
    p.add_argument('--workers', type=int, default=1)
    args = p.parse_args(argv)
    print(json.dumps(build(args.output, args.scale, workers=args.workers), indent=1))


if __name__ == '__main__':
    main()
