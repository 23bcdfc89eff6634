"""The comparison page (``mrnet_arch.reports.page``) in a real headless Chromium.

The page is built from real photos (scikit-image's ``chelsea`` and ``coffee``, downscaled x2 with
basicsr's MATLAB-style ``imresize``). The "model outputs" are stand-ins, not trained networks: bicubic
(cv2 INTER_CUBIC), nearest-neighbour and a sharpened bicubic upsampling of that downscale. The test
opens ``index.html`` from disk (file://, no server) and checks that every image loads, that the table
shows the numbers of ``scores.json``, and that moving the slider changes which model is shown, pixel by
pixel, in a screenshot.

Needs Debian's Chromium and chromedriver (``apt-get install -y chromium chromium-driver``), driven by
selenium (``pip install -e ".[test]"``); without them the test fails and says so.
``MRNET_SCREENSHOT=path.png`` saves a screenshot of the page.
"""
import json
import os
import re
import subprocess

import numpy as np
import pytest
from browser import Browser, file_url, require_browser
from test_compare_render import photo, stand_ins

import mrnet_arch  # noqa: F401  (basicsr compat fixes before any basicsr import)
from mrnet_arch.reports import crops, figure, page

IMAGES = ('chelsea', 'coffee')


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('compare')
    images = []
    for name in IMAGES:
        gt = photo(name)
        outputs = stand_ins(gt)
        box = crops.choose_crop(gt, outputs)
        scores = crops.score_images(gt, outputs, box, crop_border=2)
        fig_path = str(out / f'{name}_figure.png')
        figure.render_figure(gt, outputs, box, scores, name=name, path=fig_path)
        images.append({'name': name, 'gt': gt, 'outputs': outputs, 'scores': scores, 'crop': box,
                       'figure': fig_path})
    paths = page.write_page(str(out / 'site'), images, title='MRNet comparison (stand-in outputs)')
    return paths, images


def slider_state(browser, index):
    return browser.execute_script(
        'const ba = document.querySelectorAll(".ba")[arguments[0]];'
        'const over = ba.querySelector("img.over"), stage = ba.querySelector(".stage");'
        'const r = stage.getBoundingClientRect();'
        'return {clip: getComputedStyle(over).clipPath, value: ba.querySelector("input.split").value,'
        '        left: ba.querySelector("select.left").value, right: ba.querySelector("select.right").value,'
        '        x: r.x, y: r.y, width: r.width, height: r.height, dpr: window.devicePixelRatio};', index)


def set_slider(browser, index, value=None, left=None, right=None):
    browser.execute_script(
        'const ba = document.querySelectorAll(".ba")[arguments[0]];'
        'for (const [cls, v] of [["left", arguments[2]], ["right", arguments[3]]]) {'
        '  if (v === null) continue;'
        '  const s = ba.querySelector("select." + cls); s.value = v;'
        '  s.dispatchEvent(new Event("change", {bubbles: true})); }'
        'if (arguments[1] !== null) { const r = ba.querySelector("input.split"); r.value = arguments[1];'
        '  r.dispatchEvent(new Event("input", {bubbles: true})); }', index, value, left, right)
    # wait until both slider images have (re)loaded their new sources
    browser.wait_for('const ba = document.querySelectorAll(".ba")[arguments[0]];'
                     'return [...ba.querySelectorAll(".stage img")].every(i => i.complete && i.naturalWidth > 0'
                     ' && i.src.startsWith("data:"));', index)


def stage_pixels(browser, index):
    """Scroll the slider into view, screenshot, and cut out its stage; also returns the state."""
    browser.execute_script(
        'document.querySelectorAll(".ba .stage")[arguments[0]].scrollIntoView({block: "center"});', index)
    state = slider_state(browser, index)
    shot = browser.screenshot_array()
    d = state['dpr']
    x, y = int(round(state['x'] * d)), int(round(state['y'] * d))
    w, h = int(round(state['width'] * d)), int(round(state['height'] * d))
    return shot[y:y + h, x:x + w], state


def test_page_in_headless_chromium(site):
    require_browser()  # fails (not skips) with the install command when Chromium is missing
    paths, images = site
    data = json.load(open(paths['json'], encoding='utf-8'))
    with Browser(width=1400, height=1000) as browser:
        browser.get(file_url(paths['html']))
        assert browser.execute_script('return document.title') == 'MRNet comparison (stand-in outputs)'

        # every <img> loaded: 2 figures and 2 x 2 slider images
        browser.wait_for('return [...document.images].every(i => i.complete && i.naturalWidth > 0);')
        imgs = browser.execute_script('return [...document.images].map(i => [i.className, i.complete,'
                                      ' i.naturalWidth, i.naturalHeight]);')
        assert [i[0] for i in imgs] == ['figure', 'under', 'over'] * len(IMAGES)
        assert all(ok and w > 0 for _, ok, w, _ in imgs)
        for (cls, _, w, h), item in zip(imgs[1::3], images):
            assert (h, w) == item['gt'].shape[:2]
        for (cls, _, w, h), item in zip(imgs[0::3], images):
            assert (h, w, 3) == figure_shape(item['figure'])
        assert browser.execute_script('return [...document.querySelectorAll("[src]")]'
                                      '.every(e => e.getAttribute("src").startsWith("data:image/png;base64,"));')

        if os.environ.get('MRNET_SCREENSHOT'):
            with open(os.environ['MRNET_SCREENSHOT'], 'wb') as f:
                f.write(browser.screenshot())

        # the table shows the numbers of scores.json, at the displayed precision
        cells = browser.execute_script('return [...document.querySelectorAll("#scores td[data-value]")].map(td =>'
                                       ' [td.dataset.image, td.dataset.model, td.dataset.metric, td.dataset.value,'
                                       ' td.innerText.trim()]);')
        models = data['models']
        assert len(cells) == (len(IMAGES) + 1) * len(models) * 2
        by_name = {e['name']: e['scores'] for e in data['images']}
        seen = set()
        for image, model, metric, value, shown in cells:
            number = data['mean'][model][metric] if image == 'mean' else by_name[image][model][metric]
            decimals = data['decimals'][metric]
            assert json.loads(value) == number
            assert len(shown.split('.')[1]) == decimals, shown
            assert abs(float(shown) - number) <= 0.5 * 10**-decimals + 1e-12, (image, model, metric, shown)
            seen.add((image, model, metric))
        assert len(seen) == len(cells)
        mean_psnr = np.mean([by_name[n]['Bicubic']['psnr'] for n in IMAGES])
        assert data['mean']['Bicubic']['psnr'] == pytest.approx(mean_psnr, abs=1e-12)

        # the slider: Nearest on the left, Sharpened on the right, split at 70 %, then at 20 %
        set_slider(browser, 0, 70, left='Nearest', right='Sharpened')
        before, state = stage_pixels(browser, 0)
        assert state['clip'].startswith('inset(') and re.findall(r'[\d.]+%', state['clip']) == ['30%']
        set_slider(browser, 0, 20)
        after, state2 = stage_pixels(browser, 0)
        assert re.findall(r'[\d.]+%', state2['clip']) == ['80%'] and state2['value'] == '20'
        assert before.shape == after.shape and before.shape[:2] == images[0]['gt'].shape[:2]
        w = before.shape[1]
        diff = np.abs(before.astype(int) - after.astype(int)).max(axis=2)
        moved = diff[:, int(0.2 * w) + 3:int(0.7 * w) - 3]  # left model before, right model after
        kept_left = diff[:, :int(0.2 * w) - 3]  # left model in both
        kept_right = diff[:, int(0.7 * w) + 3:]  # right model in both
        assert moved.mean() > 2 and (moved > 0).mean() > 0.3, moved.mean()
        assert kept_left.max() <= 2 and kept_right.max() <= 2
        # what is shown is the models' pixels: Nearest left of the split, Sharpened right of it (rows
        # below the name tags in the stage's top corners; 3 px kept clear of the divider line)
        near, sharp = images[0]['outputs']['Nearest'], images[0]['outputs']['Sharpened']
        cut, top = int(0.2 * w), 40
        shown = after.astype(int)[top:]
        left_err = np.abs(shown[:, :cut - 3] - near[top:, :cut - 3]).mean()
        right_err = np.abs(shown[:, cut + 3:] - sharp[top:, cut + 3:]).mean()
        right_vs_near = np.abs(shown[:, cut + 3:] - near[top:, cut + 3:]).mean()
        assert left_err < 1.0 and right_err < 1.0, (left_err, right_err)
        assert right_vs_near > 2 * right_err + 1, (right_vs_near, right_err)

        # choosing GT on the right shows the ground truth there
        set_slider(browser, 1, 50, left='Bicubic', right='GT')
        stage, _ = stage_pixels(browser, 1)
        gt1 = images[1]['gt']
        half = stage.shape[1] // 2
        assert np.abs(stage[40:, half + 3:].astype(int) - gt1[40:, half + 3:]).mean() < 1.0
        bicubic = images[1]['outputs']['Bicubic']
        assert np.abs(stage[40:, :half - 3].astype(int) - bicubic[40:, :half - 3]).mean() < 1.0


def figure_shape(path):
    import cv2
    return cv2.imread(path).shape


def version_of(program):
    """The dotted version number that ``program --version`` prints (e.g. '156.0.8078.114')."""
    out = subprocess.run([program, '--version'], capture_output=True, text=True, timeout=60).stdout
    found = re.search(r'\b(\d+(?:\.\d+){3})\b', out)
    assert found, f'no version in the output of {program} --version: {out!r}'
    return found.group(1)


def test_selenium_drives_debian_chromium_without_selenium_manager(monkeypatch):
    """The session runs the chromedriver and chromium found on PATH, and Selenium Manager (which would
    download a driver and a browser) is never called."""
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    chromium, chromedriver = require_browser()

    def no_manager(*args, **kwargs):
        raise AssertionError('Selenium Manager was called')

    monkeypatch.setattr(SeleniumManager, 'binary_paths', no_manager)
    with Browser(width=640, height=480) as browser:
        assert browser.service.path == chromedriver
        caps = browser.capabilities
        assert caps['browserName'] == 'chrome'
        assert caps['browserVersion'] == version_of(chromium)
        assert caps['chrome']['chromedriverVersion'].split()[0] == version_of(chromedriver)
        assert browser.execute_script('return navigator.userAgent').find('HeadlessChrome') >= 0
        assert browser.execute_script('return [window.innerWidth, window.innerHeight]')[0] == 640
        process = browser.service.process
        assert process.poll() is None
    assert process.poll() is not None  # the driver stopped with the context
