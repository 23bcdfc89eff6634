"""Throughput of ``mrnet prepare div2k`` beside BasicSR's own route (``scripts/data_preparation/extract_subimages.py``
then ``create_lmdb.py``), on the same photos, in one run.

Input, the same for both: scikit-image's photos (``mrnet_arch.dataprep.photo_sets.TRAIN_PHOTOS``) cropped to a multiple
of 12 as DIV2K-like HR images (``0001.png``, ...) and their MATLAB-bicubic x2/x3/x4 LR images in DIV2K's official
layout (``DIV2K_train_LR_bicubic/X2/0001x2.png``, ...). Both routes cut 480 px HR sub-images with step 240 and the
matching LR sub-images, and pack the four folders into LMDBs:

- ``mrnet prepare div2k --hr HR --lr-root ROOT --workers N`` (BMP LMDB values by default, ``--lmdb-codec`` given);
- BasicSR's two scripts, from a clone of BasicSR (``--basicsr DIR``; they are not in the PyPI wheel), run as copies
  in a temporary folder with their DIV2K paths pointed at the same input and ``n_thread`` set to N. They import
  basicsr, which on PyPI basicsr 1.4.2 needs the import alias ``mrnet_arch`` installs, so they run after
  ``import mrnet_arch``.

Each route runs in its own process; the wall time includes start-up. Images/s counts HR images; MB/s counts the
bytes of the input images (HR and LR) per second::

    python benchmarks/prepare_throughput.py --basicsr /work/basicsr-scripts --workers 2 --name prepare_cpu_<date>
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

import mrnet_arch  # noqa: E402,F401  (compat before basicsr)
from mrnet_arch.measurement.machine import machine_info  # noqa: E402
from mrnet_arch.storage.files import write_json, write_text  # noqa: E402

SCALES = (2, 3, 4)
SCRIPTS = {'extract_subimages.py': [], 'create_lmdb.py': ['--dataset', 'div2k']}  # script -> its arguments


def make_input(folder):
    """DIV2K-like HR images and official-layout LR images from those of scikit-image's photos that hold a 480 px
    sub-image; returns the HR file count."""
    import cv2

    from mrnet_arch.dataprep.photo_sets import TRAIN_PHOTOS, write_skimage_photos
    from mrnet_arch.dataprep.prepare import bicubic_downscale, mod_crop
    raw = osp.join(folder, 'raw')
    write_skimage_photos(TRAIN_PHOTOS, raw)
    hr_dir = osp.join(folder, 'DIV2K', 'DIV2K_train_HR')
    os.makedirs(hr_dir, exist_ok=True)
    photos = [cv2.imread(osp.join(raw, name), cv2.IMREAD_UNCHANGED) for name in sorted(os.listdir(raw))]
    for i, photo in enumerate([p for p in photos if min(p.shape[:2]) >= 480 + 12], 1):  # one 480 px tile at least
        hr = mod_crop(photo, 12).copy()
        cv2.imwrite(osp.join(hr_dir, f'{i:04d}.png'), hr)
        for s in SCALES:
            lr_dir = osp.join(folder, 'DIV2K', 'DIV2K_train_LR_bicubic', f'X{s}')
            os.makedirs(lr_dir, exist_ok=True)
            cv2.imwrite(osp.join(lr_dir, f'{i:04d}x{s}.png'), bicubic_downscale(hr, s))
    return len(os.listdir(hr_dir))


def _du(path):
    return sum(osp.getsize(osp.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _run(cmd, cwd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f'prepare_throughput.py: {" ".join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
    return seconds


def basicsr_route(basicsr, data_root, workers, tmp):
    """Copies of BasicSR's two scripts, their ``datasets/DIV2K/`` pointed at ``data_root`` (which holds the input;
    they write beside it) and ``n_thread`` set to ``workers``; returns the seconds of each."""
    seconds = {}
    for name, script_args in SCRIPTS.items():
        src = osp.join(basicsr, 'scripts', 'data_preparation', name)
        if not osp.isfile(src):
            raise SystemExit(f'prepare_throughput.py: --basicsr {basicsr}: no scripts/data_preparation/{name}')
        with open(src, encoding='utf-8') as f:
            text = f.read()
        if "'datasets/DIV2K/" not in text:
            raise SystemExit(f'prepare_throughput.py: {src} no longer names datasets/DIV2K/; update this script')
        text = text.replace("'datasets/DIV2K/", repr(data_root.rstrip('/') + '/')[:-1])
        text = text.replace("opt['n_thread'] = 20", f"opt['n_thread'] = {workers}")
        copy = osp.join(tmp, name)
        with open(copy, 'w', encoding='utf-8') as f:
            f.write(text)
        argv = [copy] + script_args
        runner = f'import mrnet_arch, runpy, sys; sys.argv = {argv!r}; runpy.run_path({copy!r}, run_name="__main__")'
        seconds[name] = _run([sys.executable, '-c', runner], tmp)
    return seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--basicsr', required=True, help='a clone of BasicSR (its scripts/data_preparation/)')
    p.add_argument('--workers', type=int, default=2, help='processes for both routes (default: 2)')
    p.add_argument('--lmdb-codec', default='bmp', help='mrnet prepare div2k --lmdb-codec (default: bmp)')
    p.add_argument('--work', default=None, help='work folder (default: a temporary one, removed at the end)')
    p.add_argument('--note', default='', help='a remark for the results file (e.g. what else ran on the machine)')
    p.add_argument('--output-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--name', default='prepare_throughput')
    args = p.parse_args(argv)
    import torch
    work = args.work or tempfile.mkdtemp(prefix='prepare_throughput_')
    try:
        images = make_input(osp.join(work, 'input'))
        input_bytes = _du(osp.join(work, 'input', 'DIV2K'))
        machine = machine_info(torch.device('cpu'))
        theirs = osp.join(work, 'basicsr', 'DIV2K')
        shutil.copytree(osp.join(work, 'input', 'DIV2K'), theirs)
        routes = {}
        out = osp.join(work, 'mrnet', 'DIV2K')
        src = osp.join(work, 'input', 'DIV2K')
        seconds = _run([sys.executable, '-m', 'mrnet_arch', 'prepare', 'div2k', '--hr', osp.join(src, 'DIV2K_train_HR'),
                        '--lr-root', src, '--output', out, '--workers', str(args.workers), '--lmdb-codec',
                        args.lmdb_codec], work)
        routes['mrnet prepare div2k'] = {'seconds': seconds, 'lmdb_bytes': sum(
            _du(osp.join(out, n)) for n in os.listdir(out) if n.endswith('.lmdb'))}
        tmp = osp.join(work, 'scripts')
        os.makedirs(tmp)
        parts = basicsr_route(args.basicsr, theirs, args.workers, tmp)
        routes['BasicSR extract_subimages.py + create_lmdb.py'] = {
            'seconds': sum(parts.values()), 'parts': parts,
            'lmdb_bytes': sum(_du(osp.join(theirs, n)) for n in os.listdir(theirs) if n.endswith('.lmdb'))}
        sub_images = len(os.listdir(osp.join(out, 'DIV2K_train_HR_sub')))
        theirs_sub = len(os.listdir(osp.join(theirs, 'DIV2K_train_HR_sub')))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    end_load = list(os.getloadavg())
    revision = subprocess.run(['git', '-C', args.basicsr, 'log', '-1', '--format=%h %cs'], capture_output=True,
                              text=True).stdout.strip()
    lines = [f"# Data preparation throughput: mrnet prepare div2k and BasicSR's scripts, {machine['device_name']}", '',
             f"- Date (UTC): {machine['date_utc']}; {machine['cpu_count']} cores "
             f"({', '.join(machine['cpu_features'])}); "
             f"torch {machine['torch']}; "
             f"basicsr {machine.get('basicsr')}; BasicSR scripts from the clone at {revision}",
             f"- Load average (1, 5, 15 min) at the start {[round(x, 2) for x in machine['load_average_1_5_15']]}, "
             f"at the end {[round(x, 2) for x in end_load]}{'; ' + args.note if args.note else ''}",
             f"- Input: {images} HR images from scikit-image's photos (cropped to a multiple of 12) and their "
             f"MATLAB-bicubic x2/x3/x4 LR in DIV2K's official layout, {input_bytes / 1e6:.1f} MB of PNG; "
             f'480 px HR sub-images, step 240 ({sub_images} HR sub-images here, {theirs_sub} by BasicSR\'s scripts)',
             f'- {args.workers} processes for each route; mrnet prepare div2k with --lmdb-codec {args.lmdb_codec}, '
             'BasicSR\'s scripts as they are (PNG level 3 sub-images, PNG level 1 LMDB values); wall time of the '
             'whole command, start-up included', '',
             '| route | seconds | HR images/s | input MB/s | LMDB size |', '|---|---|---|---|---|']
    for route, r in routes.items():
        lines.append(f"| {route} | {r['seconds']:.1f} | {images / r['seconds']:.2f} | "
                     f"{input_bytes / 1e6 / r['seconds']:.2f} | {r['lmdb_bytes'] / 1e6:.1f} MB |")
    text = '\n'.join(lines) + '\n'
    os.makedirs(args.output_dir, exist_ok=True)
    write_json(osp.join(args.output_dir, args.name + '.json'),
               {'machine': machine, 'load_average_end': end_load, 'settings': vars(args), 'hr_images': images,
                'input_bytes': input_bytes, 'basicsr_revision': revision, 'routes': routes}, indent=1)
    write_text(osp.join(args.output_dir, args.name + '.md'), text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
