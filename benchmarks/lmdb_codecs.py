"""Decode time and size of the LMDB value codecs (``mrnet_arch.dataprep.lmdb_store.CODECS``) on real photos, and the
size of a DIV2K-sized set extrapolated from them.

The sample: scikit-image's photos (``mrnet_arch.dataprep.photo_sets.TRAIN_PHOTOS``) cut as ``mrnet prepare div2k``
cuts DIV2K (480 px HR sub-images, step 240, their x2, x3 and x4 MATLAB-bicubic LR). Every sub-image is encoded
with each codec; the decode time is the median over sub-images of the best of ``--repeats`` decodes with
BasicSR's ``imfrombytes`` (uint8), and for BMP also of ``CropFirstPairedImageDataset``'s in-place view. The
DIV2K estimate multiplies the mean size per sub-image by the 32,592 sub-images that BasicSR's
``basicsr/data/meta_info/meta_info_DIV2K800sub_GT.txt`` lists (DIV2K's 800 training images)::

    python benchmarks/lmdb_codecs.py --name lmdb_codecs_cpu_<date>
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

import mrnet_arch  # noqa: E402,F401  (compat before basicsr)
from mrnet_arch.measurement.machine import machine_info  # noqa: E402
from mrnet_arch.storage.files import write_json, write_text  # noqa: E402

DIV2K_SUB_IMAGES = 32592  # lines of BasicSR's meta_info_DIV2K800sub_GT.txt
SCALES = (2, 3, 4)
BASELINE = 'png'  # what mrnet prepare div2k stored before (BasicSR's make_lmdb_from_imgs default)


def _best(func, repeats):
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data', default=osp.join(ROOT, 'datasets', 'codec_bench_480'), help='work folder')
    p.add_argument('--repeats', type=int, default=5, help='decodes per sub-image (the best one counts)')
    p.add_argument('--note', default='', help='a remark for the results file (e.g. what else ran on the machine)')
    p.add_argument('--output-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--name', default='lmdb_codecs')
    args = p.parse_args(argv)
    import cv2
    import torch

    from basicsr.utils import imfrombytes
    from mrnet_arch.data.crop_first_dataset import bmp_pixels
    from mrnet_arch.dataprep.lmdb_store import CODECS, encode
    from mrnet_arch.dataprep.photo_sets import TRAIN_PHOTOS, write_skimage_photos
    from mrnet_arch.dataprep.prepare import prepare_div2k
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    hr = osp.join(args.data, 'HR')
    if not osp.isdir(hr):
        write_skimage_photos(TRAIN_PHOTOS, hr)
    paths = prepare_div2k(hr, osp.join(args.data, 'sub'), scales=SCALES, workers=1)
    machine = machine_info(torch.device('cpu'))
    kinds = {'HR': paths['hr'][0]}
    kinds.update({f'LR x{s}': paths[s][0] for s in SCALES})
    rows = []
    for kind, folder in kinds.items():
        names = sorted(os.listdir(folder))
        imgs = [cv2.imread(osp.join(folder, n), cv2.IMREAD_UNCHANGED) for n in names]
        for codec in CODECS:
            values = [encode(img, codec) for img in imgs]
            decode = [_best(lambda v=v: imfrombytes(v), args.repeats) for v in values]
            row = {'kind': kind, 'codec': codec, 'sub_images': len(values),
                   'size': f'{imgs[0].shape[1]}x{imgs[0].shape[0]}',
                   'mean_bytes': statistics.mean(len(v) for v in values),
                   'decode_ms_median': 1e3 * statistics.median(decode)}
            if codec == 'bmp':
                row['view_ms_median'] = 1e3 * statistics.median(
                    [_best(lambda v=v: bmp_pixels(v), args.repeats) for v in values])
            rows.append(row)
            print(row, flush=True)
    end_load = list(os.getloadavg())
    by = {(r['kind'], r['codec']): r for r in rows}
    totals = {codec: sum(by[k, codec]['mean_bytes'] for k in kinds) * DIV2K_SUB_IMAGES for codec in CODECS}
    lines = [f"# LMDB value codecs: decode time and size, {machine['device_name']}", '',
             f"- Date (UTC): {machine['date_utc']}; {machine['cpu_count']} cores "
             f"({', '.join(machine['cpu_features'])}); "
             f"torch {machine['torch']}; "
             f"OpenCV {cv2.__version__}; 1 thread",
             f"- Load average (1, 5, 15 min) at the start {[round(x, 2) for x in machine['load_average_1_5_15']]}, "
             f"at the end {[round(x, 2) for x in end_load]}{'; ' + args.note if args.note else ''}",
             f"- Sample: scikit-image's photos {', '.join(TRAIN_PHOTOS)}, cut by `prepare_div2k` (480 px HR "
             f"sub-images, step 240; {by['HR', 'bmp']['sub_images']} HR sub-images and their x2/x3/x4 LR)",
             f'- Decode: median over sub-images of the best of {args.repeats} `imfrombytes` (uint8) calls; "view": '
             "BMP read in place by CropFirstPairedImageDataset", '',
             '| sub-image | codec | mean size | decode (ms) | vs png (level 1) |', '|---|---|---|---|---|']
    for kind in kinds:
        base = by[kind, BASELINE]['decode_ms_median']
        for codec in CODECS:
            r = by[kind, codec]
            lines.append(f"| {kind} {r['size']} | {codec} | {r['mean_bytes'] / 1024:,.0f} KiB | "
                         f"{r['decode_ms_median']:.3f} | {base / r['decode_ms_median']:.1f}x faster |")
            if 'view_ms_median' in r:
                lines.append(f"| {kind} {r['size']} | bmp, view | (same) | {r['view_ms_median']:.4f} | "
                             f"{base / r['view_ms_median']:.0f}x faster |")
    lines += ['', f'DIV2K-sized set ({DIV2K_SUB_IMAGES:,} HR sub-images and the LR of x2, x3 and x4), extrapolated '
              'from the mean sizes above:', '', '| codec | HR + LR x2/x3/x4 LMDB values | vs png (level 1) |',
              '|---|---|---|']
    for codec in CODECS:
        lines.append(f'| {codec} | {totals[codec] / 2**30:.1f} GiB | {totals[codec] / totals[BASELINE]:.2f}x |')
    text = '\n'.join(lines) + '\n'
    os.makedirs(args.output_dir, exist_ok=True)
    write_json(osp.join(args.output_dir, args.name + '.json'),
               {'machine': machine, 'load_average_end': end_load, 'settings': vars(args), 'rows': rows,
                'div2k_sub_images': DIV2K_SUB_IMAGES, 'div2k_bytes': totals}, indent=1)
    write_text(osp.join(args.output_dir, args.name + '.md'), text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
