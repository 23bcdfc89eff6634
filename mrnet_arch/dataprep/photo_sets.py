"""Real-photo training and held-out sets (``mrnet prepare photos``): scikit-image's bundled photos or the Debian
photo set (``mrnet_arch.dataprep.debian_photos``), cut into training LMDBs and a held-out Set5 layout.

Sources:

- ``skimage`` (default; no download): train on astronaut, rocket, stereo_motorcycle, hubble_deep_field, retina,
  immunohistochemistry; hold out coffee and chelsea.
- ``debian``: the manifest's camera photos from Debian packages (``debian_photos.write_debian_hr``).
- ``all``: both, in one training set and one held-out set (the largest real-photo set the packages provide).

The held-out photos of every source are named in ``mrnet_arch/photo_data/holdout.txt``.

Training photos are cut into HR sub-images with ``prepare_div2k`` (tile 192 px, step 96, MATLAB-bicubic LR) and
packed into LMDBs; the held-out photos get BasicSR's Set5 layout (``GTmod12/`` + ``LRbicx{s}/``) via
``prepare_benchmark``. No held-out photo is in the training set. ``OUTPUT/paths.json`` records the LMDB and
held-out folders (``train_gt``, ``train_lq``, ``holdout``); the debian source also writes
``OUTPUT/provenance.json`` and ``OUTPUT/PROVENANCE.md``. Never commit the photos.
"""
import os
import os.path as osp

import cv2

from mrnet_arch.dataprep.debian_photos import PhotoSetError, read_holdout, write_debian_hr
from mrnet_arch.dataprep.prepare import DEFAULT_CODEC, prepare_benchmark, prepare_div2k
from mrnet_arch.storage.files import write_json

TRAIN_PHOTOS = ('astronaut', 'rocket', 'stereo_motorcycle', 'hubble_deep_field', 'retina', 'immunohistochemistry')
HOLDOUT_PHOTOS = read_holdout()[1]  # coffee, chelsea
SOURCES = ('skimage', 'debian', 'all')


def write_skimage_photos(names, folder):
    """Write scikit-image's photos ``names`` as ``folder/<name>.png`` (8-bit BGR for cv2)."""
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    for name in names:
        img = getattr(data, name)()
        if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
            img = img[0]
        if not cv2.imwrite(osp.join(folder, f'{name}.png'), img[..., :3][..., ::-1]):
            raise OSError(f'could not write {name}.png in {folder}')


def build(output, scale=2, crop_size=192, step=96, workers=1, source='skimage', hr_only=False,
          lmdb_codec=DEFAULT_CODEC, **debian):
    """Write the data set (skipping work already done).

    Args:
        output (str): Output folder.
        scale (int): LR scale. Default: 2.
        crop_size (int): HR tile size of the training LMDBs. Default: 192.
        step (int): HR tile step. Default: 96.
        workers (int): Processes. Default: 1.
        source (str): ``skimage``, ``debian`` or ``all`` (both). Default: ``skimage``.
        hr_only (bool): Write only the HR photos (and the provenance); the paths dict then has no LMDBs.
        lmdb_codec (str): LMDB value format (``prepare_div2k``). Default: ``bmp``.
        **debian: The keyword arguments of ``write_debian_hr`` (manifest, cache, packages, skip, limit,
            max_side, hr_format).

    Returns:
        dict: ``scale``, ``source``, ``train_gt``, ``train_lq``, ``holdout``, ``train_photos``,
        ``holdout_photos``, ``tiles`` (also written as ``OUTPUT/paths.json``).

    Raises:
        PhotoSetError: An unknown source or a bad Debian option; ``debian_photos.FetchError``: a failed download.
    """
    if source not in SOURCES:
        raise PhotoSetError(f'--source must be one of {", ".join(SOURCES)}, got {source!r}')
    if hr_only and source == 'skimage':
        raise PhotoSetError('--hr-only is for --source debian or all (the skimage photos need no download)')
    output = osp.abspath(output)
    hr_train, hr_holdout = osp.join(output, 'train_HR'), osp.join(output, 'holdout_HR')
    train_photos, holdout_photos = [], []
    if source != 'skimage':  # first: a changed Debian selection clears the folders
        prov = write_debian_hr(output, **debian)
        train_photos = [p['file'] for p in prov['photos'] if p['split'] == 'train']
        holdout_photos = [p['file'] for p in prov['photos'] if p['split'] == 'holdout']
    if source != 'debian':
        write_skimage_photos(TRAIN_PHOTOS, hr_train)
        write_skimage_photos(HOLDOUT_PHOTOS, hr_holdout)
        train_photos += list(TRAIN_PHOTOS)
        holdout_photos += list(HOLDOUT_PHOTOS)
    result = {'scale': scale, 'source': source, 'train_gt': None, 'train_lq': None, 'holdout': None,
              'train_photos': train_photos, 'holdout_photos': holdout_photos, 'tiles': 0}
    if hr_only:
        return result
    if train_photos:
        paths = prepare_div2k(hr_train, osp.join(output, 'train'), scales=[scale], crop_size=crop_size, step=step,
                              workers=workers, lmdb_codec=lmdb_codec)
        result.update(train_gt=paths['hr'][1], train_lq=paths[scale][1], tiles=len(os.listdir(paths['hr'][0])))
    if holdout_photos:
        prepare_benchmark(hr_holdout, osp.join(output, 'holdout'), scales=[scale], workers=workers)
        result['holdout'] = osp.join(output, 'holdout')
    write_json(osp.join(output, 'paths.json'), result, indent=1)
    return result
