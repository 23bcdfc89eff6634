"""Headless Debian Chromium for the page tests: selenium's Chrome driver on Debian's chromedriver and chromium.

Nothing is downloaded: the chromedriver path is passed to selenium's ``Service`` (so Selenium Manager never
runs) and the browser binary to ``options.binary_location``. Use it as a context manager, so the browser and
the driver are stopped in every case::

    with Browser(width=1280, height=1000) as b:   # a selenium webdriver.Chrome
        b.get(file_url('/tmp/page/index.html'))
        title = b.execute_script('return document.title')
        png = b.screenshot()                # PNG bytes of the viewport
        rgb = b.screenshot_array()          # (H, W, 3) uint8 RGB

Without Chromium or chromedriver, :func:`require_browser` raises ``BrowserMissing`` (an ``AssertionError``,
so the test fails rather than skips) with the command that installs them.
"""
import os
import pathlib
import shutil
import warnings

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

INSTALL = 'apt-get update && apt-get install -y chromium chromium-driver'
CHROME_ARGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync')


class BrowserMissing(AssertionError):
    """Chromium or chromedriver is not installed."""


def require_browser():
    """Paths ``(chromium, chromedriver)`` found on PATH.

    Raises:
        BrowserMissing: One of them is missing; the message names the install command.
    """
    found = {name: shutil.which(name) for name in ('chromium', 'chromedriver')}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise BrowserMissing(f'headless browser tests need {" and ".join(missing)}; install them with:  {INSTALL}'
                             ' (Debian/Ubuntu packages; nothing is downloaded by selenium)')
    return found['chromium'], found['chromedriver']


def file_url(path):
    """``file://`` URL of a local file."""
    return pathlib.Path(os.path.abspath(path)).as_uri()


class Browser(webdriver.Chrome):
    """Headless Chromium in a window of ``width`` x ``height`` CSS pixels, driven by Debian's chromedriver.

    Args:
        width (int): Window width in CSS pixels.
        height (int): Window height in CSS pixels.
        timeout (float): Seconds allowed for a page load or a script, and the default of :meth:`wait_for`.
    """

    def __init__(self, width=1400, height=1000, timeout=60):
        chromium, chromedriver = require_browser()
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in CHROME_ARGS + (f'--window-size={width},{height}', ):
            options.add_argument(arg)
        with warnings.catch_warnings():
            # The driver listens on localhost, so never go through an http_proxy. The replacement that
            # selenium's warning names (a ClientConfig) is not a parameter of the local webdriver.Chrome.
            warnings.simplefilter('ignore', DeprecationWarning)
            options.ignore_local_proxy_environment_variables()
        super().__init__(options=options, service=Service(executable_path=chromedriver))
        self.timeout = timeout
        self.set_page_load_timeout(timeout)
        self.set_script_timeout(timeout)

    def wait_for(self, script, *args, timeout=None):
        """Poll the JavaScript ``script`` until it returns something truthy; returns that.

        Raises:
            selenium.common.exceptions.TimeoutException: Not truthy within ``timeout`` seconds.
        """
        return WebDriverWait(self, timeout or self.timeout, poll_frequency=0.05).until(
            lambda driver: driver.execute_script(script, *args), f'waited for: {script}')

    def screenshot(self):
        """A PNG screenshot of the viewport, as bytes."""
        return self.get_screenshot_as_png()

    def screenshot_array(self):
        """The viewport screenshot as an ``(H, W, 3)`` uint8 RGB array."""
        import cv2
        import numpy as np
        img = cv2.imdecode(np.frombuffer(self.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
        return img[..., ::-1].copy()
