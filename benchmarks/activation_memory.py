"""Measure the peak memory of one MRNet forward on the CPU at a few input sizes, per input pixel, for the memory
model of ``mrnet_arch.inference.memory`` (results file under ``benchmarks/results/``)."""
import argparse
import gc
import json
import os
import subprocess
import sys

import torch

import mrnet_arch  # noqa: F401
from mrnet_arch.inference.memory import estimate_forward_bytes
from mrnet_arch.measurement.machine import machine_info
from mrnet_arch.storage.files import write_json
from mrnet_arch.storage.weights import build_network

CONFIGS = {
    'demo_x2': dict(num_feat=32, num_block=4, upscale=2, num_recursion=3),
    'paper_x2': dict(num_feat=64, num_block=10, upscale=2, num_recursion=4),
    'paper_x4': dict(num_feat=64, num_block=10, upscale=4, num_recursion=8),
}


def status_kib(field):
    with open('/proc/self/status', encoding='ascii') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rise_bytes(net, x, precision):
    gc.collect()
    with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
        f.write('5')
    before = status_kib('VmRSS')
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=precision == 'bf16'):
        y = net(x)
    peak = status_kib('VmHWM')
    del y
    return (peak - before) * 1024


def measure(name, precision, size):
    """Peak RSS rise of one forward of config ``name`` on a ``size`` x ``size`` input, and the model's estimate."""
    config = dict(type='MRNet', num_in_ch=3, num_out_ch=3, img_range=255., rgb_mean=[0.4488, 0.4371, 0.404],
                  **CONFIGS[name])
    net = build_network(config).eval()
    with torch.inference_mode():
        net(torch.rand(1, 3, 16, 16))  # one-time allocations out of the measurement
    x = torch.rand(1, 3, size, size)
    rise = peak_rise_bytes(net, x, precision)
    est = estimate_forward_bytes(config, size, size)
    return {'config': name, 'precision': precision, 'size': size, 'peak_rise_bytes': rise,
            'bytes_per_input_pixel': rise / size**2, 'model_estimate_bytes': est,
            'estimate_over_measured': est / rise if rise else None}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--sizes', type=int, nargs='+', default=[128, 256, 512])
    p.add_argument('--one', help='internal: measure NAME,PRECISION,SIZE in this process')
    p.add_argument('--output', default='benchmarks/results/activation_memory_cpu.json')
    args = p.parse_args()
    if args.one:
        name, precision, size = args.one.split(',')
        print(json.dumps(measure(name, precision, int(size))))
        return
    rows = []
    for name in CONFIGS:
        for precision in ('fp32', 'bf16'):
            for size in args.sizes:  # a fresh process each: memory freed earlier would hide the peak
                out = subprocess.run([sys.executable, __file__, '--one', f'{name},{precision},{size}'], check=True,
                                     capture_output=True, text=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
                write_json(args.output, {'what': __doc__, 'machine': machine_info(torch.device('cpu')), 'rows': rows,
                                         'argv': sys.argv[1:], 'pid': os.getpid()})  # after each row


if __name__ == '__main__':
    main()
