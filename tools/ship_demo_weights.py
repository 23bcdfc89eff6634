"""Copy the weights of the demo's pre-training run into the package and write their provenance.

    mrnet demo --iters 1    # once, builds datasets/demo (any run of the demo does)
    mrnet train -opt options/demo/pretrain_MRNet_demo_x2.yml
    python tools/ship_demo_weights.py

Writes ``mrnet_arch/demo_weights/MRNet_demo_x2.pth`` (``{'params': state_dict}``, float32) and
``PROVENANCE.md`` beside it: the training settings (from the option file copied into the experiment), the
iterations, wall time and validation PSNR on the held-out photos (from its log), the machine this script
runs on (run it where the training ran) and the sha256 of the written file.
"""
import datetime
import glob
import os
import re
import sys
from os import path as osp

import torch
import yaml

from mrnet_arch.commands import demo
from mrnet_arch.measurement.machine import cpu_model
from mrnet_arch.storage.files import sha256_of

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
EXP = osp.join(ROOT, 'experiments', 'MRNet_demo_x2_pretrain')
OUT = osp.join(ROOT, 'mrnet_arch', 'demo_weights')
TRAIN_PHOTOS = [osp.splitext(name)[0] for name in demo.TRAIN_PHOTOS]


def main():
    src = osp.join(EXP, 'models', 'net_g_latest.pth')
    logs = sorted(glob.glob(osp.join(EXP, 'train_MRNet_demo_x2_pretrain_*.log')))
    if not osp.isfile(src) or not logs:
        sys.exit(f'no finished pre-training run in {EXP}: '
                 'run mrnet train -opt options/demo/pretrain_MRNet_demo_x2.yml')
    log = open(logs[-1], encoding='utf-8').read()
    with open(osp.join(EXP, 'pretrain_MRNet_demo_x2.yml'), encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    data, train = opt['datasets']['train'], opt['train']
    setting = (f"batch {data['batch_size_per_gpu']}, LR patch {data['gt_size'] // opt['scale']}, "
               f"Adam lr {train['optim_g']['lr']} x{train['scheduler']['gamma']} at "
               f"{', '.join(map(str, train['scheduler']['milestones']))}, {train['pixel_opt']['type']}")
    iters = [int(i.replace(',', '')) for i in re.findall(r'iter:\s+([\d,]+)', log)]
    stamps = re.findall(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ INFO: (?:Start training|End of training)', log, re.M)
    psnr = re.findall(r'# psnr: ([\d.]+)', log)
    consumed = re.search(r'End of training. Time consumed: ([\d:]+)', log)
    params = torch.load(src, map_location='cpu', weights_only=True)['params']
    os.makedirs(OUT, exist_ok=True)
    dst = osp.join(OUT, 'MRNet_demo_x2.pth')
    torch.save({'params': params}, dst)
    sha = sha256_of(dst)
    n_params = sum(v.numel() for v in params.values())
    machine = (f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"CUDA {'yes' if torch.cuda.is_available() else 'no'}")
    dataset = (f"{data['name']}: the demo's {len(TRAIN_PHOTOS)} training photos from scikit-image "
               f"({', '.join(TRAIN_PHOTOS)}), cut into 120 px sub-images")
    monitoring = 'monitoring only: the last weights were shipped, not the best-scoring'
    text = f"""# Provenance of MRNet_demo_x2.pth

The weights `mrnet demo` starts from. Trained from scratch, once, by

    mrnet train -opt options/demo/pretrain_MRNet_demo_x2.yml

on the demo's **training** photos only (scikit-image: astronaut, hubble_deep_field, ihc,
motorcycle_left, motorcycle_right, rocket; 120 px sub-images, MATLAB-bicubic x2 LR, built by
`mrnet demo`). The held-out photos (chelsea, coffee) served only for validation.

| | |
|---|---|
| model | MRNet x2, num_feat 32, num_block 4, T = 3 ({n_params:,} parameters) |
| training | {max(iters) if iters else '?'} iterations, {setting} |
| dataset | {dataset} |
| dataset size | {len(TRAIN_PHOTOS)} images |
| wall time | {consumed.group(1) if consumed else '?'} (started {stamps[0] if stamps else '?'}) |
| machine | {machine} |
| validation Y-PSNR on the held-out photos ({monitoring}) | {' → '.join(psnr)} dB (every 500 iterations, then final) |
| file | `{osp.basename(dst)}`: `{{'params': state_dict}}`, float32, loaded with `weights_only=True` |
| sha256 | `{sha}` |
| licence | MIT (the plugin's `LICENSE`) |
| written | {datetime.date.today().isoformat()} by `tools/ship_demo_weights.py` |
"""
    with open(osp.join(OUT, 'PROVENANCE.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
