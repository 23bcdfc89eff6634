"""CPU training step of MRNet-S x2 against EDSR-baseline x2 at the paper's batch (16 x 48x48 LR): forward, L1 loss,
backward and Adam step on a fixed batch, in interleaved rounds, on this machine's CPU.

    python benchmarks/cpu_train_step.py [--rounds 5] [--variants fp32 channels_last multiply_add bf16 compile]

Every configuration (model x variant) is built once from the same seed and warmed up with two steps; then each
round times one step of every configuration, in an order that rotates from round to round, so that a burst of
load from another job hits all configurations of a round alike. The MRNet / EDSR-baseline ratio is taken within
each round; the report gives medians, and the ratio of the two models' MACs (``torch.utils.flop_counter`` through
``mrnet_arch.measurement.complexity``) for comparison.

Variants: ``fp32`` (NCHW, what ``mrnet train`` runs by default: ShuffleConv's grouped convolution),
``channels_last``, ``multiply_add`` (NCHW, MRNet's ShuffleConv computed as the T multiply-adds it runs at
inference, ``cpu_bench.py``'s ``ForcedShuffleConv``; EDSR-baseline has no ShuffleConv and runs as ``fp32``),
``bf16`` (autocast, channels_last; only where the CPU computes bfloat16 natively, else skipped with the
reason) and ``compile`` (``torch.compile`` of the NCHW network, inductor, the training step's forward and
backward; NCHW, the faster layout of the training step on the AMD EPYC; its compile time is in the warm-up
time).

Writes ``<name>.json`` and ``<name>.md`` (default ``cpu_train_step_<cpu>_<date>``) in ``--output-dir``.
"""
import argparse
import datetime
import os
import os.path as osp
import statistics
import sys
import time

import torch
from torch import nn

from mrnet_arch.measurement.complexity import count_macs
from mrnet_arch.measurement.machine import machine_info, native_bf16
from mrnet_arch.measurement.specs import parse_model_spec
from mrnet_arch.storage.files import write_json, write_text

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODELS = ('MRNet', 'EDSR-baseline')


def _cpu_bench():
    """``benchmarks/cpu_bench.py`` as a module (a script, loaded from its file): ``force_shuffle_convs``,
    ``machine_slug``."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('cpu_bench', osp.join(ROOT, 'benchmarks', 'cpu_bench.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Step:
    """One configuration: a network, its Adam optimizer and a fixed batch; ``__call__`` runs one training step."""

    def __init__(self, model, variant, batch, patch, seed=0):
        torch.manual_seed(seed)
        self.net = parse_model_spec(model, 2).build().train()
        if variant == 'multiply_add':
            _cpu_bench().force_shuffle_convs(self.net, 'multiply_add')
        self.channels_last = variant in ('channels_last', 'bf16')
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.net.parameters(), 1e-4)
        self.amp = variant == 'bf16'
        self.lq = torch.rand(batch, 3, patch, patch)
        self.gt = torch.rand(batch, 3, patch * 2, patch * 2)
        if self.channels_last:
            self.lq = self.lq.contiguous(memory_format=torch.channels_last)
        self.forward = torch.compile(self.net) if variant == 'compile' else self.net

    def __call__(self):
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=self.amp):
            out = self.forward(self.lq)
        loss = nn.functional.l1_loss(out.float(), self.gt)
        loss.backward()
        self.optimizer.step()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--variants', nargs='+', default=['fp32', 'channels_last', 'multiply_add', 'bf16'],
                   choices=['fp32', 'channels_last', 'multiply_add', 'bf16', 'compile'])
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--patch', type=int, default=48, help='LR patch size')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    p.add_argument('--output-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--name', default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_info(torch.device('cpu'))
    skipped = {}
    if 'bf16' in args.variants and not native_bf16():
        skipped['bf16'] = 'this CPU has no native bfloat16 (AMX or AVX512-BF16): autocast would emulate it'
    variants = [v for v in args.variants if v not in skipped]
    configs, warmup_s = {}, {}
    for variant in variants:
        for model in MODELS:
            step = Step(model, variant, args.batch, args.patch)
            start = time.perf_counter()
            step()
            step()
            configs[(model, variant)] = step
            warmup_s[f'{model}:{variant}'] = round(time.perf_counter() - start, 2)
            print(f'[train step] {model} {variant}: warm-up {warmup_s[f"{model}:{variant}"]} s', flush=True)
    times = {k: [] for k in configs}
    order = list(configs)
    for r in range(args.rounds):
        for key in order[r % len(order):] + order[:r % len(order)]:
            start = time.perf_counter()
            configs[key]()
            times[key].append(time.perf_counter() - start)
        print(f'[train step] round {r + 1}/{args.rounds}: ' +
              ', '.join(f'{m}:{v} {times[(m, v)][-1]:.2f} s' for m, v in order), flush=True)
    macs = {m: count_macs(parse_model_spec(m, 2).build(), (args.patch, args.patch), 2)
            for m in MODELS}
    rows = []
    for variant in variants:
        ratios = [a / b for a, b in zip(times[('MRNet', variant)], times[('EDSR-baseline', variant)])]
        rows.append({'variant': variant, 'mrnet_s': statistics.median(times[('MRNet', variant)]),
                     'edsr_s': statistics.median(times[('EDSR-baseline', variant)]),
                     'ratio_median': statistics.median(ratios), 'ratio_min': min(ratios), 'ratio_max': max(ratios),
                     'mrnet_all_s': times[('MRNet', variant)], 'edsr_all_s': times[('EDSR-baseline', variant)]})
    machine['load_average_end'] = list(os.getloadavg())
    result = {'machine': machine, 'settings': vars(args), 'mac_ratio': macs['MRNet'] / macs['EDSR-baseline'],
              'macs_per_sample': macs, 'warmup_s': warmup_s, 'skipped': skipped, 'rows': rows}
    bench = _cpu_bench()
    name = args.name or f"cpu_train_step_{bench.machine_slug(bench.cpu_features())}_{datetime.date.today():%Y%m%d}"
    os.makedirs(args.output_dir, exist_ok=True)
    write_json(osp.join(args.output_dir, name + '.json'), result, indent=1)
    lines = [f'# Training step on the CPU: MRNet-S x2 against EDSR-baseline x2, batch {args.batch} x '
             f'{args.patch}x{args.patch} LR', '',
             f"- {machine['date_utc']} UTC; CPU {machine['cpu_model']} ({', '.join(machine['cpu_features'])}), "
             f"{machine['cpu_count']} cores, torch {machine['torch']} with {machine['torch_threads']} threads; "
             f"load average {machine['load_average_1_5_15'][0]:.2f} at the start, "
             f"{machine['load_average_end'][0]:.2f} at the end",
             f'- {args.rounds} interleaved rounds of one step (forward, L1, backward, Adam) per configuration; '
             f"MAC ratio MRNet-S / EDSR-baseline {result['mac_ratio']:.2f}",
             '', '| variant | MRNet-S step (s) | EDSR-baseline step (s) | ratio (median [min, max]) |',
             '|---|---|---|---|']
    lines += [f"| {r['variant']} | {r['mrnet_s']:.2f} | {r['edsr_s']:.2f} | {r['ratio_median']:.2f} "
              f"[{r['ratio_min']:.2f}, {r['ratio_max']:.2f}] |" for r in rows]
    lines += [f'- {v}: skipped, {why}' for v, why in skipped.items()]
    write_text(osp.join(args.output_dir, name + '.md'), '\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return result


if __name__ == '__main__':
    from mrnet_arch.cli import run_command
    sys.exit(run_command('cpu_train_step.py', main, None))
