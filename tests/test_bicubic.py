"""The Bicubic arch: MATLAB bicubic (basicsr's imresize) on batched tensors, and through the test pipeline."""
import glob
import re
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

from _photos import REPO, load_yaml, run_mrnet, save_yaml, write_photos
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr
from basicsr.utils import img2tensor, tensor2img
from basicsr.utils.matlab_functions import imresize
from mrnet_arch.archs.bicubic_arch import matlab_resize
from mrnet_arch.dataprep.prepare import prepare_benchmark


@pytest.mark.parametrize('h,w,scale', [(17, 23, 2), (17, 23, 3), (16, 20, 4), (5, 6, 4), (3, 3, 3), (48, 36, 1 / 2),
                                       (48, 36, 1 / 3), (47, 35, 1 / 4)])
def test_matches_basicsr_imresize(h, w, scale):
    torch.manual_seed(0)
    x = torch.rand(2, 3, h, w)
    out = matlab_resize(x, scale)
    for i in range(2):
        ref = imresize(x[i], scale)
        assert out[i].shape == ref.shape
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_arch_on_a_photo_batch_and_dtypes():
    from skimage import data
    img = data.astronaut()[100:160, 200:248].astype(np.float32) / 255.
    ref = imresize(img, 3)  # numpy (h, w, c)
    net = build_network({'type': 'Bicubic', 'upscale': 3, 'num_feat': 64})  # other arch options are ignored
    x = torch.from_numpy(img.transpose(2, 0, 1))[None]
    out = net(torch.cat([x, x.flip(-1)]))
    np.testing.assert_allclose(out[0].numpy().transpose(1, 2, 0), ref, atol=1e-5)
    np.testing.assert_allclose(out[1].flip(-1).numpy().transpose(1, 2, 0), ref, atol=1e-5)
    out64 = net(x.double())
    assert out64.dtype == torch.float64
    np.testing.assert_allclose(out64[0].numpy().transpose(1, 2, 0), ref, atol=1e-5)
    with pytest.raises(ValueError, match='expected 3 input channels'):
        net(x[:, :1])


@pytest.mark.parametrize('scale', [3])
def test_through_basicsr_test_pipeline(tmp_path, scale):
    """options/test_Bicubic_x3.yml on a tiny Set5: the logged PSNR is that of MATLAB bicubic upsampling."""
    src = write_photos(str(tmp_path / 'raw'), {'a.png': ('astronaut', 72, 84), 'b.png': ('coffee', 60, 96)})
    prepare_benchmark(src, str(tmp_path / 'datasets' / 'Set5'), [scale])
    opt = load_yaml(osp.join(REPO, 'options', f'test_Bicubic_x{scale}.yml'))
    opt['datasets'] = {'test_1': opt['datasets']['test_1']}
    assert opt['datasets']['test_1']['name'] == 'Set5'
    opt['num_gpu'] = 0
    run_mrnet(['test', '-opt', save_yaml(opt, tmp_path / 'test_bicubic.yml')], tmp_path)

    psnrs = []
    for name in ('a', 'b'):
        gt = cv2.imread(str(tmp_path / 'datasets/Set5/GTmod12' / f'{name}.png'))
        lr = cv2.imread(str(tmp_path / f'datasets/Set5/LRbicx{scale}' / f'{name}.png'))
        sr = tensor2img(imresize(img2tensor(lr.astype(np.float32) / 255.), scale))  # BGR in, BGR out
        saved = cv2.imread(str(tmp_path / 'results' / f'Bicubic_x{scale}' / 'visualization' / 'Set5' /
                               f'{name}_Bicubic_x{scale}.png'))
        assert np.abs(saved.astype(int) - sr).max() <= 1  # float rounding at .5 only
        psnrs.append(calculate_psnr(sr, gt, crop_border=scale, test_y_channel=True))
    log = open(glob.glob(str(tmp_path / 'results' / f'Bicubic_x{scale}' / 'test_*.log'))[0]).read()
    logged = float(re.search(r'Validation Set5\n\s+# psnr: (\d+\.\d+)', log).group(1))
    assert logged == pytest.approx(np.mean(psnrs), abs=2e-3)


def test_resize_matrices_are_cached_not_rebuilt(monkeypatch):
    """The second forward at a size builds no matrix and gives the same result; a matrix first built in
    inference mode still works with autograd."""
    from mrnet_arch.archs import bicubic_arch
    calls = []
    build = bicubic_arch.calculate_weights_indices

    def counting(*args):
        calls.append(args[:3])
        return build(*args)

    monkeypatch.setattr(bicubic_arch, 'calculate_weights_indices', counting)
    bicubic_arch._cached_resize_matrix.cache_clear()
    net = build_network({'type': 'Bicubic', 'upscale': 2})
    x = torch.rand(1, 3, 13, 19)
    with torch.inference_mode():
        first = net(x)
    assert len(calls) == 2  # height and width
    second = net(x.clone().requires_grad_())
    assert len(calls) == 2
    torch.testing.assert_close(second.detach(), first, atol=0, rtol=0)
    second.sum().backward()
    matrix = bicubic_arch.resize_matrix(13, 26, 2)
    matrix.zero_()  # the public function hands out a copy: the cache is untouched
    torch.testing.assert_close(net(x), first, atol=0, rtol=0)
