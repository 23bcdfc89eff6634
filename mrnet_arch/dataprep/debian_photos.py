"""The Debian photo set: genuine camera photos listed in a manifest, fetched from Debian packages
(``apt-get download``, ``dpkg-deb -x``), converted to 8-bit HR photos and recorded with their provenance.

The manifest (default: ``mrnet_arch/photo_data/debian_manifest.tsv``, shipped with the package beside
``DEBIAN_PHOTOS.md``, which describes the packages and licences; file, size, package, licence) lists 92 photos.
Each is converted to 8-bit RGB and, when its long side exceeds ``max_side`` (default 1024; 0 keeps the size),
downscaled with MATLAB bicubic (basicsr's ``imresize``) by the non-integer factor
``max_side / long side``, which also smooths JPEG artefacts. The HR photos are stored losslessly (``hr_format``,
default lossless WebP: 50 MiB for the default selection at 1024 px, against 78 MiB as PNG). ``visp-images-data``
and ``stellarium-data`` (613 MB for one photo each) are skipped by default. enlightenment-data's photos are JPEGs
stored verbatim in Eet archives (``eet_entry``).

Split, by photo, fixed: the photos named in ``mrnet_arch/photo_data/holdout.txt`` (``HOLDOUT_FILE``; 12 Debian
photos and scikit-image's coffee and chelsea) are held out, all others train, so a photo's split does not depend on
which packages are fetched.

Offline rebuild: when ``OUTPUT/provenance.json`` lists the same photos, max side and format, and every HR file it
lists is there with its sha256, the packages are neither fetched nor read (``write_debian_hr``).
``mrnet_arch.dataprep.photo_sets`` builds the training LMDBs and the held-out set from the HR photos.
"""
import csv
import glob
import hashlib
import json
import math
import os
import os.path as osp
import shutil
import struct
import subprocess
import tempfile

import cv2
import numpy as np

from mrnet_arch.errors import InputError, RunError
from mrnet_arch.storage.files import sha256_of, write_bytes, write_json, write_text

# the photo list and the held-out list, shipped with the package (mrnet_arch/photo_data/)
PHOTO_DATA = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'photo_data')
DEFAULT_MANIFEST = osp.join(PHOTO_DATA, 'debian_manifest.tsv')
HOLDOUT_FILE = osp.join(PHOTO_DATA, 'holdout.txt')
DEFAULT_SKIP = ('visp-images-data', 'stellarium-data')
SKIMAGE_PREFIX = 'skimage:'

# Where a manifest photo lies inside its package ({file}: the part after '<package>__', {stem}: without
# extension, {dir_file}: 'a_b.jpg' -> 'a/b.jpg'). A path that is not there is looked up by its file name
# anywhere in the package (exactly one match required).
PACKAGE_PATHS = {
    'digikam-data': 'usr/share/digikam/about/images/{file}',
    'enlightenment-data': 'usr/share/enlightenment/data/backgrounds/{stem}.edj',  # JPEG inside an Eet archive
    'lomiri-wallpapers-16.04': 'usr/share/backgrounds/{file}',
    'lomiri-wallpapers-20.04': 'usr/share/backgrounds/{file}',
    'lxqt-themes': 'usr/share/lxqt/wallpapers/{file}',
    'palapeli-data': 'usr/share/palapeli/collection/{file}',
    'plasma-workspace-wallpapers': 'usr/share/wallpapers/{stem}/contents/images/2560x1600.jpg',
    'puzzle-jigsaw': 'usr/share/puzzle-jigsaw/samples/{file}',
    'python-kivy-examples': 'usr/share/kivy-examples/demo/pictures/images/{file}',
    'python3-sklearn': 'usr/lib/python3/dist-packages/sklearn/datasets/images/{file}',
    'scribus-template': 'usr/share/scribus/templates/{dir_file}',
    'sddm-theme-maldives': 'usr/share/sddm/themes/maldives/{file}',
    'tuxpaint-data': 'usr/share/tuxpaint/templates/{file}',
}
EET_MAGIC = 0x1ee70f42
EET_PHOTO_ENTRY = 'edje/images/0'


class FetchError(RunError, RuntimeError):
    """``apt-get download`` failed (no network, no apt, unknown package): the message has its output."""


class PhotoSetError(InputError, ValueError):
    """A bad photo-set option or manifest (unknown package, nothing selected, unknown format), named."""


# ----------------------------------------------------------------------------------------------------
def read_holdout(path=HOLDOUT_FILE):
    """The held-out photos named in ``path``: (Debian manifest file names, scikit-image photo names), each a
    tuple in the file's order. Blank lines and ``#`` comments are skipped; scikit-image names carry ``skimage:``."""
    debian, skimage = [], []
    with open(path, encoding='utf-8') as f:
        for line in f:
            name = line.split('#', 1)[0].strip()
            if name.startswith(SKIMAGE_PREFIX):
                skimage.append(name[len(SKIMAGE_PREFIX):])
            elif name:
                debian.append(name)
    return tuple(debian), tuple(skimage)


def read_manifest(path, holdout_file=HOLDOUT_FILE):
    """Rows of the manifest (dicts with file, width, height, MP, package, licence), sorted by file name,
    each with its fixed ``split``: 'holdout' for the photos that ``holdout_file`` names, else 'train'."""
    with open(path, encoding='utf-8', newline='') as f:
        rows = list(csv.DictReader(f, delimiter='\t'))
    rows.sort(key=lambda r: r['file'])
    holdout = set(read_holdout(holdout_file)[0])
    for row in rows:
        row['split'] = 'holdout' if row['file'] in holdout else 'train'
        if not row['file'].startswith(row['package'] + '__'):
            raise ValueError(f"{path}: file {row['file']!r} does not start with its package {row['package']!r}__")
    return rows


def select_packages(rows, packages=None, skip=DEFAULT_SKIP, limit=None):
    """Package names to use: ``packages`` (or every package of the manifest), minus ``skip``, sorted by name,
    the first ``limit`` of them."""
    known = sorted({r['package'] for r in rows})
    if packages:
        unknown = sorted(set(packages) - set(known))
        if unknown:
            raise PhotoSetError(f'--packages: not in the manifest: {unknown}; known: {known}')
        chosen = sorted(set(packages))
    else:
        chosen = [p for p in known if p not in set(skip or ())]
    return chosen[:limit] if limit else chosen


def _inner_path(row):
    rest = row['file'][len(row['package']) + 2:]
    stem = osp.splitext(rest)[0]
    template = PACKAGE_PATHS.get(row['package'], '{file}')
    return template.format(file=rest, stem=stem, dir_file=rest.replace('_', '/', 1))


def _run(cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else '(no output)'


def fetch_deb(package, deb_dir, state):
    """Path of ``package``'s .deb in ``deb_dir``, downloaded with ``apt-get download`` unless present.

    ``state['updated']`` records whether ``apt-get update`` already ran (it runs once, after a first failure).
    Raises FetchError when apt-get is missing or fails."""
    os.makedirs(deb_dir, exist_ok=True)
    found = sorted(glob.glob(osp.join(deb_dir, f'{package}_*.deb')))
    if found:
        return found[-1]
    if not shutil.which('apt-get'):
        raise FetchError(f'apt-get not found: cannot download {package} (put its .deb in {deb_dir})')
    proc = _run(['apt-get', 'download', package], cwd=deb_dir)
    if proc.returncode != 0 and not state.get('updated'):
        state['updated'] = True
        update = _run(['apt-get', 'update'])
        if update.returncode != 0:
            raise FetchError(f'apt-get update failed (rc {update.returncode}): {_last_line(update.stderr)}\n'
                             f'{update.stderr[-2000:]}')
        proc = _run(['apt-get', 'download', package], cwd=deb_dir)
    if proc.returncode != 0:
        raise FetchError(f'apt-get download {package} failed (rc {proc.returncode}): {_last_line(proc.stderr)}\n'
                         f'{proc.stderr[-2000:]}')
    found = sorted(glob.glob(osp.join(deb_dir, f'{package}_*.deb')))
    if not found:
        raise FetchError(f'apt-get download {package} wrote no {package}_*.deb in {deb_dir}')
    return found[-1]


def eet_entry(data, name):
    """Bytes of entry ``name`` of an (uncompressed) Eet archive: header ``>III`` (magic, entry count, ...), then
    per entry ``>6I`` (offset, size, _, name offset, name length, _)."""
    magic, count, _ = struct.unpack_from('>III', data, 0)
    if magic != EET_MAGIC:
        raise ValueError(f'not an Eet archive (magic {magic:#x})')
    for i in range(count):
        offset, size, _, name_off, name_len, _ = struct.unpack_from('>6I', data, 12 + 24 * i)
        if data[name_off:name_off + name_len].rstrip(b'\0').decode('utf-8', 'replace') == name:
            return data[offset:offset + size]
    raise KeyError(f'no entry {name!r} in the Eet archive')


def _resolve(root, inner, file_name):
    """The regular file for ``inner`` under the unpacked package ``root`` (links followed inside ``root``), or the
    one file named ``file_name`` anywhere in it; returns (path on disk, path inside the package)."""
    def follow(path):
        for _ in range(10):
            if not osp.islink(path):
                return path
            target = os.readlink(path)
            path = osp.join(root, target.lstrip('/')) if osp.isabs(target) else osp.join(osp.dirname(path), target)
        return path
    path = follow(osp.join(root, inner))
    if osp.isfile(path):
        return path, inner
    hits = [p for p in glob.glob(osp.join(root, '**', file_name), recursive=True) if osp.isfile(follow(p))]
    if len(hits) != 1:
        raise FileNotFoundError(f'{inner}: not in the package, and {len(hits)} files named {file_name} in it')
    return follow(hits[0]), osp.relpath(hits[0], root)


def extract_originals(rows, cache):
    """Copy each photo of ``rows`` out of its package into ``cache/originals/<file>`` (fetching and unpacking the
    package once); returns {file: record} with package, version, deb, path, sha256, bytes. Cached in
    ``cache/originals.json``; photos already there are not fetched again."""
    index_path = osp.join(cache, 'originals.json')
    index = {}
    if osp.isfile(index_path):
        with open(index_path, encoding='utf-8') as f:
            index = json.load(f)
    orig_dir = osp.join(cache, 'originals')
    os.makedirs(orig_dir, exist_ok=True)

    def cached(row):
        rec = index.get(row['file'])
        return rec is not None and osp.isfile(osp.join(orig_dir, row['file']))

    state = {}
    for package in sorted({r['package'] for r in rows}):
        todo = [r for r in rows if r['package'] == package and not cached(r)]
        if not todo:
            continue
        deb = fetch_deb(package, osp.join(cache, 'debs'), state)
        version = _run(['dpkg-deb', '-f', deb, 'Version']).stdout.strip()
        tmp = tempfile.mkdtemp(prefix=f'unpack_{package}_', dir=cache)
        try:
            proc = _run(['dpkg-deb', '-x', deb, tmp])
            if proc.returncode != 0:
                raise RuntimeError(f'dpkg-deb -x {deb} failed: {proc.stderr[-2000:]}')
            for row in todo:
                inner = _inner_path(row)
                src, inner = _resolve(tmp, inner, osp.basename(inner))
                with open(src, 'rb') as f:
                    data = f.read()
                member = None
                if inner.endswith('.edj'):
                    data, member = eet_entry(data, EET_PHOTO_ENTRY), EET_PHOTO_ENTRY
                    if not data.startswith(b'\xff\xd8'):
                        raise ValueError(f'{deb}:{inner}:{member} is no JPEG')
                write_bytes(osp.join(orig_dir, row['file']), data)
                index[row['file']] = {'package': package, 'version': version, 'deb': osp.basename(deb),
                                      'path': '/' + inner, 'eet_entry': member,
                                      'sha256_original': hashlib.sha256(data).hexdigest(), 'bytes': len(data)}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        write_json(index_path, index, indent=1, sort_keys=True)
    return {r['file']: index[r['file']] for r in rows}


def to_hr(src, max_side):
    """8-bit RGB-ordered (stored as BGR for cv2) image of ``src``, MATLAB-bicubic downscaled so that the long
    side is at most ``max_side`` (0: keep). Returns (image, factor)."""
    from basicsr.utils.matlab_functions import imresize
    img = cv2.imread(src, cv2.IMREAD_COLOR)  # gray -> 3 channels, alpha dropped, 16 bit -> 8 bit, EXIF rotation
    if img is None:
        raise ValueError(f'cannot decode {src}')
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img, 1.0
    factor = max_side / max(h, w)
    out = imresize(img.astype(np.float32) / 255., factor)
    out = np.clip(np.round(out * 255.), 0, 255).astype(np.uint8)
    # basicsr sizes the output ceil(size * factor): never more than max_side on the long side
    limit_h, limit_w = math.ceil(h * factor - 1e-6), math.ceil(w * factor - 1e-6)
    return np.ascontiguousarray(out[:limit_h, :limit_w]), factor


def _old_provenance(output, photos, max_side, hr_format):
    """The provenance dict in ``output`` when it was written for these photos, max side and HR format, else None.
    Another selection, size or format removes this script's derived folders there (stale tiles would otherwise
    stay in the LMDBs)."""
    prov = osp.join(output, 'provenance.json')
    if not osp.isfile(prov):
        return None
    with open(prov, encoding='utf-8') as f:
        old = json.load(f)
    if (sorted(p['file'] for p in old.get('photos', [])) == sorted(photos) and old.get('max_side') == max_side
            and old.get('hr_format', 'png') == hr_format):
        return old
    print(f'[photo data] {output}: other photos, max side or HR format than last time; rebuilding', flush=True)
    for sub in ('train_HR', 'holdout_HR', 'train', 'holdout'):
        shutil.rmtree(osp.join(output, sub), ignore_errors=True)
    os.remove(prov)
    return None


def _complete(output, prov):
    """Whether every HR file that ``prov`` lists is in ``output`` with the sha256 it records."""
    return all(osp.isfile(osp.join(output, p['hr'])) and sha256_of(osp.join(output, p['hr'])) == p['sha256_hr']
               for p in prov['photos'])


HR_FORMATS = {'webp': ('.webp', [cv2.IMWRITE_WEBP_QUALITY, 101]),  # quality > 100: lossless
              'png': ('.png', [cv2.IMWRITE_PNG_COMPRESSION, 9])}


def write_debian_hr(output, manifest=DEFAULT_MANIFEST, cache='datasets/debian_cache', packages=None,
                    skip=DEFAULT_SKIP, limit=None, max_side=1024, hr_format='webp'):
    """Fetch, extract and convert the selected photos into ``output/train_HR`` and ``output/holdout_HR``
    (lossless ``hr_format``: 'webp' or 'png'). Returns the provenance dict (also written as provenance.json and
    PROVENANCE.md). Served from ``output`` alone, without fetching, when its provenance matches (see the top)."""
    if hr_format not in HR_FORMATS:
        raise PhotoSetError(f'--hr-format must be one of {sorted(HR_FORMATS)}, got {hr_format!r}')
    rows = read_manifest(manifest)
    chosen = select_packages(rows, packages, skip, limit)
    rows = [r for r in rows if r['package'] in chosen]
    if not rows:
        raise PhotoSetError(f'{manifest}: no photo selected (packages {chosen})')
    old = _old_provenance(output, [r['file'] for r in rows], max_side, hr_format)
    if old is not None and _complete(output, old):
        print(f'[photo data] {output}: all {len(rows)} HR photos present with their sha256; nothing fetched',
              flush=True)
        return old
    originals = extract_originals(rows, osp.abspath(cache))
    ext, params = HR_FORMATS[hr_format]
    photos = []
    for row in rows:
        folder = osp.join(output, f"{row['split']}_HR")
        os.makedirs(folder, exist_ok=True)
        hr_path = osp.join(folder, osp.splitext(row['file'])[0] + ext)
        src = osp.join(osp.abspath(cache), 'originals', row['file'])
        done = cv2.imread(hr_path, cv2.IMREAD_UNCHANGED) if osp.isfile(hr_path) else None  # None: cut short
        if done is not None:
            h, w = done.shape[:2]
        else:
            img, _ = to_hr(src, max_side)
            h, w = img.shape[:2]
            ok, encoded = cv2.imencode(ext, img, params)
            if not ok:
                raise OSError(f'could not encode {hr_path}')
            write_bytes(hr_path, encoded.tobytes())
        orig = originals[row['file']]
        photos.append({'file': row['file'], 'split': row['split'], 'package': orig['package'],
                       'version': orig['version'], 'path': orig['path'], 'eet_entry': orig['eet_entry'],
                       'licence': row['licence'], 'original_size': [int(row['width']), int(row['height'])],
                       'sha256_original': orig['sha256_original'],
                       'hr': osp.relpath(hr_path, output), 'hr_size': [w, h], 'sha256_hr': sha256_of(hr_path),
                       'downscale': round(max(h, w) / max(int(row['width']), int(row['height'])), 6)})
    prov = {'source': 'debian', 'manifest': osp.abspath(manifest), 'max_side': max_side, 'hr_format': hr_format,
            'holdout_rule': 'the photos named in mrnet_arch/photo_data/holdout.txt are held out',
            'packages': chosen, 'photos': photos}
    write_json(osp.join(output, 'provenance.json'), prov, indent=1)
    _write_provenance_md(output, prov)
    return prov


def _write_provenance_md(output, prov):
    lines = ['# Provenance of the photos in this folder', '',
             'Genuine photographs shipped in Debian (bookworm) packages, fetched with `apt-get download`, unpacked '
             'with `dpkg-deb -x` by `mrnet prepare photos --source debian`. '
             f"HR = 8-bit RGB, MATLAB-bicubic downscaled to a long side of at most {prov['max_side']} px "
             f"(0: original size), stored losslessly as {prov.get('hr_format', 'png')}. Split by photo: "
             + prov['holdout_rule'] + '. Licences as in the manifest; '
             'credit them with any result; ship derived weights, not the photos.', '',
             '| Photo | Split | Package (version) | Path in package | Licence | Original | HR | sha256 original | '
             'sha256 HR |', '|---|---|---|---|---|---|---|---|---|']
    for p in prov['photos']:
        path = p['path'] + (f" (Eet `{p['eet_entry']}`)" if p['eet_entry'] else '')
        lines.append(f"| {p['file']} | {p['split']} | {p['package']} ({p['version']}) | `{path}` | {p['licence']} | "
                     f"{p['original_size'][0]}x{p['original_size'][1]} | {p['hr_size'][0]}x{p['hr_size'][1]} | "
                     f"`{p['sha256_original']}` | `{p['sha256_hr']}` |")
    write_text(osp.join(output, 'PROVENANCE.md'), '\n'.join(lines) + '\n')
