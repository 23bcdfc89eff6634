"""A minimal headless-Chromium driver for tests: W3C WebDriver over HTTP with ``urllib`` only.

Starts Debian's ``/usr/bin/chromedriver`` on a free port of 127.0.0.1, opens a session that runs
``/usr/bin/chromium`` headless, and offers ``get``, ``execute``, ``screenshot`` and friends. No
selenium, no websockets, no proxies (the requests bypass any ``http_proxy`` setting); all traffic stays
on 127.0.0.1. Use it as a context manager so that the session is deleted and the driver stopped in
every case::

    with Browser() as browser:
        browser.get(file_url('/tmp/page/index.html'))
        title = browser.execute('return document.title')
        png = browser.screenshot()          # PNG bytes
        rgb = browser.screenshot_array()    # (H, W, 3) uint8 RGB

If Chromium or chromedriver is missing, :func:`require_browser` raises ``BrowserMissing`` (an
``AssertionError``, so the test fails rather than skips) with the command that installs them.
"""
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
INSTALL = 'apt-get update && apt-get install -y chromium chromium-driver'
CHROME_ARGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync')
W3C_ELEMENT = 'element-6066-11e4-a52e-4f735466cecc'


class BrowserMissing(AssertionError):
    """Chromium or chromedriver is not installed."""


class WebDriverError(RuntimeError):
    """A WebDriver command failed; the message holds the driver's error and message."""


def require_browser(chromium=CHROMIUM, chromedriver=CHROMEDRIVER):
    """Raise :class:`BrowserMissing` naming the install command unless both programs are there."""
    missing = [p for p in (chromium, chromedriver) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        raise BrowserMissing(f'headless browser tests need {" and ".join(missing)}; install them with:  {INSTALL}'
                             ' (Debian/Ubuntu packages; Playwright browsers are not used)')


def free_port():
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def file_url(path):
    """``file://`` URL of a local file."""
    return pathlib.Path(os.path.abspath(path)).as_uri()


class Browser:
    """One chromedriver process and one headless Chromium session.

    Args:
        width (int): Window width in CSS pixels.
        height (int): Window height in CSS pixels.
        chromium (str): The Chromium binary.
        chromedriver (str): The chromedriver binary.
        timeout (float): Seconds to wait for the driver to start and for each command.
        log (str | None): File for chromedriver's log (default: discarded).
    """

    def __init__(self, width=1400, height=1000, chromium=CHROMIUM, chromedriver=CHROMEDRIVER, timeout=60,
                 log=None):
        require_browser(chromium, chromedriver)
        self.width, self.height = width, height
        self.chromium, self.chromedriver = chromium, chromedriver
        self.timeout = timeout
        self.log = log
        self.port = None
        self.process = None
        self.session = None
        self._log_file = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self):
        """Start chromedriver and open a session; returns self."""
        self.port = free_port()
        self._log_file = open(self.log, 'w') if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen([self.chromedriver, f'--port={self.port}', '--allowed-ips=127.0.0.1'],
                                        stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + self.timeout
        while True:
            if self.process.poll() is not None:
                raise WebDriverError(f'{self.chromedriver} exited at start (code {self.process.returncode})')
            try:
                if self._request('GET', '/status', timeout=2).get('value', {}).get('ready'):
                    break
            except (OSError, WebDriverError):
                pass
            if time.time() > deadline:
                raise WebDriverError(f'{self.chromedriver} did not become ready within {self.timeout} s')
            time.sleep(0.1)
        caps = {'capabilities': {'alwaysMatch': {
            'browserName': 'chrome',
            'goog:chromeOptions': {
                'binary': self.chromium,
                'args': list(CHROME_ARGS) + [f'--window-size={self.width},{self.height}'],
            },
        }}}
        value = self._request('POST', '/session', caps)['value']
        self.session = value['sessionId']
        return self

    def close(self):
        """Delete the session and stop the driver (safe to call twice)."""
        try:
            if self.session is not None:
                try:
                    self._request('DELETE', f'/session/{self.session}', timeout=20)
                except (OSError, WebDriverError):
                    pass
                self.session = None
        finally:
            if self.process is not None:
                if self.process.poll() is None:
                    self.process.terminate()
                    try:
                        self.process.wait(10)
                    except subprocess.TimeoutExpired:
                        self.process.kill()
                        self.process.wait(10)
                self.process = None
            if self._log_file not in (None, subprocess.DEVNULL):
                self._log_file.close()
            self._log_file = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    # -- protocol -----------------------------------------------------------------------------------
    def _request(self, method, path, body=None, timeout=None):
        data = None if body is None else json.dumps(body).encode('utf-8')
        req = urllib.request.Request(f'http://127.0.0.1:{self.port}{path}', data=data, method=method,
                                     headers={'Content-Type': 'application/json; charset=utf-8'})
        try:
            with self._opener.open(req, timeout=timeout or self.timeout) as resp:
                return json.loads(resp.read().decode('utf-8') or '{}')
        except urllib.error.HTTPError as err:
            try:
                value = json.loads(err.read().decode('utf-8')).get('value', {})
            except ValueError:
                value = {}
            raise WebDriverError(f'{method} {path}: HTTP {err.code} {value.get("error", "")}: '
                                 f'{str(value.get("message", ""))[:2000]}') from None

    def command(self, method, path, body=None):
        """Send a session command (``path`` relative to ``/session/<id>``); returns its ``value``."""
        if self.session is None:
            raise WebDriverError('no session (use Browser() as a context manager, or call start())')
        return self._request(method, f'/session/{self.session}{path}', body).get('value')

    # -- conveniences -------------------------------------------------------------------------------
    def get(self, url):
        """Navigate to ``url`` and wait until the page has loaded (``document.readyState`` complete)."""
        self.command('POST', '/url', {'url': url})
        self.wait_for('return document.readyState === "complete"')

    def execute(self, script, *args):
        """Run ``script`` (a function body; ``arguments[i]`` are ``args``) and return its result."""
        return self.command('POST', '/execute/sync', {'script': script, 'args': list(args)})

    def execute_async(self, script, *args):
        """Run an async script; it ends by calling ``arguments[arguments.length - 1](result)``."""
        return self.command('POST', '/execute/async', {'script': script, 'args': list(args)})

    def wait_for(self, script, *args, timeout=None, interval=0.05):
        """Poll ``script`` until it returns something truthy; returns that, or raises TimeoutError."""
        deadline = time.time() + (timeout or self.timeout)
        while True:
            value = self.execute(script, *args)
            if value:
                return value
            if time.time() > deadline:
                raise TimeoutError(f'waited {timeout or self.timeout} s for: {script}')
            time.sleep(interval)

    def find(self, css):
        """The first element matching a CSS selector, as a W3C element reference (pass it to execute)."""
        return self.command('POST', '/element', {'using': 'css selector', 'value': css})

    def rect(self, css):
        """Viewport rectangle ``{x, y, width, height}`` (CSS pixels) of the first match of ``css``."""
        return self.execute('const r = document.querySelector(arguments[0]).getBoundingClientRect();'
                            'return {x: r.x, y: r.y, width: r.width, height: r.height};', css)

    def screenshot(self):
        """A PNG screenshot of the viewport, as bytes."""
        return base64.b64decode(self.command('GET', '/screenshot'))

    def screenshot_array(self):
        """The viewport screenshot as an ``(H, W, 3)`` uint8 RGB array."""
        import cv2
        import numpy as np
        img = cv2.imdecode(np.frombuffer(self.screenshot(), np.uint8), cv2.IMREAD_COLOR)
        return img[..., ::-1].copy()


def which_browser():
    """``(chromium, chromedriver)`` paths if installed in the usual Debian places or on PATH, else None."""
    chromium = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which('chromium')
    driver = CHROMEDRIVER if os.path.isfile(CHROMEDRIVER) else shutil.which('chromedriver')
    return (chromium, driver) if chromium and driver else None
