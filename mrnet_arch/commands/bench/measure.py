"""Measurements of ``mrnet bench``: latency and peak memory of a prepared network (``FastSR``).

Latency: CUDA events on GPU, ``time.perf_counter`` on CPU, after warm-up runs. Peak memory:
``torch.cuda.max_memory_allocated`` on GPU; on CPU the rise of the process's peak RSS during one forward, read
from ``/proc/self/status`` after resetting it, or 'n/a' where that is not possible.
"""
import re
import time

import torch

from mrnet_arch.inference.device import sync


def _proc_status_kib(field):
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            match = re.search(rf'^{field}:\s+(\d+) kB', f.read(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss():
    """Reset the kernel's peak RSS (VmHWM) of this process; False where that is not possible."""
    try:
        with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
            f.write('5')
    except OSError:
        return False
    return _proc_status_kib('VmHWM') is not None


def measure_latency(fast, x, warmup, repeat):
    """Per-call times of ``fast(x)`` after ``warmup`` calls.

    Args:
        fast (FastSR): The prepared network (its ``device`` is used).
        x (torch.Tensor): The input batch.
        warmup (int): Untimed calls first.
        repeat (int): Timed calls.

    Returns:
        list[float]: The times in ms (CUDA events on GPU, ``time.perf_counter`` elsewhere).
    """
    device = fast.device
    x = x.to(device)
    for _ in range(warmup):
        fast(x)
    sync(device)
    times = []
    for _ in range(repeat):
        if device.type == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fast(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fast(x)
            times.append((time.perf_counter() - t0) * 1000)
    return times


def measure_peak_memory(fast, x):
    """Peak memory of one forward.

    Args:
        fast (FastSR): The prepared network.
        x (torch.Tensor): The input batch.

    Returns:
        dict: ``mib`` (None if unknown) and ``kind`` (what was measured).
    """
    device = fast.device
    x = x.to(device)
    if device.type == 'cuda':
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        fast(x)
        sync(device)
        return {'mib': torch.cuda.max_memory_allocated(device) / 2**20,
                'kind': 'torch.cuda.max_memory_allocated (weights, input and activations)'}
    if not _reset_peak_rss():
        return {'mib': None, 'kind': 'n/a (no /proc/self/clear_refs on this system)'}
    before = _proc_status_kib('VmRSS')
    fast(x)
    peak = _proc_status_kib('VmHWM')
    return {'mib': max(peak - before, 0) / 1024, 'kind': 'peak RSS rise during one forward (VmHWM - VmRSS before)'}
