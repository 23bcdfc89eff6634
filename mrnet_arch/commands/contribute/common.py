"""What every ``mrnet contribute`` host shares: the error type, reading files, the plugin's LICENSE, and writing a
planned set of files into a checkout (idempotent; nothing replaced without ``--overwrite``) and the PR body."""
import os
from collections import Counter
from os import path as osp

from mrnet_arch.errors import InputError
from mrnet_arch.project import package_dir, source_checkout
from mrnet_arch.storage.files import write_bytes, write_text


class ContributeError(InputError, RuntimeError):
    """The checkout, the weights or an existing file stop the contribution; the message says which."""


def read(path, binary=False):
    """The contents of ``path``: bytes, or text (UTF-8)."""
    with open(path, 'rb' if binary else 'r', **({} if binary else {'encoding': 'utf-8'})) as f:
        return f.read()


def license_text():
    """The plugin's LICENSE: the source checkout's, or the copy a wheel installs as package data."""
    checkout = source_checkout()
    for path in ([osp.join(checkout, 'LICENSE')] if checkout else []) + [osp.join(package_dir(), 'LICENSE')]:
        if osp.isfile(path):
            return read(path)
    raise ContributeError(f'the plugin\'s LICENSE is missing (looked in {checkout or package_dir()}); reinstall it')


def check_folder(folder, parts, what):
    """Raise ``ContributeError`` unless ``folder`` holds every path of ``parts``.

    Args:
        folder (str): The checkout.
        parts (Sequence[str]): Paths it must hold.
        what (str): What it should be, e.g. 'BasicSR checkout (clone https://...)'.
    """
    if not osp.isdir(folder):
        raise ContributeError(f'{folder}: no such folder (expected a {what})')
    missing = [p for p in parts if not osp.exists(osp.join(folder, p))]
    if missing:
        raise ContributeError(f'{folder} is not a {what}: it lacks {", ".join(missing)}')


def only_adds_lines(old, new):
    """Whether text ``new`` keeps every line of ``old`` (as many times), i.e. an edit that only adds lines."""
    return not Counter(old.splitlines()) - Counter(new.splitlines())


def check_pr_body(path):
    """Raise ``ContributeError`` when the PR description cannot be written to ``path`` (before anything is)."""
    if path is None:
        return
    folder = osp.dirname(osp.abspath(path))
    if not osp.isdir(folder):
        raise ContributeError(f'--pr-body {path}: its folder {folder} does not exist')
    if osp.isdir(path):
        raise ContributeError(f'--pr-body {path}: is a folder, expected a Markdown file name')


def write(checkout, files, overwrite=False, is_addition=None):
    """Write ``files`` into ``checkout``; returns ``[(status, path)]`` with status wrote/unchanged/replaced.

    Args:
        checkout (str): The checkout.
        files (dict): ``{checkout path: text or bytes}``.
        overwrite (bool): Replace files that exist with other contents. Default: False.
        is_addition (Callable[[str, str, str], bool] | None): ``(path, old, new) -> bool``: the change of an
            existing text file that only adds to it (a registry line, a README row), written without
            ``overwrite``. Default: none is.

    Raises:
        ContributeError: Some files exist with other contents and ``overwrite`` is False; nothing is written.
    """
    status, differing = [], []
    for rel, content in files.items():
        path = osp.join(checkout, rel)
        binary = isinstance(content, bytes)
        if not osp.exists(path):
            status.append(('wrote', rel))
            continue
        old = read(path, binary=binary)
        if old == content:
            status.append(('unchanged', rel))
            continue
        status.append(('replaced', rel))
        if binary or is_addition is None or not is_addition(rel, old, content):
            differing.append(rel)
    if differing and not overwrite:
        raise ContributeError(f'{checkout}: these files exist with other contents and would be overwritten: '
                              f'{", ".join(differing)}. Nothing was written; pass --overwrite to replace them.')
    for state, rel in status:
        if state == 'unchanged':
            continue
        path = osp.join(checkout, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        content = files[rel]
        (write_bytes if isinstance(content, bytes) else write_text)(path, content)
    return status


def report(checkout, status, next_step, pr_body=None, pr_text=None):
    """Print what was written, write the PR description (``--pr-body``) and print the next step."""
    for state, rel in status:
        print(f'{state:9s} {rel}')
    if pr_body is not None:
        write_text(pr_body, pr_text)
        print(f'PR description: {pr_body}')
    counts = {s: sum(1 for x, _ in status if x == s) for s in ('wrote', 'replaced', 'unchanged')}
    print(f'{checkout}: {counts["wrote"]} written, {counts["replaced"]} replaced, {counts["unchanged"]} unchanged. '
          f'{next_step}')
