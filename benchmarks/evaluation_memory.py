"""Host memory that BasicSR's test pipeline (``mrnet test``) holds per GT pixel, beside the network's forward.
Writes a JSON results file naming the machine.

BasicSR's ``SRModel`` keeps the LQ, GT and output of an image as whole float tensors, and its validation turns
output and GT into images (``tensor2img``) and scores them (``calculate_psnr``, ``calculate_ssim``) in float64.
For each size, a child process runs ``mrnet test`` (demo weights, the demo's test options: PSNR and SSIM on Y,
images saved) on one photo, scikit-image's chelsea resized to SIZE x SIZE (bicubic) and laid out by
``mrnet prepare benchmark``, with ``$MRNET_MAX_MEMORY`` small so that the forward runs in small tiles. The child
reports its RSS after imports and its peak RSS (``ru_maxrss``); the growth between two sizes over their pixel
difference is the memory held per GT pixel, which ``preflight/pipeline_memory.py`` uses to refuse test images that
would not fit.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import yaml
from big_image_memory import make_photo

CHILD = r'''
import json, resource, sys
from mrnet_arch.cli import main
import basicsr.test, torch  # noqa: F401  (imported before the RSS is read)
status = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)
rss = int(status['VmRSS'].split()[0]) * 1024
main(['test', '-opt', sys.argv[1]])
print(json.dumps({'rss_after_imports_bytes': rss,
                  'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
'''


def run_size(size, weights, workdir, forward_budget):
    """Peak RSS of ``mrnet test`` on one ``size`` x ``size`` GT photo (x2)."""
    from mrnet_arch.dataprep.prepare import prepare_benchmark
    from mrnet_arch.project import package_dir
    root = os.path.join(workdir, str(size))
    os.makedirs(os.path.join(root, 'raw'))
    make_photo(os.path.join(root, 'raw', 'photo.jpg'), size)
    prepare_benchmark(os.path.join(root, 'raw'), os.path.join(root, 'datasets', 'photo'), [2])
    with open(os.path.join(package_dir(), '..', 'options', 'demo', 'test_MRNet_demo_x2.yml'), encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt['datasets']['test_1'].update(dataroot_gt='datasets/photo/GTmod12', dataroot_lq='datasets/photo/LRbicx2')
    opt['path']['pretrain_network_g'], opt['num_gpu'] = weights, 0
    with open(os.path.join(root, 'test.yml'), 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f)
    env = dict(os.environ, MRNET_ROOT=root, MRNET_MAX_MEMORY=forward_budget, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', CHILD, os.path.join(root, 'test.yml')], capture_output=True,
                          text=True, cwd=root, env=env)
    if proc.returncode != 0:
        raise SystemExit(f'mrnet test on the {size}x{size} photo failed:\n{proc.stderr[-3000:]}')
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(size=size, gt_pixels=(size // 12 * 12)**2,
               growth_bytes=row['peak_rss_bytes'] - row['rss_after_imports_bytes'],
               tile_lines=[line for line in proc.stderr.splitlines() if 'tiles of' in line][:1])
    return row


def main():
    from mrnet_arch.measurement.machine import machine_info
    from mrnet_arch.project import package_dir
    from mrnet_arch.storage.files import write_json
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[1200, 2400, 3600])
    p.add_argument('--forward-budget', default='64M', help='$MRNET_MAX_MEMORY of the runs (forward tiles)')
    p.add_argument('--weights', default=os.path.join(package_dir(), 'demo_weights', 'MRNet_demo_x2.pth'))
    p.add_argument('--output', required=True)
    args = p.parse_args()
    machine = machine_info(torch.device('cpu'))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sorted(args.sizes):
            rows.append(run_size(size, args.weights, tmp, args.forward_budget))
            print(json.dumps(rows[-1]), flush=True)
    slopes = [(b['growth_bytes'] - a['growth_bytes']) / (b['gt_pixels'] - a['gt_pixels'])
              for a, b in zip(rows, rows[1:])]
    result = {'what': __doc__.split('\n\n')[0], 'weights': args.weights, 'forward_budget': args.forward_budget,
              'runs': rows, 'bytes_per_gt_pixel_between_sizes': slopes, 'machine_at_start': machine,
              'argv': sys.argv[1:], 'load_average_at_end': list(os.getloadavg())}
    print(json.dumps({'bytes_per_gt_pixel_between_sizes': slopes}))
    write_json(args.output, result)


if __name__ == '__main__':
    main()
