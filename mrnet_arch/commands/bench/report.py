"""Reports of ``mrnet bench``: the Markdown table and the PNG plot of a result."""
import json

from mrnet_arch.measurement.evaluation import dataset_name


def _fmt(value, spec, none='n/a'):
    return none if value is None else format(value, spec)


def _fmt_macs(macs):
    if macs is None:
        return 'n/a'
    return f'{macs / 1e9:.1f}G' if macs >= 1e9 else f'{macs / 1e6:.2f}M'


def _fmt_params(params):
    return f'{params / 1e6:.3f}M' if params >= 1e5 else f'{params:,}'


def markdown_report(result):
    """The Markdown report of a ``run`` result (machine, settings, one table row per model, notes).

    Args:
        result (dict): As returned by ``mrnet_arch.commands.bench.command.run``.

    Returns:
        str: The report.
    """
    m, s = result['machine'], result['settings']
    lines = [
        f"# mrnet bench, x{s['scale']}, {m['device_name']} ({m['device']})", '',
        f"- Date (UTC): {m['date_utc']}; CPU: {m['cpu_model']}, {m['cpu_count']} cores, torch threads "
        f"{m['torch_threads']}; load average at start (1/5/15 min): {m['load_average_1_5_15']}",
        f"- torch {m['torch']} (CUDA build {m['cuda_build']}), basicsr {m['basicsr']}, Python {m['python']}",
        f"- Input {s['lr_size'][1]}x{s['lr_size'][0]} (w x h), output {s['output_size'][1]}x{s['output_size'][0]}; "
        f"latency: median of {s['repeat']} runs after {s['warmup']} warm-up runs "
        f"({'CUDA events' if m['device'].startswith('cuda') else 'time.perf_counter'}), batch 1, "
        f"channels_last {s['channels_last']}, torch.compile {s['compile']}",
        f"- Peak memory: {result['memory_kind']}",
    ]
    if s.get('note'):
        lines.append(f"- Note: {s['note']}")
    precisions = s['precisions']
    header = ['Model', 'Params', 'MACs'] + [f'{p} ms' for p in precisions] + [f'{p} peak MiB' for p in precisions]
    datasets = [dataset_name(d) for d in s['benchmarks']]
    header += [f'{d} {p} PSNR/SSIM' for d in datasets for p in precisions]
    lines += ['', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in result['models']:
        row = [r['label'], _fmt_params(r['params']), _fmt_macs(r['macs'])]
        row += [_fmt((r['latency_ms'].get(p) or {}).get('median'), '.2f') for p in precisions]
        row += [_fmt((r['peak_memory'].get(p) or {}).get('mib'), '.1f') for p in precisions]
        for d in datasets:
            for p in precisions:
                metric = (r['metrics'].get(d) or {}).get(p)
                row.append(f"{metric['psnr']:.2f}/{metric['ssim']:.4f}" if metric else '-')
        lines.append('| ' + ' | '.join(row) + ' |')
    lines.append('')
    for r in result['models']:
        extra = []
        if r['padded_lr_size'] != s['lr_size']:
            extra.append(f"input reflect-padded to {r['padded_lr_size'][1]}x{r['padded_lr_size'][0]} "
                         f"(window multiple {r['multiple']}); MACs at the padded size")
        if r['weights']:
            extra.append(f"weights {r['weights']}")
        elif s['benchmarks'] and r['params']:
            extra.append('no weights: PSNR/SSIM not measured')
        for p, err in r.get('errors', {}).items():
            extra.append(f'{p}: {err}')
        notes = f"; {'; '.join(extra)}" if extra else ''
        lines.append(f"- {r['label']}: {r['arch']}({json.dumps(r['kwargs'])})" + notes)
    return '\n'.join(lines) + '\n'


def plot_report(result, path):
    """Write a PNG plot: PSNR vs params (the paper's Figure 9) when PSNR was measured, else MACs and latency
    vs params.

    Args:
        result (dict): As returned by ``mrnet_arch.commands.bench.command.run``.
        path (str): The PNG file.

    Returns:
        str: The figure's title.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    s = result['settings']
    prec = s['precisions'][0]
    rows = result['models']
    points = []
    dataset = None
    for d in (dataset_name(b) for b in s['benchmarks']):
        points = [(r['label'], r['params'], r['metrics'][d][prec]['psnr']) for r in rows
                  if (r['metrics'].get(d) or {}).get(prec)]
        if points:
            dataset = d
            break
    if dataset:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for label, params, psnr in points:
            ax.scatter(params / 1e3, psnr)
            ax.annotate(label, (params / 1e3, psnr), textcoords='offset points', xytext=(4, 4), fontsize=8)
        ax.set_xlabel('Parameters (K)')
        ax.set_ylabel(f'PSNR (dB), Y channel, {prec}')
        title = f"PSNR vs parameters on {dataset} x{s['scale']}"
        ax.set_title(title)
        ax.grid(alpha=.3)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        panels = [('MACs (G)', lambda r: None if r['macs'] is None else r['macs'] / 1e9),
                  (f'median latency {prec} (ms)', lambda r: (r['latency_ms'].get(prec) or {}).get('median'))]
        for ax, (ylabel, get) in zip(axes, panels):
            for r in rows:
                y = get(r)
                if y is None:
                    continue
                ax.scatter(r['params'] / 1e3, y)
                ax.annotate(r['label'], (r['params'] / 1e3, y), textcoords='offset points', xytext=(4, 4),
                            fontsize=8)
            ax.set_xlabel('Parameters (K)')
            ax.set_ylabel(ylabel)
            ax.grid(alpha=.3)
        title = (f"No PSNR measured (no weights or no --benchmarks): MACs and latency vs parameters, "
                 f"x{s['scale']}, {result['machine']['device_name']}")
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return title
