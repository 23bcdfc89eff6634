"""Small real photos (scikit-image's data folder) and helpers for the data-preparation tests."""
import os
import re
import subprocess
import sys
from os import path as osp

import cv2
import numpy as np
import yaml

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from _tiny import REPO, env  # noqa: E402,F401  (REPO is re-exported for the tests)


def photo(name, height, width, top=0, left=0):
    """A BGR (or, for gray photos, 2-D) uint8 crop of ``skimage.data.<name>()``."""
    from skimage import data
    img = getattr(data, name)()
    crop = img[top:top + height, left:left + width]
    if crop.shape[:2] != (height, width):
        raise ValueError(f'skimage.data.{name} is smaller than {height}x{width}+{top}+{left}')
    if crop.ndim == 3:
        crop = crop[..., :3][..., ::-1]  # RGB -> BGR for cv2
    return np.ascontiguousarray(crop)


def write_photos(folder, specs):
    """Write ``{file name: (skimage name, height, width)}`` crops into ``folder``; returns the folder."""
    os.makedirs(folder, exist_ok=True)
    for file_name, (name, height, width) in specs.items():
        if not cv2.imwrite(osp.join(folder, file_name), photo(name, height, width, top=40, left=60)):
            raise OSError(f'could not write {file_name}')
    return folder


def multiscale_data(root, hr_photos, set5_photos, scales=(2, 3, 4)):
    """Tiny DIV2K-like LMDBs (48 px HR tiles, LR of every scale) and a tiny Set5 layout under
    ``root/datasets`` from real photos (``{file name: (skimage name, height, width)}``); returns ``root``."""
    from mrnet_arch.dataprep.prepare import prepare_benchmark, prepare_div2k
    hr = write_photos(osp.join(str(root), 'raw_hr'), hr_photos)
    prepare_div2k(hr, osp.join(str(root), 'datasets', 'DIV2K'), list(scales), crop_size=48, step=48)
    bench = write_photos(osp.join(str(root), 'raw_set5'), set5_photos)
    prepare_benchmark(bench, osp.join(str(root), 'datasets', 'Set5'), list(scales))
    return root


def load_yaml(path):
    """Read an option file with BasicSR's ordered loader."""
    from basicsr.utils.options import ordered_yaml
    with open(path, encoding='utf-8') as f:
        return yaml.load(f, Loader=ordered_yaml()[0])


def save_yaml(opt, path):
    from basicsr.utils.options import ordered_yaml
    with open(path, 'w', encoding='utf-8') as f:
        yaml.dump(opt, f, Dumper=ordered_yaml()[1])
    return str(path)


def run_mrnet(args, root, timeout=600):
    """Run ``python -m mrnet_arch ARGS`` in a subprocess with ``MRNET_ROOT=root`` and one thread."""
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch'] + list(args), env=env(str(root)), cwd=str(root),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'mrnet {" ".join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc


def check_rerun_and_local_edit(target, checkout, relative, root, unchanged=r'\d+'):
    """``mrnet contribute TARGET CHECKOUT`` run again writes nothing (``unchanged``: the pattern of the number of
    files it reports unchanged), and refuses (exit 2, naming the file and ``--overwrite``, no traceback) to replace
    ``relative`` after a local edit, which stays as it is.

    Returns:
        str: The edited file's path.
    """
    again = run_mrnet(['contribute', target, checkout], root)
    assert re.search(rf': 0 written, 0 replaced, {unchanged} unchanged', again.stdout), again.stdout
    path = osp.join(checkout, relative)
    with open(path, 'a', encoding='utf-8') as f:
        f.write('# a local edit\n')
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'contribute', target, checkout], env=env(str(root)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and relative in proc.stderr and '--overwrite' in proc.stderr
    assert 'Traceback' not in proc.stderr
    with open(path, encoding='utf-8') as f:
        assert f.read().endswith('# a local edit\n')
    return path
