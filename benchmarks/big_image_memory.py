"""Peak memory of ``mrnet infer`` on a large photo under an address-space limit, and the time of tiled against
untiled inference on a size where both fit. Writes a JSON results file naming the machine.

The photo is scikit-image's chelsea resized to SIZE x SIZE (bicubic) and saved as JPEG (quality 95). A child
process imports everything, then limits its address space (``RLIMIT_AS``) to its size then plus ``--rss-limit``,
runs ``mrnet infer`` (demo weights, default options: the budget follows from the limit) and reports its peak RSS
(``ru_maxrss``) and time.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

# A child process: ``python -c CHILD LIMIT COMMAND ARGS...`` runs ``mrnet COMMAND ARGS...`` with its address space
# limited to its size after the imports plus LIMIT bytes, prints its rc, time and peak RSS as JSON and exits with
# that rc.
CHILD = r'''
import json, resource, sys, time
from mrnet_arch.cli import main
from mrnet_arch.commands import infer  # noqa: F401  (imported before the limit)
import basicsr.test, torch  # noqa: F401
limit, argv = int(sys.argv[1]), sys.argv[2:]
status = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)
size, rss = (int(status[k].split()[0]) * 1024 for k in ('VmSize', 'VmRSS'))
resource.setrlimit(resource.RLIMIT_AS, (size + limit, resource.RLIM_INFINITY))
t0 = time.perf_counter()
rc = main(argv)
print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t0, 'rss_before_bytes': rss,
                  'address_space_limit_bytes': size + limit,
                  'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
sys.exit(rc)
'''


def make_photo(path, size):
    """chelsea resized to ``size`` x ``size`` (bicubic), saved as JPEG quality 95."""
    import cv2
    from skimage import data
    img = cv2.resize(np.ascontiguousarray(data.chelsea()[:, :, ::-1]), (size, size), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 95])


def limited_infer(size, rss_limit, weights, workdir, extra=()):
    """Run ``mrnet infer`` on a ``size`` x ``size`` photo in a child limited to ``rss_limit`` bytes of growth."""
    src, out = os.path.join(workdir, f'photo{size}.jpg'), os.path.join(workdir, f'out{size}')
    make_photo(src, size)
    proc = subprocess.run([sys.executable, '-c', CHILD, str(rss_limit), 'infer', '--weights', weights, '--input', src,
                           '--output', out, '--device', 'cpu', *extra], capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith('{') else {'rc': proc.returncode}
    result.update(size=size, rss_limit_bytes=rss_limit, stderr_tail=proc.stderr[-1500:],
                  tile_lines=[line for line in proc.stderr.splitlines() if 'tiles of' in line])
    return result


def tiled_vs_untiled(size, weights, max_memory):
    """Seconds of a whole forward and of a tiled one (``max_memory`` forces tiles), and their largest difference."""
    import cv2
    from skimage import data

    from mrnet_arch.inference.upscaler import Upscaler
    img = cv2.resize(np.ascontiguousarray(data.chelsea()[:, :, ::-1]), (size, size), interpolation=cv2.INTER_CUBIC)
    row = {'size': size}
    outs = {}
    for name, budget in (('untiled', '1T'), ('tiled', max_memory)):
        messages = []
        up = Upscaler.from_weights(weights, device='cpu', max_memory=budget, log=messages.append)
        up.upscale(img[:32, :32])
        t0 = time.perf_counter()
        outs[name] = up.upscale(img)
        row[name] = {'seconds': time.perf_counter() - t0, 'tile': up.last_tile, 'precision': up.precision,
                     'log': messages}
    row['max_abs_difference_grey_levels'] = int(np.abs(outs['untiled'].astype(int) - outs['tiled']).max())
    return row


def main():
    from mrnet_arch.measurement.machine import machine_info
    from mrnet_arch.models.mrnet_tiling import parse_memory
    from mrnet_arch.project import package_dir
    from mrnet_arch.storage.files import write_json
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[4000])
    p.add_argument('--rss-limits', nargs='+', default=['3G'], help='one per size')
    p.add_argument('--timing-size', type=int, default=0, help='also time tiled against untiled at this size')
    p.add_argument('--timing-max-memory', default='256M')
    p.add_argument('--weights', default=os.path.join(package_dir(), 'demo_weights', 'MRNet_demo_x2.pth'))
    p.add_argument('--output', required=True)
    args = p.parse_args()
    machine = machine_info(torch.device('cpu'))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, limit in zip(args.sizes, args.rss_limits):
            rows.append(limited_infer(size, parse_memory(limit), args.weights, tmp))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != 'stderr_tail'}), flush=True)
    result = {'what': __doc__.split('\n\n')[0], 'weights': args.weights, 'limited_runs': rows,
              'machine_at_start': machine, 'argv': sys.argv[1:]}
    if args.timing_size:
        result['tiled_vs_untiled'] = tiled_vs_untiled(args.timing_size, args.weights, args.timing_max_memory)
        print(json.dumps(result['tiled_vs_untiled']), flush=True)
    result['load_average_at_end'] = list(os.getloadavg())
    write_json(args.output, result)


if __name__ == '__main__':
    main()
