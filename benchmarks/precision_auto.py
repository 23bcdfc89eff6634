"""Y-PSNR of bf16 against fp32 with the demo weights on the demo's held-out photos (scikit-image's chelsea and
coffee, x2, LR by basicsr's MATLAB-bicubic ``imresize``), and the time of each: the measurement that decides
``mrnet_arch.inference.precision.AUTO_BF16``. Writes a JSON results file naming the machine."""
import argparse
import os
import sys
import time

import numpy as np
import torch

import mrnet_arch  # noqa: F401
from mrnet_arch.dataprep.prepare import bicubic_downscale
from mrnet_arch.inference.precision import AUTO_BF16_TOLERANCE_DB
from mrnet_arch.inference.upscaler import Upscaler
from mrnet_arch.measurement.evaluation import y_metrics
from mrnet_arch.measurement.machine import machine_info, native_bf16
from mrnet_arch.project import package_dir
from mrnet_arch.storage.files import write_json

SCALE = 2
PHOTOS = ('chelsea', 'coffee')


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--weights', default=os.path.join(package_dir(), 'demo_weights', 'MRNet_demo_x2.pth'))
    p.add_argument('--output', default='benchmarks/results/precision_auto_cpu.json')
    args = p.parse_args()
    from skimage import data
    rows = {}
    for name in PHOTOS:
        rgb = getattr(data, name)()
        h, w = rgb.shape[0] // SCALE * SCALE, rgb.shape[1] // SCALE * SCALE
        gt = np.ascontiguousarray(rgb[:h, :w, ::-1])  # BGR, mod-cropped
        lr = bicubic_downscale(gt, SCALE)
        for precision in ('fp32', 'bf16'):
            up = Upscaler.from_weights(args.weights, device='cpu', precision=precision)
            up.upscale(lr[:32, :32])  # warm-up
            t0 = time.perf_counter()
            sr = up.upscale(lr)
            seconds = time.perf_counter() - t0
            rows.setdefault(name, {})[precision] = dict(y_metrics(sr, gt, SCALE), seconds=seconds)
            print(name, precision, rows[name][precision], flush=True)
    mean = {prec: float(np.mean([rows[n][prec]['psnr'] for n in PHOTOS])) for prec in ('fp32', 'bf16')}
    diffs = {n: float(rows[n]['bf16']['psnr'] - rows[n]['fp32']['psnr']) for n in PHOTOS}
    worst = float(max(abs(d) for d in diffs.values()))
    result = {'what': __doc__, 'weights': args.weights, 'scale': SCALE, 'crop_border': SCALE, 'photos': rows,
              'mean_psnr': mean, 'bf16_minus_fp32_db': diffs, 'max_abs_difference_db': worst,
              'tolerance_db': AUTO_BF16_TOLERANCE_DB, 'bf16_within_tolerance': bool(worst <= AUTO_BF16_TOLERANCE_DB),
              'native_bf16': native_bf16(), 'machine': machine_info(torch.device('cpu')), 'argv': sys.argv[1:]}
    write_json(args.output, result)
    print(f'bf16 - fp32 Y-PSNR: {diffs} (max |difference| {worst:.4f} dB, tolerance {AUTO_BF16_TOLERANCE_DB} dB)')


if __name__ == '__main__':
    main()
