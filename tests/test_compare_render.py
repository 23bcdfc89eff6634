"""Crop choice, scores, figures and the static page of ``mrnet_arch.reports`` (crops, figure, page), on real photos.

The "model outputs" are stand-ins made from scikit-image's photos (bicubic, nearest-neighbour and a
sharpened bicubic upsampling of the MATLAB-bicubic x2 downscale), not trained networks: the tests are
about rendering and bookkeeping, not about which model is better.
"""
import html
import json
import re

import cv2
import numpy as np
import pytest

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils.matlab_functions import imresize
from mrnet_arch.reports import crops, figure, page


def photo(name):
    """``skimage.data.<name>()`` as RGB uint8, cropped to even height and width (x2 mod-crop)."""
    from skimage import data
    img = getattr(data, name)()[..., :3]
    return np.ascontiguousarray(img[:img.shape[0] // 2 * 2, :img.shape[1] // 2 * 2])


def stand_ins(gt):
    """Stand-in SR outputs for an x2 downscale of ``gt``: {'Bicubic', 'Nearest', 'Sharpened'}."""
    h, w = gt.shape[:2]
    lr = np.clip(np.round(imresize(gt.astype(np.float32) / 255., 0.5) * 255.), 0, 255).astype(np.uint8)
    bicubic = cv2.resize(lr, (w, h), interpolation=cv2.INTER_CUBIC)
    nearest = cv2.resize(lr, (w, h), interpolation=cv2.INTER_NEAREST)
    blur = cv2.GaussianBlur(bicubic, (0, 0), 1.0).astype(np.float32)
    sharp = np.clip(np.round(bicubic.astype(np.float32) * 1.6 - blur * 0.6), 0, 255).astype(np.uint8)
    return {'Bicubic': bicubic, 'Nearest': nearest, 'Sharpened': sharp}


@pytest.fixture(scope='module')
def chelsea():
    gt = photo('chelsea')
    return gt, stand_ins(gt)


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy / (aw * ah + bw * bh - ix * iy)


def degrade(img, box):
    """``img`` with the region ``box`` replaced by a strong blur of itself (a clearly worse model there)."""
    out = img.copy()
    x, y, w, h = box
    out[y:y + h, x:x + w] = cv2.GaussianBlur(img, (0, 0), 3.0)[y:y + h, x:x + w]
    return out


# ---- crop choice ----------------------------------------------------------------------------------


@pytest.mark.parametrize('region', [(300, 150, 60, 60), (40, 200, 60, 60), (180, 60, 60, 60)])
def test_choose_crop_finds_where_one_model_is_clearly_worse(chelsea, region):
    gt, outs = chelsea
    good = outs['Bicubic']
    outputs = {'Bicubic': good, 'Broken': degrade(good, region), 'Also good': outs['Bicubic'].copy()}
    box = crops.choose_crop(gt, outputs, size=60)
    assert box[2:] == (60, 60)
    assert iou(box, region) > 0.75, (box, region)
    assert crops.choose_crop(gt, outputs, size=60) == box  # deterministic


def test_choose_crop_spread_rule_and_margin(chelsea):
    gt, outs = chelsea
    # the clearly-worse region touches the top-left corner: the box must keep the margin
    region = (0, 0, 60, 60)
    outputs = {'Bicubic': outs['Bicubic'], 'Broken': degrade(outs['Bicubic'], region)}
    x, y, w, h = crops.choose_crop(gt, outputs, size=48, margin=10, stride=1)
    assert 10 <= x <= 12 and 10 <= y <= 12 and (w, h) == (48, 48)  # inside the margin and the region
    x, y, w, h = crops.choose_crop(gt, outputs, size=(64, 40), margin=10)
    assert x >= 10 and y >= 10 and x + w <= gt.shape[1] - 10 and y + h <= gt.shape[0] - 10
    # the window's score is the spread (worst minus best mean luma error): verify it at the chosen box
    err = {n: np.abs(crops.luma(o) - crops.luma(gt)) for n, o in outputs.items()}
    spread = lambda b: (max(crops.crop(e, b).mean() for e in err.values()) -  # noqa: E731
                        min(crops.crop(e, b).mean() for e in err.values()))
    best = crops.choose_crop(gt, outputs, size=48, margin=10, stride=1)
    for other in [(10, 11, 48, 48), (11, 10, 48, 48), (200, 100, 48, 48), (300, 200, 48, 48)]:
        assert spread(best) >= spread(other)


def test_choose_crop_default_size_and_errors(chelsea):
    gt, outs = chelsea
    box = crops.choose_crop(gt, outs)
    assert box[2] == box[3] == crops.default_crop_size(gt) == 60  # a fifth of 300
    crops.validate_crop(box, gt)
    with pytest.raises(ValueError, match='no model outputs'):
        crops.choose_crop(gt, {})
    with pytest.raises(ValueError, match='Small'):
        crops.choose_crop(gt, {'Small': outs['Bicubic'][:100]})
    with pytest.raises(ValueError, match='does not fit'):
        crops.choose_crop(gt, outs, size=1000)


def test_chosen_crop_shows_the_model_difference(chelsea):
    """With the three stand-ins the crop lands where nearest neighbour is much worse than the rest."""
    gt, outs = chelsea
    box = crops.choose_crop(gt, outs)
    scores = crops.score_images(gt, outs, box, crop_border=2)
    gap_crop = scores['Bicubic']['crop_psnr'] - scores['Nearest']['crop_psnr']
    gap_image = scores['Bicubic']['psnr'] - scores['Nearest']['psnr']
    assert gap_crop > gap_image + 2  # the crop shows the difference more than the whole image does


# ---- user crops -----------------------------------------------------------------------------------


def test_parse_crop_accepts_a_box_inside_the_image(chelsea):
    gt, _ = chelsea
    assert crops.parse_crop('10,20,64,48', gt) == (10, 20, 64, 48)
    assert crops.parse_crop(' 386 , 252 , 64 , 48 ', gt.shape) == (386, 252, 64, 48)  # touches the corner


@pytest.mark.parametrize('text, why', [
    ('400,20,64,48', 'outside'),  # x + w = 464 > 450
    ('10,260,64,48', 'outside'),  # y + h = 308 > 300
    ('-1,0,64,48', 'outside'),
    ('10,20,5,48', 'at least'),
    ('10,20,64', 'expected x,y,w,h'),
    ('a,b,c,d', 'expected x,y,w,h'),
    ('10;20;64;48', 'expected x,y,w,h'),
])
def test_parse_crop_rejects_bad_boxes_naming_option_and_size(chelsea, text, why):
    gt, _ = chelsea
    with pytest.raises(ValueError) as info:
        crops.parse_crop(text, gt)
    message = str(info.value)
    assert message.startswith('--crop') and why in message and '450x300' in message, message


def test_validate_crop_uses_the_given_option_name():
    with pytest.raises(ValueError, match=r'^--box 0,0,40,40 reaches outside the image: the image is 30x20'):
        crops.validate_crop((0, 0, 40, 40), (20, 30, 3), option='--box')


# ---- scores ---------------------------------------------------------------------------------------


def test_default_scorer_is_basicsr_on_the_y_channel_of_rgb_input(chelsea):
    gt, outs = chelsea
    sr = outs['Sharpened']
    psnr, ssim = crops.basicsr_score(2)(sr, gt)
    bgr_sr, bgr_gt = sr[..., ::-1], gt[..., ::-1]
    assert psnr == calculate_psnr(bgr_sr, bgr_gt, 2, test_y_channel=True)
    assert ssim == calculate_ssim(bgr_sr, bgr_gt, 2, test_y_channel=True)
    # independent check of the colour order: PSNR of the BT.601 luma of the RGB images
    diff = (crops.luma(sr) - crops.luma(gt))[2:-2, 2:-2]
    assert psnr == pytest.approx(10 * np.log10(255.**2 / np.mean(diff**2)), abs=1e-4)


def test_score_images_whole_and_crop(chelsea):
    gt, outs = chelsea
    box = (100, 80, 64, 48)
    scores = crops.score_images(gt, outs, box, crop_border=2)
    assert list(scores) == list(outs)
    for name, sr in outs.items():
        whole = crops.basicsr_score(2)(sr, gt)
        part = crops.basicsr_score(0)(sr[80:128, 100:164], gt[80:128, 100:164])
        assert (scores[name]['psnr'], scores[name]['ssim']) == whole
        assert (scores[name]['crop_psnr'], scores[name]['crop_ssim']) == part
    # the caller's evaluator decides the convention
    calls = []

    def evaluator(sr, ref):
        calls.append(sr.shape)
        return 12.5, 0.25

    custom = crops.score_images(gt, outs, box, score=evaluator, crop_score=evaluator)
    assert custom['Nearest'] == {'psnr': 12.5, 'ssim': 0.25, 'crop_psnr': 12.5, 'crop_ssim': 0.25}
    assert calls.count(gt.shape) == 3 and calls.count((48, 64, 3)) == 3


# ---- figure ---------------------------------------------------------------------------------------


def find(haystack, needle):
    """Top-left corners where ``needle`` occurs exactly in ``haystack`` (both RGB uint8)."""
    res = cv2.matchTemplate(haystack.astype(np.float32), needle.astype(np.float32), cv2.TM_SQDIFF)
    # SQDIFF is computed with float rounding: take near-zero candidates, then compare exactly
    ys, xs = np.nonzero(res < 1e-5 * float((needle.astype(np.float64)**2).sum()) + 1)
    return [(int(x), int(y)) for y, x in zip(ys, xs)
            if np.array_equal(haystack[y:y + needle.shape[0], x:x + needle.shape[1]], needle)]


def test_zoom_nearest_keeps_pixel_values(chelsea):
    gt, _ = chelsea
    part = crops.crop(gt, (120, 90, 17, 13))
    zoomed = figure.zoom_nearest(part, 5)
    assert zoomed.shape == (65, 85, 3) and zoomed.dtype == np.uint8
    assert np.array_equal(zoomed[::5, ::5], part)
    for dy in range(5):
        for dx in range(5):
            assert np.array_equal(zoomed[dy::5, dx::5], part)
    assert set(map(tuple, zoomed.reshape(-1, 3))) == set(map(tuple, part.reshape(-1, 3)))
    assert figure.zoom_factor((0, 0, 60, 40), 240) == 4 and figure.zoom_factor((0, 0, 400, 300), 240) == 1


def test_figure_layout_order_and_exact_crops(chelsea, tmp_path):
    gt, outs = chelsea
    outputs = {'Sharpened': outs['Sharpened'], 'Nearest': outs['Nearest'], 'Bicubic': outs['Bicubic']}
    box = (288, 112, 48, 40)
    scores = crops.score_images(gt, outputs, box, crop_border=2)
    path = tmp_path / 'chelsea.png'
    fig = figure.render_figure(gt, outputs, box, scores, name='chelsea', panel=240, path=str(path))
    factor = figure.zoom_factor(box, 240)
    assert factor == 5
    zw, zh = 48 * factor, 40 * factor
    # every crop (Bicubic first, the models in order, GT last) appears exactly, zoomed, in one row
    spots = {}
    for label, img in [('Bicubic', outs['Bicubic']), ('Sharpened', outs['Sharpened']),
                       ('Nearest', outs['Nearest']), ('GT', gt)]:
        found = find(fig, figure.zoom_nearest(crops.crop(img, box), factor))
        assert len(found) == 1, (label, found)
        spots[label] = found[0]
    xs = [spots[k][0] for k in ('Bicubic', 'Sharpened', 'Nearest', 'GT')]
    assert xs == sorted(xs) and len({spots[k][1] for k in spots}) == 1
    steps = np.diff(xs)
    assert (steps == steps[0]).all() and zw < steps[0] < zw + 40  # same size, evenly spaced
    # the thumbnail lies left of the crops and the figure is as tall as a panel plus its captions
    assert spots['Bicubic'][0] > 300
    assert zh + 40 < fig.shape[0] < zh + 160
    assert 0 < fig.shape[1] - (xs[-1] + zw) < 40  # right padding only
    # white background, red crop box on the thumbnail
    assert (fig[0] == 255).all() and (fig[-1] == 255).all()
    red = (fig[..., 0] > 200) & (fig[..., 1] < 40) & (fig[..., 2] < 40)
    assert red[:, :spots['Bicubic'][0]].sum() > 100
    # written as PNG in BGR order: reads back as the same RGB array
    assert np.array_equal(cv2.imread(str(path))[..., ::-1], fig)


def test_figure_wraps_many_models_into_rows(chelsea):
    gt, outs = chelsea
    outputs = {f'model {i}': outs['Sharpened'] for i in range(5)}
    outputs['Bicubic'] = outs['Bicubic']
    box = (288, 112, 60, 60)
    scores = crops.score_images(gt, outputs, box, crop_border=2)
    fig = figure.render_figure(gt, outputs, box, scores, panel=120, columns=3)
    # 7 panels (Bicubic, 5 models, GT) in rows of 3: Bicubic top-left, GT first in the third row
    bic = find(fig, figure.zoom_nearest(crops.crop(outs['Bicubic'], box), 2))
    ref = find(fig, figure.zoom_nearest(crops.crop(gt, box), 2))
    same = find(fig, figure.zoom_nearest(crops.crop(outs['Sharpened'], box), 2))
    assert len(bic) == 1 and len(ref) == 1 and len(same) == 5
    rows = sorted({y for _, y in bic + ref + same})
    assert len(rows) == 3 and bic[0][1] == rows[0] and ref[0][1] == rows[2] and ref[0][0] == bic[0][0]
    assert sum(y == rows[0] for _, y in bic + same) == 3


def test_captions_show_the_scorers_numbers(chelsea):
    gt, outs = chelsea
    box = crops.choose_crop(gt, outs)
    scores = crops.score_images(gt, outs, box, crop_border=2)
    for name in outs:
        s = scores[name]
        lines = figure.caption_lines(name, scores)
        assert lines[0] == name
        assert lines[1].split() == ['crop', f'{s["crop_psnr"]:.2f}', '/', f'{s["crop_ssim"]:.4f}']
        assert lines[2].split() == ['image', f'{s["psnr"]:.2f}', '/', f'{s["ssim"]:.4f}']
    # the numbers drawn are the ones given: other scores give other caption pixels, same crops
    fig = figure.render_figure(gt, outs, box, scores)
    other = {n: {k: v - 1.0 for k, v in s.items()} for n, s in scores.items()}
    fig2 = figure.render_figure(gt, outs, box, other)
    assert fig.shape == fig2.shape and not np.array_equal(fig, fig2)
    zh = box[3] * figure.zoom_factor(box, 240)
    rows = np.nonzero((fig != fig2).any(axis=(1, 2)))[0]
    assert rows.min() > zh  # only the captions under the crops changed


def test_render_figure_requires_scores_for_every_model(chelsea):
    gt, outs = chelsea
    with pytest.raises(ValueError, match='Nearest'):
        figure.render_figure(gt, outs, (10, 10, 40, 40), {'Bicubic': {}, 'Sharpened': {}})


# ---- page (without a browser) ---------------------------------------------------------------------


def test_page_numbers_match_json_and_everything_is_inline(chelsea, tmp_path):
    gt, outs = chelsea
    box = crops.choose_crop(gt, outs)
    scores = crops.score_images(gt, outs, box, crop_border=2)
    fig = figure.render_figure(gt, outs, box, scores, name='chelsea', path=str(tmp_path / 'fig.png'))
    small = gt[:120, :160].copy()
    small_outs = {k: v[:120, :160].copy() for k, v in outs.items() if k != 'Sharpened'}
    small_scores = crops.score_images(small, small_outs, (20, 20, 40, 40), crop_border=2)
    paths = page.write_page(str(tmp_path / 'site'), [
        {'name': 'chelsea', 'gt': gt, 'outputs': outs, 'scores': scores, 'crop': box, 'figure': str(tmp_path /
                                                                                                    'fig.png')},
        {'name': 'corner <&>', 'gt': small, 'outputs': small_outs, 'scores': small_scores, 'figure': fig},
    ], title='Test page')
    text = open(paths['html'], encoding='utf-8').read()
    data = json.load(open(paths['json'], encoding='utf-8'))
    assert data['decimals'] == {'psnr': 2, 'ssim': 4}
    assert data['models'] == ['Bicubic', 'Nearest', 'Sharpened']
    assert data['images'][0]['scores'] == scores and data['images'][0]['crop'] == list(box)
    assert data['mean']['Sharpened']['psnr'] == scores['Sharpened']['psnr']  # only in one image
    assert data['mean']['Bicubic']['ssim'] == np.mean([scores['Bicubic']['ssim'], small_scores['Bicubic']['ssim']])

    cells = re.findall(r'<td[^>]*data-image="([^"]*)" data-model="([^"]*)" data-metric="(\w+)" '
                       r'data-value="([^"]*)">([^<]*)</td>', text)
    assert len(cells) == 2 * 3 + 2 * 2 + 2 * 3  # chelsea, corner, mean
    for image, model, metric, value, shown in cells:
        image = html.unescape(image)
        number = (data['mean'][model][metric] if image == 'mean' else
                  {e['name']: e for e in data['images']}[image]['scores'][model][metric])
        assert float(value) == number and value == json.dumps(number)
        assert shown == f'{number:.{data["decimals"][metric]}f}'
    assert text.count('class="na"') == 2  # corner has no Sharpened: two dashes

    # no server, no external files: every src is a data URI, no links, no external scripts or styles
    assert not re.search(r'<(link|iframe)\b|\bhref=|src="(?!data:image/png;base64,)', text)
    assert 'corner &lt;&amp;&gt;' in text
    # each full image once: 3 + 1 + 2 + 1 full images, 2 figures
    store = json.loads(re.search(r'<script type="application/json" id="full-images">(.*?)</script>', text,
                                 re.S).group(1))
    assert sorted(store['0']) == ['Bicubic', 'GT', 'Nearest', 'Sharpened'] and sorted(store['1']) == [
        'Bicubic', 'GT', 'Nearest']
    for uris in store.values():
        for uri in uris.values():
            assert text.count(uri) == 1
    assert text.count('data:image/png;base64,') == 7 + 2
    decoded = page.data_uri(outs['Nearest'])
    assert store['0']['Nearest'] == decoded


def test_page_rejects_missing_scores_and_a_model_named_gt(chelsea, tmp_path):
    gt, outs = chelsea
    with pytest.raises(ValueError, match='no scores'):
        page.write_page(str(tmp_path), [{'name': 'x', 'gt': gt, 'outputs': outs, 'scores': {}}])
    with pytest.raises(ValueError, match="'GT'"):
        page.write_page(str(tmp_path), [{'name': 'x', 'gt': gt, 'outputs': {'GT': gt}, 'scores': {'GT': {}}}])
