"""``mrnet compare`` on real photos (scikit-image's data folder) with the shipped demo weights.

- Its whole-image scores are ``mrnet bench``'s: both commands run on the same benchmark folder and model, and
  the means agree exactly.
- Tiling (``--tile``) with the default overlap gives the untiled result (within the documented tolerance).
- Output folders, file names and the errors for a missing folder, a crop outside an image, an unknown model.
- ``--import MODULE`` of a small plugin written here, registering its own arch.
"""
import json
import os
import re
import subprocess
import sys
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from _tiny import REPO, env
from mrnet_arch.cli import main as mrnet
from mrnet_arch.commandline.plugins import import_modules
from mrnet_arch.commands import compare as cli
from mrnet_arch.commands.bench.command import run as bench_run
from mrnet_arch.dataprep.prepare import prepare_benchmark
from mrnet_arch.errors import InputError
from mrnet_arch.inference.fast import prepare_fast
from mrnet_arch.measurement import specs
from mrnet_arch.measurement.evaluation import upscale_image, y_metrics
from mrnet_arch.models.mrnet_tiling import tiled_forward

DEMO_WEIGHTS = osp.join(REPO, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')
DEMO_MODEL = 'MRNet:num_feat=32,num_block=4,num_recursion=3'


def write_photos(folder, crops):
    """``{file name: (skimage name, top, left, height, width)}`` crops of scikit-image photos, as BGR PNGs."""
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    for name, (photo, top, left, h, w) in crops.items():
        img = getattr(data, photo)()[top:top + h, left:left + w, :3]
        assert cv2.imwrite(osp.join(folder, name), np.ascontiguousarray(img[..., ::-1]))
    return folder


@pytest.fixture(scope='module')
def photo_set(tmp_path_factory):
    """A benchmark folder (GTmod12 + LRbicx2, as ``mrnet prepare benchmark`` writes it) of two real photos."""
    src = write_photos(str(tmp_path_factory.mktemp('photos')), {
        'chelsea.png': ('chelsea', 40, 120, 120, 168), 'coffee.png': ('coffee', 60, 100, 96, 144)})
    out = str(tmp_path_factory.mktemp('bench') / 'PhotoSet')
    prepare_benchmark(src, out, scales=[2])
    return out


def demo_args():
    return ['--models', f'demo={DEMO_MODEL}', '--weights', f'demo={DEMO_WEIGHTS}']


def test_compare_scores_equal_bench(photo_set, tmp_path):
    result = cli.run(demo_args() + ['--benchmarks', photo_set, '--scale', '2', '--device', 'cpu', '--output',
                                    str(tmp_path / 'cmp')])
    bench = bench_run(['--models', f'demo={DEMO_MODEL}', 'Bicubic', '--weights', f'demo={DEMO_WEIGHTS}',
                       '--benchmarks', photo_set, '--scale', '2', '--device', 'cpu', '--precision', 'fp32',
                       '--skip-latency', '--output-dir', str(tmp_path), '--name', 'bench'])
    with open(result['json'], encoding='utf-8') as f:
        saved = json.load(f)
    for model in bench['models']:
        want = model['metrics']['PhotoSet']['fp32']
        assert saved['datasets']['PhotoSet'][model['label']] == want  # exactly bench's numbers
        assert saved['mean'][model['label']]['psnr'] == pytest.approx(want['psnr'], abs=1e-12)
        assert saved['mean'][model['label']]['ssim'] == pytest.approx(want['ssim'], abs=1e-12)
    demo, bicubic = saved['datasets']['PhotoSet']['demo'], saved['datasets']['PhotoSet']['Bicubic']
    assert demo['psnr'] > bicubic['psnr']  # the shipped weights beat bicubic on these photos

    # the files: page, scores, a figure and the SR images per photo, GT included
    out = tmp_path / 'cmp'
    assert saved['models'] == ['Bicubic', 'demo'] and [e['name'] for e in saved['images']] == ['chelsea', 'coffee']
    for stem, (h, w) in (('chelsea', (120, 168)), ('coffee', (96, 144))):
        assert cv2.imread(str(out / 'figures' / f'{stem}.png')) is not None
        for model in ('Bicubic', 'demo', 'GT'):
            assert cv2.imread(str(out / 'images' / stem / f'{model}.png')).shape == (h, w, 3)
    html = (out / 'index.html').read_text(encoding='utf-8')
    assert 'id="scores"' in html and html.count('class="figure"') == 2
    # the per-image scores are y_metrics of the written SR images (PNG is lossless)
    gt = cv2.imread(str(out / 'images' / 'chelsea' / 'GT.png'))
    sr = cv2.imread(str(out / 'images' / 'chelsea' / 'demo.png'))
    assert saved['images'][0]['scores']['demo']['psnr'] == y_metrics(sr, gt, 2)['psnr']


def test_tiled_equals_untiled_on_a_real_photo(tmp_path):
    """The tolerance of docs/compare.md: with the default overlap (MRNet's receptive-field radius) the tiled
    float output is within 1e-5 of the untiled one, the 8-bit images at most 1 grey level apart, PSNR within
    0.01 dB (on this CPU they are identical)."""
    from skimage import data
    spec = specs.parse_model_spec(DEMO_MODEL, 2)
    spec.weights = DEMO_WEIGHTS
    pad = cli.default_tile_pad(spec, 2)
    assert pad == 32  # 4 + T (2 num_block + 1) + 0 + 1 for T = 3, num_block = 4
    fast = prepare_fast(specs.PadCrop(spec.build(), 1, 2), 'cpu', 'fp32')
    gt = np.ascontiguousarray(data.chelsea()[:240, :320, ::-1])
    from mrnet_arch.dataprep.prepare import bicubic_downscale
    lr = np.ascontiguousarray(bicubic_downscale(gt[..., ::-1], 2)[..., ::-1])  # 160x120, 12 tiles of 40
    x = torch.from_numpy(np.ascontiguousarray(lr[..., ::-1])).permute(2, 0, 1)[None].float() / 255.
    assert (fast(x) - tiled_forward(fast, x, 2, 40, pad)).abs().max().item() <= 1e-5
    whole, used = cli.super_resolve(fast, lr, 2)
    tiled, used_tiled = cli.super_resolve(fast, lr, 2, tile=40, tile_pad=pad)
    assert (used, used_tiled) == (0, 40)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1
    assert y_metrics(tiled, gt, 2)['psnr'] == pytest.approx(y_metrics(whole, gt, 2)['psnr'], abs=0.01)


def test_out_of_memory_falls_back_to_tiles():
    """A model that runs out of memory on a whole image is run tile by tile, the result unchanged."""
    calls = []

    def net(x):
        calls.append(tuple(x.shape[-2:]))
        if max(x.shape[-2:]) > 40:
            raise RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB')
        return torch.nn.functional.interpolate(x, scale_factor=2, mode='nearest')

    lr = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    sr, tile = cli.super_resolve(net, lr, 2, tile_pad=0)
    assert tile == 32 and calls[0] == (70, 90)
    assert np.array_equal(sr, upscale_image(lambda x: torch.nn.functional.interpolate(x, scale_factor=2), lr))
    with pytest.raises(RuntimeError, match='out of memory'):  # an asked-for tile is not changed
        cli.super_resolve(net, lr, 2, tile=64)


def test_output_folder_is_not_overwritten_without_overwrite(photo_set, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    args = ['--benchmarks', photo_set, '--output', str(out), '--device', 'cpu', '--crop', '10,10,40,40']
    with pytest.raises(cli.CompareError, match=f'--output {out} is not empty; pass --overwrite'):
        cli.run(args)
    result = cli.run(args + ['--overwrite'])  # Bicubic alone; the given crop for every image
    assert (out / 'notes.txt').read_text() == 'mine'
    with open(result['json'], encoding='utf-8') as f:
        assert [e['crop'] for e in json.load(f)['images']] == [[10, 10, 40, 40]] * 2


def test_pairs_of_folders_and_safe_file_names(tmp_path):
    gt_dir = write_photos(str(tmp_path / 'HR'), {'cat face #1.png': ('chelsea', 60, 140, 64, 80)})
    lr_dir = str(tmp_path / 'LR')
    os.makedirs(lr_dir)
    gt = cv2.imread(osp.join(gt_dir, 'cat face #1.png'))
    from mrnet_arch.dataprep.prepare import bicubic_downscale
    cv2.imwrite(osp.join(lr_dir, 'cat face #1x2.png'), bicubic_downscale(gt, 2))
    out = tmp_path / 'out'
    result = cli.run(['--pairs', gt_dir, lr_dir, '--pairs', gt_dir, lr_dir, '--output', str(out), '--device', 'cpu'])
    # two datasets of the same name: images named dataset/stem, files made safe and unique
    assert [e['name'] for e in result['images']] == ['HR/cat face #1', 'HR/cat face #1']
    assert sorted(os.listdir(out / 'figures')) == ['HR_cat_face_1.png', 'HR_cat_face_1_2.png']
    assert cli.safe_name('../a b/..c') == 'a_b_..c' and cli.safe_name('..') == 'image'


@pytest.mark.parametrize('args, message', [
    (['--benchmarks', '{tmp}/nowhere'], '--benchmarks {tmp}/nowhere: folder not found'),
    (['--pairs', '{tmp}/nowhere', '{tmp}'], '--pairs {tmp}/nowhere {tmp}: folder not found: {tmp}/nowhere'),
    (['--benchmarks', '{set}', '--crop', '100,10,64,64'], r'coffee \(.*coffee.png\): --crop 100,10,64,64 reaches '
     'outside the image: the image is 144x96'),
    (['--benchmarks', '{set}', '--models', 'NoSuchArch:x=1'], "arch 'NoSuchArch' .* is not registered"),
    (['--benchmarks', '{set}', '--models', 'MRNet:num_feat=8,num_block=1'], "model 'MRNet' .* has no weights"),
    (['--benchmarks', '{set}', '--models', 'Bicubic', 'Bicubic'], "two models are labelled 'Bicubic'"),
    (['--benchmarks', '{set}', '--models', 'GT=Bicubic'], "a model may not be labelled 'GT'"),
    (['--benchmarks', '{set}', '--scale', '3'], r'{set} needs GTmod\*/ and LRbicx3/'),
    (['--benchmarks', '{set}', '--import', 'no_such_plugin.archs'], '--import no_such_plugin.archs: cannot import'),
])
def test_clear_errors(photo_set, tmp_path, capsys, args, message):
    fill = {'tmp': str(tmp_path), 'set': photo_set}
    args = [a.format(**fill) for a in args] + ['--output', str(tmp_path / 'out'), '--device', 'cpu']
    escaped = {k: re.escape(v) for k, v in fill.items()}
    assert mrnet(['compare', *args]) == 2  # bad input
    err = capsys.readouterr().err.strip()
    assert re.match('^mrnet compare: error: ' + message.format(**escaped), err) and 'Traceback' not in err, err
    assert not osp.exists(tmp_path / 'out' / 'index.html')


PLUGIN = '''
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class PluginNearest(nn.Module):
    """Nearest-neighbour upsampling: a parameter-free arch of another plugin."""

    def __init__(self, upscale=2):
        super().__init__()
        self.upscale = upscale

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.upscale, mode='nearest')
'''


def write_plugin(folder):
    """A plugin package ``myplugin`` under ``folder`` whose ``myplugin.archs`` registers ``PluginNearest`` (and
    whose ``myplugin.broken`` fails to import); returns ``folder``, for PYTHONPATH."""
    package = osp.join(folder, 'myplugin')
    os.makedirs(package)
    for name, text in (('__init__.py', ''), ('archs.py', PLUGIN),
                       ('broken.py', 'raise ImportError("needs a GPU library")\n')):
        with open(osp.join(package, name), 'w', encoding='utf-8') as f:
            f.write(text)
    return folder


@pytest.fixture
def plugin(tmp_path):
    return write_plugin(str(tmp_path / 'plugins'))


def test_import_a_plugin_arch_in_compare(plugin, photo_set, tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'compare', '--import', 'myplugin.archs', '--models',
                           'PluginNearest', '--benchmarks', photo_set, '--output', str(out), '--device', 'cpu'],
                          env=env(str(tmp_path), PYTHONPATH=os.pathsep.join([REPO, plugin])), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / 'scores.json', encoding='utf-8') as f:
        saved = json.load(f)
    assert saved['models'] == ['Bicubic', 'PluginNearest'] and saved['runs']['PluginNearest']['arch'] == 'PluginNearest'
    nearest, bicubic = (saved['datasets']['PhotoSet'][m]['psnr'] for m in ('PluginNearest', 'Bicubic'))
    assert nearest < bicubic  # nearest neighbour is the worse upsampler


def test_import_errors_name_the_module(plugin, monkeypatch):
    monkeypatch.syspath_prepend(plugin)
    with pytest.raises(InputError, match=r"^--import myplugin.nothing: cannot import it: No module "
                       r"named 'myplugin.nothing'; install it or put its folder on PYTHONPATH"):
        import_modules(['myplugin.nothing'])
    with pytest.raises(InputError, match=r'^--import myplugin.broken: importing it failed: ImportError: '
                       r'needs a GPU library \(.*broken.py, line 1\)'):
        import_modules(['myplugin.broken'])
    with pytest.raises(InputError, match='not a module name'):
        import_modules(['my-plugin'])
    assert [m.__name__ for m in import_modules(['myplugin.archs'])] == ['myplugin.archs']
