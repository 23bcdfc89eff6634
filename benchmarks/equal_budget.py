"""Equal-budget training: several models trained for the same wall time (or the same number of
iterations) on the same real-photo data, with held-out Y-PSNR side by side and a learning curve.

Each model is trained with the project's model class (``MRNetModel``: its ``feed_data`` and
``optimize_parameters``, so bf16 autocast and channels_last behave as in ``mrnet train``) on BasicSR's
``PairedImageDataset`` (LMDB, random 48x48 LR patches, flips and rotations), the same seed and the same
data order for every model. The clock counts training only (data loading included); it stops while the
held-out photos are evaluated (fp32, Y channel, crop border = scale, BasicSR's metrics).

    mrnet prepare photos --output datasets/photos_bench
    python benchmarks/equal_budget.py --data datasets/photos_bench --models MRNet EDSR-baseline \
        --budget-s 150 --device cuda --amp bf16 --channels-last

Models use ``mrnet bench``'s model specs (``mrnet_arch.measurement.specs``: presets, ``ARCH:k=v``, ``LABEL=...``).
A weight file (``LABEL=FILE.safetensors`` or ``.pth``) gives the network (built from the weights, as ``mrnet infer``
builds it) and the weights training starts from: the CPU campaign's carried state
(``tools/campaign/state/weights_fp16.safetensors``) continues that way; its held-out score at iteration 0 is
theirs.
Training factors, each applied to every model of the run:

- ``--lr``, ``--warmup-iter`` (BasicSR's linear warm-up), ``--batch``;
- ``--grad-clip C``: ``MRNetModel``'s ``train: grad_clip`` (total gradient L2 norm at most C);
- ``--pytorch-init LABEL``: re-initialises the residual blocks (``ResidualBlockNoBN``) of that model with
  PyTorch's default conv init, as BasicSR's EDSR does (``pytorch_init=True``), instead of basicsr's default
  kaiming x 0.1;
- ``--zero-init LABEL``: zeroes the last conv (weight and bias) of each ConvBlock of that MRNet, so that every
  recursion starts as the identity on its input (x_i = x_0) and the network as conv-only upsampling;
- a global skip: the spec ``MRNet:global_skip=bicubic`` (or ``learned``).

``--save-weights DIR`` writes each model's final weights as ``DIR/<label>.safetensors`` (MRNet weights with their
arch config in the metadata, as ``mrnet export`` writes them, so ``mrnet infer`` and spandrel read them) and
``DIR/<label>.json``: the provenance (data: photos, packages, licences and sha256 from the data folder's
provenance; iterations, training seconds, device, torch, settings; the weights' sha256).
"""
import argparse
import copy
import datetime
import json
import os
import os.path as osp
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

import mrnet_arch  # noqa: E402,F401  (compat fixes + registration)
from mrnet_arch.inference.device import resolve_device, sync  # noqa: E402
from mrnet_arch.inference.fast import prepare_fast  # noqa: E402
from mrnet_arch.measurement.complexity import count_params  # noqa: E402
from mrnet_arch.measurement.evaluation import PairingError, evaluate, find_pairs  # noqa: E402
from mrnet_arch.measurement.machine import machine_info  # noqa: E402
from mrnet_arch.measurement.specs import load_weights, parse_model_spec  # noqa: E402
from mrnet_arch.storage.files import sha256_of, write_json, write_text  # noqa: E402

PROG = 'equal_budget.py'
SETTINGS_KEPT = ('batch', 'patch', 'lr', 'warmup_iter', 'grad_clip', 'amp', 'channels_last', 'seed', 'scale')


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data', required=True, help='folder written by mrnet prepare photos')
    p.add_argument('--models', nargs='+', default=['MRNet', 'EDSR-baseline'])
    p.add_argument('--budget-s', type=float, default=150., help='training wall time per model (seconds)')
    p.add_argument('--budget-iters', type=int, default=None, help='stop at this many iterations instead')
    p.add_argument('--eval-every-s', type=float, default=30., help='held-out PSNR every this many training s')
    p.add_argument('--eval-every-iters', type=int, default=None, help='... or every this many iterations')
    p.add_argument('--device', default='auto', help='auto (cuda if available), cpu, cuda or cuda:N')
    p.add_argument('--amp', default=None, choices=[None, 'fp32', 'bf16', 'fp16'])
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--patch', type=int, default=48, help='LR patch size')
    p.add_argument('--lr', type=float, default=1e-4, help='Adam learning rate (paper: 1e-4)')
    p.add_argument('--warmup-iter', type=int, default=-1, help='linear lr warm-up iterations (BasicSR)')
    p.add_argument('--workers', type=int, default=4)
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--grad-clip', type=float, default=None, help="MRNetModel's train:grad_clip (max gradient norm)")
    p.add_argument('--pytorch-init', nargs='*', default=[], metavar='LABEL')
    p.add_argument('--zero-init', nargs='*', default=[], metavar='LABEL',
                   help="zero the last conv of each of that MRNet's ConvBlocks")
    p.add_argument('--save-weights', default=None, metavar='DIR', help='final weights + provenance per model')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--output-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--name', default=None)
    p.add_argument('--note', default=None)
    return p


def _options(spec, data, args, device):
    scale = data['scale']
    return {
        'name': f'equal_budget_{spec.label}', 'model_type': 'MRNetModel', 'scale': scale, 'is_train': True,
        'dist': False, 'rank': 0, 'world_size': 1, 'num_gpu': 1 if device.type == 'cuda' else 0,
        'network_g': dict(type=spec.arch, **spec.kwargs),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None, 'models': None},
        'train': {
            'ema_decay': 0, 'amp': args.amp, 'channels_last': args.channels_last, 'grad_clip': args.grad_clip,
            'optim_g': {'type': 'Adam', 'lr': args.lr, 'weight_decay': 0, 'betas': [0.9, 0.999], 'eps': 1e-8},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10**9], 'gamma': 0.5},
            'total_iter': 10**9, 'warmup_iter': args.warmup_iter,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
    }


def _loader(data, args, device):
    from basicsr.data.paired_image_dataset import PairedImageDataset
    dataset = PairedImageDataset({
        'name': 'photos', 'phase': 'train', 'scale': data['scale'], 'dataroot_gt': data['train_gt'],
        'dataroot_lq': data['train_lq'], 'io_backend': {'type': 'lmdb'}, 'filename_tmpl': '{}',
        'gt_size': args.patch * data['scale'], 'use_hflip': True, 'use_rot': True})
    return torch.utils.data.DataLoader(
        dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=True,
        pin_memory=device.type == 'cuda', persistent_workers=args.workers > 0,
        generator=torch.Generator().manual_seed(args.seed))


def _batches(loader):
    while True:
        yield from loader


def _reinit_pytorch_default(net):
    """PyTorch's default init for the convs of every ResidualBlockNoBN (as BasicSR's EDSR builds them)."""
    from basicsr.archs.arch_util import ResidualBlockNoBN
    count = 0
    for m in net.modules():
        if isinstance(m, ResidualBlockNoBN):
            m.conv1.reset_parameters()
            m.conv2.reset_parameters()
            count += 1
    return count


def _zero_init_conv_blocks(net, label):
    """Zero the last conv of every ConvBlock (MRNet's MRM): each recursion starts as x_i = x_0."""
    from mrnet_arch.archs.mrnet_arch import ConvBlock
    blocks = [m for m in net.modules() if isinstance(m, ConvBlock)]
    if not blocks:
        raise SystemExit(f'{PROG}: --zero-init {label}: the model has no ConvBlock (MRNet only)')
    with torch.no_grad():
        for block in blocks:
            block[-1].weight.zero_()
            block[-1].bias.zero_()
    return len(blocks)


def _holdout_psnr(net, device, pairs, scale):
    fast = prepare_fast(copy.deepcopy(net), device, 'fp32', channels_last=False)
    return evaluate(fast, pairs, scale)


def train_one(spec, data, args, device, pairs, progress=None):
    """Train one model for the budget; returns its result dict (curve, final PSNR, iterations/s) and its network.
    ``progress(record)``, if given, receives the record so far after every held-out evaluation."""
    from mrnet_arch.models.mrnet_model import MRNetModel
    torch.manual_seed(args.seed)
    model = MRNetModel(_options(spec, data, args, device))
    start = spec.weights_path()
    if start:  # a weight file: training starts from it
        load_weights(model.net_g, start, spec.label)
    reinit = _reinit_pytorch_default(model.net_g) if spec.label in args.pytorch_init else 0
    zeroed = _zero_init_conv_blocks(model.net_g, spec.label) if spec.label in args.zero_init else 0
    params = count_params(model.net_g)
    loader = _loader(data, args, device)
    batches = _batches(loader)
    scale = data['scale']
    curve = [dict(iter=0, train_s=0., **_holdout_psnr(model.net_g, device, pairs, scale))]
    train_s, it = 0., 0
    next_eval_s, next_eval_it = args.eval_every_s, args.eval_every_iters
    sync(device)
    seg_start = time.perf_counter()
    while True:
        batch = next(batches)
        it += 1
        model.update_learning_rate(it, warmup_iter=args.warmup_iter)
        model.feed_data(batch)
        model.optimize_parameters(it)
        elapsed = train_s + time.perf_counter() - seg_start
        done = it >= args.budget_iters if args.budget_iters else elapsed >= args.budget_s
        due = (it >= next_eval_it) if next_eval_it else elapsed >= next_eval_s
        if done or due:
            sync(device)
            train_s += time.perf_counter() - seg_start
            point = dict(iter=it, train_s=train_s, l1=float(model.get_current_log().get('l_pix', float('nan'))),
                         **_holdout_psnr(model.net_g, device, pairs, scale))
            curve.append(point)
            print(f"[equal_budget] {spec.label:>14} iter {it:6d} {train_s:7.1f} s  held-out PSNR "
                  f"{point['psnr']:.2f} dB", flush=True)
            record = {
                'label': spec.label, 'arch': spec.arch, 'kwargs': spec.kwargs, 'params': params,
                'started_from': {'weights': start, 'sha256': sha256_of(start)} if start else None,
                'pytorch_init_resblocks': reinit, 'zero_init_conv_blocks': zeroed, 'iterations': it,
                'train_s': train_s, 'iters_per_s': it / train_s, 'final': point, 'curve': list(curve),
            }
            if progress is not None and not done:
                progress(record)
            if next_eval_it:
                next_eval_it += args.eval_every_iters
            else:
                next_eval_s += args.eval_every_s
            if done:
                break
            sync(device)
            seg_start = time.perf_counter()
    del loader
    return record, model.net_g


def save_weights(folder, net, record, data, data_dir, settings, machine):
    """``folder/<label>.safetensors`` and ``folder/<label>.json`` (provenance, with the weights' sha256)."""
    from mrnet_arch.storage.weights import save_safetensors
    os.makedirs(folder, exist_ok=True)
    label = record['label']
    path = osp.join(folder, f'{label}.safetensors')
    config = dict(type=record['arch'], **record['kwargs'])
    save_safetensors(net, config, path, mrnet_config=record['arch'] in ('MRNet', 'MultiScaleMRNet'))
    prov_path = osp.join(data_dir, 'provenance.json')
    photos = None
    if osp.isfile(prov_path):
        with open(prov_path, encoding='utf-8') as f:
            keys = ('file', 'split', 'package', 'version', 'path', 'licence', 'sha256_original', 'sha256_hr')
            photos = [{k: p.get(k) for k in keys} for p in json.load(f)['photos']]
    write_json(osp.join(folder, f'{label}.json'), {
        'weights': osp.basename(path), 'sha256': sha256_of(path), 'network_g': config, 'params': record['params'],
        'iterations': record['iterations'], 'train_s': record['train_s'], 'held_out': record['final'],
        'started_from': record.get('started_from'),
        'device': machine['device_name'], 'torch': machine['torch'], 'date_utc': machine['date_utc'],
        'settings': {k: settings[k] for k in SETTINGS_KEPT},
        'data': {'source': data.get('source'), 'train_photos': data['train_photos'],
                 'holdout_photos': data['holdout_photos'], 'tiles': data['tiles'], 'photos': photos},
        'written_by': 'benchmarks/equal_budget.py',
    }, indent=1)
    return path


def markdown(result):
    m, s = result['machine'], result['settings']
    budget = f"{s['budget_iters']} iterations" if s['budget_iters'] else f"{s['budget_s']:.0f} s of training"
    lines = [
        f"# Equal-budget training, x{s['scale']}, {m['device_name']} ({m['device']})", '',
        f"- Date (UTC): {m['date_utc']}; CPU {m['cpu_model']} ({m['cpu_count']} cores); load average at start "
        f"{m['load_average_1_5_15']}, at end {m.get('load_average_end')}; torch {m['torch']}",
        f"- Budget per model: {budget}; batch {s['batch']} x {s['patch']}x{s['patch']} LR patches; Adam lr "
        f"{s['lr']}, warm-up {s['warmup_iter']}, gradient clip {s.get('grad_clip')}; amp {s['amp']}; "
        f"channels_last {s['channels_last']}; seed {s['seed']}",
        f"- Data: train {s['train_photos']} ({s['tiles']} tiles of 192 px), held out {s['holdout_photos']} "
        f"(Y-PSNR, crop border {s['scale']}); bicubic on the held-out photos: {result['bicubic']['psnr']:.2f} dB",
    ]
    if s.get('note'):
        lines.append(f"- Note: {s['note']}")
    lines += ['', '| Model | Params | Iterations | Train s | it/s | Held-out PSNR (dB) | SSIM |',
              '|---|---|---|---|---|---|---|']
    for r in result['models']:
        f = r['final']
        lines.append(f"| {r['label']} | {r['params']:,} | {r['iterations']} | {r['train_s']:.1f} | "
                     f"{r['iters_per_s']:.2f} | {f['psnr']:.2f} | {f['ssim']:.4f} |")
    lines += ['', '## Learning curves (held-out PSNR, dB)', '']
    for r in result['models']:
        points = ', '.join(f"{p['iter']} it / {p['train_s']:.0f} s: {p['psnr']:.2f}" for p in r['curve'])
        lines.append(f"- {r['label']} ({r['arch']} {json.dumps(r['kwargs'])}"
                     f"{', from ' + r['started_from']['weights'] if r.get('started_from') else ''}"
                     f"{', PyTorch-default resblock init' if r['pytorch_init_resblocks'] else ''}"
                     f"{', zero-initialised ConvBlock ends' if r.get('zero_init_conv_blocks') else ''}): {points}")
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        with open(osp.join(args.data, 'paths.json'), encoding='utf-8') as f:
            data = json.load(f)
        pairs = find_pairs(data['holdout'], data['scale'])
    except (ValueError, PairingError) as err:
        raise SystemExit(f'{PROG}: {err}') from err
    specs = [parse_model_spec(m, data['scale']) for m in args.models]
    for spec in specs:
        spec.resolve()  # a weight file: the network from its weights (and they must fit it), before any training
    machine = machine_info(device)
    bicubic = evaluate(prepare_fast(parse_model_spec('Bicubic', data['scale']).build(), device, 'fp32'),
                       pairs, data['scale'])
    settings = dict(vars(args), scale=data['scale'], train_photos=data['train_photos'],
                    holdout_photos=data['holdout_photos'], tiles=data['tiles'])
    os.makedirs(args.output_dir, exist_ok=True)
    stem = args.name or f"equal_budget_{device.type}_{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    json_path = osp.join(args.output_dir, stem + '.json')
    models = []

    def progress(record):  # the JSON so far (``complete: false``), so that a run cut short still reports
        write_json(json_path, {'machine': machine, 'settings': settings, 'bicubic': bicubic,
                               'models': models + [record], 'complete': False}, indent=1)

    for spec in specs:
        record, net = train_one(spec, data, args, device, pairs, progress)
        if args.save_weights:
            record['weights'] = save_weights(args.save_weights, net, record, data, args.data, settings, machine)
        models.append(record)
    machine['load_average_end'] = list(os.getloadavg())
    result = {'machine': machine, 'settings': settings, 'bicubic': bicubic, 'models': models, 'complete': True}
    text = markdown(result)
    write_json(json_path, result, indent=1)
    write_text(osp.join(args.output_dir, stem + '.md'), text)
    print(text)
    return result


if __name__ == '__main__':
    from mrnet_arch.cli import run_command
    sys.exit(run_command('equal_budget.py', main, None))
