"""The machine a measurement ran on, for results files (benchmarks, the demo, model provenance)."""
import datetime
import os
import platform

import torch


def cpu_model():
    """The CPU model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


CPU_FEATURES = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile')


def cpu_flags():
    """The CPU's feature flags (``/proc/cpuinfo``), an empty set where that file is missing."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as f:
            return next((set(line.split(':', 1)[1].split()) for line in f if line.startswith('flags')), set())
    except OSError:
        return set()


def cpu_features():
    """The flags that matter for the figures of this project (AVX2, AVX-512, AVX512-BF16, AMX) that the CPU has."""
    flags = cpu_flags()
    return [f for f in CPU_FEATURES if f in flags]


def native_bf16():
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16) and torch's oneDNN uses it.

    The CPU flags come from ``/proc/cpuinfo`` (``amx_bf16``, ``avx512_bf16``); torch must also report oneDNN
    bf16 support (``torch.ops.mkldnn._is_mkldnn_bf16_supported``, true on any AVX-512 CPU, so not enough alone).

    Returns:
        bool: True for native bf16.
    """
    try:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        supported = False
    return supported and bool(cpu_flags() & {'amx_bf16', 'avx512_bf16'})


def machine_info(device):
    """CPU, cores, load, torch/CUDA versions and the GPU name, with the date (UTC), and whether the CPU computes
    bfloat16 natively (``native_bf16_cpu``: AMX or AVX512-BF16, ``native_bf16``) and torch's CPU capability."""
    info = {
        'date_utc': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S'),
        'cpu_model': cpu_model(),
        'cpu_count': os.cpu_count(),
        'torch_threads': torch.get_num_threads(),
        'load_average_1_5_15': list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
        'python': platform.python_version(),
        'torch': torch.__version__,
        'cuda_build': torch.version.cuda,
        'platform': platform.platform(),
        'device': str(device),
        'device_name': cpu_model(),
        'native_bf16_cpu': native_bf16(),
        'torch_cpu_capability': torch.backends.cpu.get_cpu_capability(),
        'cpu_features': cpu_features(),
    }
    try:
        import basicsr
        info['basicsr'] = basicsr.__version__
    except Exception:  # noqa: BLE001
        info['basicsr'] = None
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        info['device_name'] = props.name
        info['gpu_memory_gib'] = round(props.total_memory / 2**30, 1)
        info['cudnn'] = torch.backends.cudnn.version()
        info['tf32_matmul'] = torch.backends.cuda.matmul.allow_tf32
        info['tf32_cudnn'] = torch.backends.cudnn.allow_tf32
    return info
