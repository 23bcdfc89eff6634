"""Where MRNet spends its CPU time next to EDSR-baseline: torch.profiler over forwards of both, grouped by op.

    python benchmarks/cpu_profile.py [--lr-size 180 320] [--threads 1] [--precision fp32 bf16] [--repeat 3]

Each convolution and pixel shuffle runs inside a ``torch.profiler.record_function`` label named for its kind
(kernel, channels, groups, LR or HR resolution), set by forward hooks, so the profile gives the time of each kind
with the MACs it does (from the same hooks). The ops outside those labels (adds, ReLUs, the mean shift, ``cat``
and ``stack`` of the recursion outputs, copies) are grouped by name.

The report splits MRNet's latency ratio to EDSR-baseline into the MAC ratio plus one term per group: with
``R`` = EDSR-baseline's MACs per second over its whole forward, a group that takes ``t`` ms for ``m`` MACs in
MRNet adds ``(t - m / R) / T_edsr`` to the ratio (the terms sum exactly to ratio - MAC ratio). A group that runs
slower than EDSR-baseline's average, or does no MACs at all, shows up with a positive term.

Writes ``<name>.json`` and ``<name>.md`` (default ``cpu_profile_<vendor>-<capability>_<date>``).
"""
import argparse
import collections
import datetime
import importlib.util
import os
import os.path as osp
import sys
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from mrnet_arch.commands.bench.command import parse_model_spec
from mrnet_arch.inference.fast import prepare_fast
from mrnet_arch.measurement.complexity import count_macs
from mrnet_arch.measurement.machine import machine_info
from mrnet_arch.storage.files import write_json, write_text


def _cpu_bench():
    """``benchmarks/cpu_bench.py`` beside this file, as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location('_cpu_bench', osp.join(osp.dirname(osp.abspath(__file__)),
                                                                         'cpu_bench.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PREFIX = 'grp::'
OTHER = 'ops outside convolutions and pixel shuffle'


def conv_kind(conv, x, out, lr_hw):
    """The group name of one convolution call, e.g. ``conv3x3 64->64 @LR`` or ``conv1x1 256->256 g64 @LR``."""
    k = 'x'.join(map(str, conv.kernel_size))
    groups = f' g{conv.groups}' if conv.groups > 1 else ''
    where = 'HR' if out.shape[-2] > lr_hw[0] else 'LR'
    return f'conv{k} {conv.in_channels}->{conv.out_channels}{groups} @{where}'


def conv_macs(conv, out):
    """MACs of one call: output elements x (input channels / groups) x kernel area."""
    kh, kw = conv.kernel_size
    return out.numel() * (conv.in_channels // conv.groups) * kh * kw


def is_multiply_add_shuffle(module):
    """Whether ``module`` is a ShuffleConv whose 1x1 grouped convolution runs as multiply-adds."""
    return type(module).__name__ == 'ShuffleConv' and module.fuse.kernel_size == (1, 1)


class GroupLabels:
    """Forward hooks that wrap each ``Conv2d`` and ``PixelShuffle`` call of ``net`` in a profiler label.

    The label of a convolution is only known after it ran (its output size tells LR from HR), so the pre-hook
    opens a label named for the module and the post-hook records the module's kind and MACs under that name.

    Args:
        net (nn.Module): The network.
        lr_hw (tuple[int]): Input (h, w), to tell LR from HR outputs.
    """

    def __init__(self, net, lr_hw):
        self.lr_hw = lr_hw
        self.stack = []
        self.kind = {}  # module label -> group name
        self.macs = collections.Counter()  # group -> MACs per forward (set by the first forward after reset)
        self.calls = collections.Counter()
        self.cpu_ms = collections.Counter()  # group -> process CPU time, summed over calls
        self.handles = []
        # a ShuffleConv of kernel 1 runs its 1x1 grouped convolution as multiply-adds (no Conv2d call): the
        # ShuffleConv itself is one group, its pixel shuffle included
        shuffles = [name for name, m in net.named_modules() if is_multiply_add_shuffle(m)]
        for name, m in net.named_modules():
            inside = any(name.startswith(s + '.') for s in shuffles)
            if name in shuffles or (isinstance(m, (nn.Conv2d, nn.PixelShuffle)) and not inside):
                self.handles.append(m.register_forward_pre_hook(self._pre(name)))
                self.handles.append(m.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(module, args):
            rf = record_function(PREFIX + name)
            rf.__enter__()
            self.stack.append((rf, time.process_time()))
        return hook

    def _post(self, name):
        def hook(module, args, out):
            rf, c0 = self.stack.pop()
            cpu = (time.process_time() - c0) * 1000
            rf.__exit__(None, None, None)
            if is_multiply_add_shuffle(module):
                feats, fuse = args[0], module.fuse
                kind = f'shuffleconv {fuse.in_channels}->{fuse.out_channels} g{fuse.groups} multiply-adds'
                self.macs[kind] += feats[0].numel() * len(feats) * (fuse.out_channels // fuse.groups)
            elif isinstance(module, nn.Conv2d):
                kind = conv_kind(module, args[0], out, self.lr_hw)
                self.macs[kind] += conv_macs(module, out)
            else:
                kind = f'pixel_shuffle x{module.upscale_factor}'
            self.kind[name] = kind
            self.calls[kind] += 1
            self.cpu_ms[kind] += cpu
        return hook

    def reset(self):
        self.macs.clear()
        self.calls.clear()
        self.cpu_ms.clear()

    def remove(self):
        for h in self.handles:
            h.remove()


def group_of(event):
    """The group label (without the prefix) that ``event`` runs inside, or None."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(PREFIX):
            return parent.name[len(PREFIX):]
        parent = parent.cpu_parent
    return None


def is_top_level_op(event):
    """An ``aten::`` event none of whose ancestors is an ``aten::`` op or a group label."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(('aten::', PREFIX)):
            return False
        parent = parent.cpu_parent
    return True


def profile_model(fast, labels, x, repeat):
    """Profile ``repeat`` forwards.

    Returns:
        dict: per forward: ``ms`` {group: profiler time (wall clock)}, ``cpu_ms`` {group: process CPU time, from the
        hooks; ``OTHER`` is the rest of the forward's CPU time}, ``macs`` and ``calls`` {group: ...}, ``wall_ms``
        and ``cpu_ms_total`` of the whole forward; ``ops_inside`` {group: the aten ops run inside it, e.g.
        ``aten::mkldnn_convolution`` or ``aten::thnn_conv2d``}.
    """
    fast(x)  # warm-up (oneDNN primitive creation), not profiled
    labels.reset()
    fast(x)  # counts MACs and calls of one forward
    macs, calls = dict(labels.macs), dict(labels.calls)
    labels.cpu_ms.clear()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function('forwards'):
            c0 = time.process_time()
            for _ in range(repeat):
                fast(x)
            cpu_total = (time.process_time() - c0) * 1000 / repeat
    cpu_ms = {g: v / repeat for g, v in labels.cpu_ms.items()}
    cpu_ms[OTHER] = cpu_total - sum(cpu_ms.values())
    times = collections.Counter()
    kernels = collections.defaultdict(set)  # group -> the aten ops run inside it (which convolution path)
    wall = None
    for ev in prof.events():
        inside = group_of(ev) if ev.name.startswith('aten::') else None
        if inside is not None:
            kernels[labels.kind[inside]].add(ev.name)
        if ev.name == 'forwards':
            wall = ev.cpu_time_total / 1000 / repeat
        elif ev.name.startswith(PREFIX):
            times[labels.kind[ev.name[len(PREFIX):]]] += ev.cpu_time_total / 1000 / repeat
        elif ev.name.startswith('aten::') and is_top_level_op(ev):
            times[ev.name] += ev.cpu_time_total / 1000 / repeat
    return {'ms': dict(times), 'cpu_ms': cpu_ms, 'macs': macs, 'calls': calls, 'wall_ms': wall,
            'cpu_ms_total': cpu_total, 'ops_inside': {g: sorted(v) for g, v in kernels.items()}}


def category(group):
    """The category of a group: the 7x7 conv, 1x1 convs, grouped conv, 3x3 convs (3 input channels, LR, HR),
    pixel shuffle, ShuffleConv's stack + flatten, cat, or the other elementwise ops."""
    if group.startswith('conv7x7'):
        return '7x7 conv (MRNet SFE)'
    if group.startswith('shuffleconv'):
        return 'ShuffleConv (1x1 multiply-adds and its pixel shuffle)'
    if group.startswith('conv') and ' g' in group:
        return 'grouped conv (ShuffleConv)'
    if group.startswith('conv1x1'):
        return '1x1 convs (input encoder, memory updater)'
    if group.startswith('conv3x3') and group.endswith('@HR'):
        return '3x3 convs at HR'
    if group.startswith('conv3x3 3->'):
        return '3x3 conv, 3 input channels (EDSR head)'
    if group.startswith('conv3x3'):
        return '3x3 convs at LR'
    if group.startswith('pixel_shuffle'):
        return 'pixel shuffle'
    if group in ('aten::stack', 'aten::flatten'):
        return "ShuffleConv's stack + flatten (a copy)"
    if group == 'aten::cat':
        return 'cat (inputs of the 1x1 convs)'
    return 'other elementwise ops (add, mul, ReLU, mean shift, casts; CPU time: all the rest)'


def decompose(models, ref, other, clock='ms'):
    """Per-category time, MACs and the ratio terms (see the module docstring) of ``other`` against ``ref``, from
    the profiler's times (``clock='ms'``) or the hooks' process CPU times (``'cpu_ms'``)."""
    def by_cat(m):
        out = collections.defaultdict(lambda: {'ms': 0.0, 'macs': 0, 'groups': []})
        for g, ms in m[clock].items():
            c = out[category(g)]
            c['ms'] += ms
            c['macs'] += m['macs'].get(g, 0)
            c['groups'].append(g)
        return dict(out)

    r, o = models[ref], models[other]
    t_ref, t_other = sum(r[clock].values()), sum(o[clock].values())
    macs_ref, macs_other = sum(r['macs'].values()), sum(o['macs'].values())
    rate = macs_ref / t_ref  # MACs per ms over EDSR-baseline's whole forward
    cats = {other: by_cat(o), ref: by_cat(r)}
    terms = {c: (v['ms'] - v['macs'] / rate) / t_ref for c, v in cats[other].items()}
    return {'categories': cats, 'terms': terms, 'ratio': t_other / t_ref, 'mac_ratio': macs_other / macs_ref,
            'profiled_ms': {ref: t_ref, other: t_other}, 'ref_gmacs_per_s': rate / 1e6}


def decomposition_table(d, other, ref):
    """Markdown lines: one row per category of :func:`decompose`'s result ``d``, largest term first."""
    lines = [f"{other} {d['profiled_ms'][other]:.0f} ms, {ref} {d['profiled_ms'][ref]:.0f} ms per forward: latency "
             f"ratio {d['ratio']:.2f}, MAC ratio {d['mac_ratio']:.2f}; {ref} runs {d['ref_gmacs_per_s']:.1f} GMAC/s "
             'over its whole forward.', '',
             f'| category | {other} ms | {other} share of time | {other} share of MACs | {other} GMAC/s | '
             f'{ref} ms | {ref} GMAC/s | term in the ratio |', '|---|---|---|---|---|---|---|---|']
    cats_o, cats_r = d['categories'][other], d['categories'][ref]
    t_o = d['profiled_ms'][other]
    macs_o = sum(v['macs'] for v in cats_o.values())

    def rate(v):
        return f"{v['macs'] / v['ms'] / 1e6:.1f}" if v and v['macs'] else '-'

    for c in sorted(set(cats_o) | set(cats_r), key=lambda c: -d['terms'].get(c, 0)):
        vo, vr = cats_o.get(c), cats_r.get(c)
        lines.append(f"| {c} | {vo['ms'] if vo else 0:.0f} | {100 * (vo['ms'] if vo else 0) / t_o:.1f}% | "
                     f"{100 * (vo['macs'] if vo else 0) / macs_o:.1f}% | {rate(vo)} | {vr['ms'] if vr else 0:.0f} | "
                     f"{rate(vr)} | {d['terms'].get(c, 0):+.3f} |")
    lines += ['', f"MAC ratio {d['mac_ratio']:.2f} + sum of the terms {sum(d['terms'].values()):+.3f} = latency ratio "
              f"{d['ratio']:.2f}.", '']
    return lines


def markdown(result):
    """The report (Markdown) of ``main``'s result."""
    m, f, a = result['machine'], result['features'], result['settings']
    ref, other = a['models'][1], a['models'][0]
    h, w = a['lr_size']
    lines = [f"# CPU profile by op, {other} vs {ref}, x{a['scale']}, {w}x{h} input ({m['cpu_model']})", '',
             f"- Date (UTC): {m['date_utc']}; {m['cpu_count']} cores; torch {m['torch']}; torch threads "
             f"{a['threads']}; channels_last; torch CPU capability {f['cpu_capability']}; oneDNN native bf16: "
             f"{f['mkldnn_bf16_supported']}",
             f"- Load average (1/5/15 min) before: {[round(v, 2) for v in result['load_before']]}, after: "
             f"{[round(v, 2) for v in result['load_after']]}",
             f"- torch.profiler (CPU) over {a['repeat']} forward(s) of each model after 2 unprofiled ones; ms per "
             'forward. Groups by forward hooks (convolutions, pixel shuffle) and by op name (the rest). The same '
             "forwards also timed by process CPU time in the hooks (the rest of the forward's CPU time is "
             f"'{OTHER}'), which leaves out the time other jobs held the core.", '']
    for precision, d in result['precisions'].items():
        lines += [f'## {precision}', '', '### torch.profiler (wall clock)', '']
        lines += decomposition_table(d, other, ref)
        lines += ['### process CPU time', '']
        lines += decomposition_table(result['cpu_time'][precision], other, ref)
        lines += ['### groups (torch.profiler; process CPU time in brackets)', '']
        for label in (other, ref):
            mm = result['raw'][precision][label]
            for g in sorted(mm['ms'], key=lambda g: -mm['ms'][g]):
                macs = mm['macs'].get(g, 0)
                cpu = f" [{mm['cpu_ms'][g]:.1f} ms]" if g in mm['cpu_ms'] else ''
                impl = [o for o in mm.get('ops_inside', {}).get(g, []) if 'conv' in o and o != 'aten::conv2d'
                        and o not in ('aten::convolution', 'aten::_convolution')]
                lines.append(f"- {label}: `{g}` {mm['ms'][g]:.1f} ms{cpu}" + (
                    f", {mm['calls'].get(g, 0)} calls, {macs / 1e9:.2f} GMACs, {macs / mm['ms'][g] / 1e6:.1f} GMAC/s"
                    if macs else (f", {mm['calls'][g]} calls" if g in mm['calls'] else ''))
                    + (f" ({', '.join(impl)})" if impl else ''))
            lines.append(f"- {label}: {OTHER} [{mm['cpu_ms'][OTHER]:.1f} ms CPU]")
        lines.append('')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', nargs=2, default=['MRNet', 'EDSR-baseline'], help='model specs: profiled, reference')
    p.add_argument('--scale', type=int, default=2)
    p.add_argument('--lr-size', nargs=2, type=int, default=[180, 320], metavar=('H', 'W'))
    p.add_argument('--precision', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--repeat', type=int, default=3, help='profiled forwards per model and precision')
    p.add_argument('--output-dir', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    p.add_argument('--name', default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu_bench = _cpu_bench()
    features = cpu_bench.cpu_features()
    date = f'{datetime.datetime.now(datetime.timezone.utc):%Y%m%d}'
    stem = args.name or f'cpu_profile_{cpu_bench.machine_slug(features)}_{date}'
    load_before = list(os.getloadavg())
    machine = machine_info(torch.device('cpu'))
    specs = [parse_model_spec(s, args.scale) for s in args.models]
    labels = [s.label for s in specs]
    x = torch.rand(1, 3, *args.lr_size, generator=torch.Generator().manual_seed(0))
    raw, precisions, cpu_time = {}, {}, {}
    for precision in args.precision:
        raw[precision] = {}
        for spec in specs:
            net = spec.build()
            macs_total = count_macs(net, lr_size=tuple(args.lr_size), scale=args.scale)
            fast = prepare_fast(net, 'cpu', precision, channels_last=True)
            hooks = GroupLabels(fast.net, args.lr_size)
            r = profile_model(fast, hooks, x, args.repeat)
            hooks.remove()
            r['count_macs'] = macs_total
            raw[precision][spec.label] = r
            print(f"[cpu_profile] {spec.label} {precision}: {sum(r['ms'].values()):.0f} ms grouped, "
                  f"{r['wall_ms']:.0f} ms wall per forward; hooked MACs {sum(r['macs'].values()) / 1e9:.2f}G "
                  f"(count_macs {macs_total / 1e9:.2f}G)", flush=True)
        precisions[precision] = decompose(raw[precision], labels[1], labels[0])
        cpu_time[precision] = decompose(raw[precision], labels[1], labels[0], clock='cpu_ms')
    result = {'machine': machine, 'features': features, 'load_before': load_before,
              'load_after': list(os.getloadavg()),
              'settings': {'models': labels, 'scale': args.scale, 'lr_size': args.lr_size, 'threads': args.threads,
                           'repeat': args.repeat},
              'raw': raw, 'precisions': precisions, 'cpu_time': cpu_time}
    text = markdown(result)
    write_json(osp.join(args.output_dir, stem + '.json'), result, indent=1, default=str)
    write_text(osp.join(args.output_dir, stem + '.md'), text)
    print(text)


if __name__ == '__main__':
    from mrnet_arch.cli import run_command
    sys.exit(run_command('cpu_profile.py', main, None))
