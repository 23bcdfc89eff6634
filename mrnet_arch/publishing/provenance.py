"""Where a weight file comes from: dataset, training length, licence and date, for model-zoo entries and cards.

Two sources, the first that applies:

- ``PROVENANCE.md`` beside the weights (as ``mrnet_arch/demo_weights/`` has it), used only when its ``sha256``
  row is the weights' sha256. Its table rows ``| key | value |`` give: ``training`` (``N iterations``,
  ``batch B``, ``LR patch P``), ``dataset``, ``dataset size`` (``N images``), ``licence`` (an SPDX id first)
  and ``written`` (the date);
- the training option file of a BasicSR experiment (``experiments/<name>/*.yml`` beside ``models/``, as
  ``mrnet_arch.publishing.model_card.find_options`` finds it): ``train.total_iter``, the train set's ``name``,
  ``batch_size_per_gpu`` and ``gt_size``.

Every key is absent when its source does not say it; the caller's options fill the rest.
"""
import datetime
import re
from os import path as osp

import yaml

from mrnet_arch.publishing.model_card import find_options
from mrnet_arch.storage.files import sha256_of

PROVENANCE_FILE = 'PROVENANCE.md'
_ROW = re.compile(r'^\|\s*([^|]+?)\s*\|\s*(.*?)\s*\|\s*$', re.M)
_DATE = re.compile(r'\b(\d{4}-\d\d-\d\d)\b')


def _int(pattern, text):
    found = re.search(pattern, text or '')
    return int(found.group(1).replace(',', '')) if found else None


def from_markdown(text, sha256, scale):
    """What a ``PROVENANCE.md`` says about weights of ``sha256`` (``{}`` when it describes another file).

    Args:
        text (str): The Markdown.
        sha256 (str): The weights' sha256.
        scale (int): Their scale (the LR patch times it is the HR patch).

    Returns:
        dict: Some of ``iterations``, ``batch_size``, ``hr_size``, ``dataset``, ``dataset_size``, ``license``,
        ``date``, and ``source`` (the file).
    """
    rows = {k.lower(): v for k, v in _ROW.findall(text)}
    if sha256 not in rows.get('sha256', ''):
        return {}
    training = rows.get('training', '')
    patch = _int(r'LR patch (\d+)', training)
    found = {
        'iterations': _int(r'([\d,]+) iterations', training),
        'batch_size': _int(r'batch (\d+)', training),
        'hr_size': patch * scale if patch else None,
        'dataset': rows.get('dataset'),
        'dataset_size': _int(r'(\d[\d,]*)', rows.get('dataset size')),
        'license': (rows.get('licence') or rows.get('license') or '').split(' ')[0] or None,
        'date': (_DATE.search(rows.get('written', '')) or [None, None])[1],
    }
    return {k: v for k, v in found.items() if v is not None}


def from_options(path):
    """What a BasicSR training option file says: ``iterations``, ``batch_size``, ``hr_size``, ``dataset``."""
    with open(path, encoding='utf-8') as f:
        opt = yaml.safe_load(f) or {}
    train_set = ((opt.get('datasets') or {}).get('train')) or {}
    found = {
        'iterations': (opt.get('train') or {}).get('total_iter'),
        'batch_size': train_set.get('batch_size_per_gpu'),
        'hr_size': train_set.get('gt_size'),
        'dataset': train_set.get('name'),
    }
    return {k: v for k, v in found.items() if v is not None}


def read_provenance(weights, scale):
    """The provenance of a weight file (see the module docstring); ``source`` names the file it came from.

    Args:
        weights (str): The weight file.
        scale (int): Its scale.

    Returns:
        dict: Some of ``iterations``, ``batch_size``, ``hr_size``, ``dataset``, ``dataset_size``, ``license``,
        ``date``, ``source``; ``{}`` when nothing describes the weights.
    """
    markdown = osp.join(osp.dirname(osp.abspath(weights)), PROVENANCE_FILE)
    if osp.isfile(markdown):
        with open(markdown, encoding='utf-8') as f:
            found = from_markdown(f.read(), sha256_of(weights), scale)
        if found:
            return dict(found, source=markdown)
    options = find_options(weights)
    if options:
        found = from_options(options[0])
        if found:
            return dict(found, source=options[0])
    return {}


def file_date(path):
    """The modification date of ``path`` as ``yyyy-mm-dd`` (UTC)."""
    stamp = datetime.datetime.fromtimestamp(osp.getmtime(path), datetime.timezone.utc)
    return stamp.date().isoformat()
