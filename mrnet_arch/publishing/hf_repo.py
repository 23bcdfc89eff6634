"""Hugging Face Hub model repositories of MRNet weights: written by ``mrnet export --format hf``, read by
``Upscaler.from_pretrained``.

A repository folder holds

- ``model.safetensors``: the network's state dict with its arch config in the ``mrnet_config`` metadata
  (``storage/weights.save_safetensors``, as ``mrnet export --format safetensors`` writes it);
- ``config.json``: the same arch config (BasicSR ``network_g`` options, with ``type``);
- ``README.md``: the model card. Its YAML front matter holds what the Hub reads: ``license``,
  ``pipeline_tag: image-to-image``, ``tags``, and, when test results are given, a ``model-index`` with one entry
  per test set (and scale) and metric; the body is ``mrnet card``'s (``publishing/model_card``) with the weights'
  provenance (``publishing/provenance``), the files of the repository and how to load them, and the paper.

The paper is cited by title and venue only: the paper text this project has carries no DOI and the paper has no
arXiv version.
"""
import json
import os
import re
from os import path as osp

import yaml

from mrnet_arch.publishing.model_card import make_card, read_results
from mrnet_arch.publishing.provenance import read_provenance
from mrnet_arch.storage.files import sha256_of, write_text
from mrnet_arch.storage.weights import WeightsError, save_safetensors

WEIGHTS_FILE, CONFIG_FILE, CARD_FILE = 'model.safetensors', 'config.json', 'README.md'
REPO_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)
PIPELINE_TAG = 'image-to-image'
TAGS = ('super-resolution', 'image-super-resolution', 'mrnet', 'basicsr', 'pytorch', 'safetensors')
PAPER = ('*Memory Recursive Network for Single Image Super-Resolution*, ACM Multimedia 2020 (MM \'20, '
         'October 12–16, 2020, Seattle, WA, USA)')
INSTALL_HF = 'pip install "mrnet_arch[hf]"'
_REPO_ID = re.compile(r'^(?:[\w.-]+/)?[\w.-]+$')


def hub_license(spdx):
    """The Hub's licence id of an SPDX id (lower case: ``MIT`` -> ``mit``, ``CC-BY-4.0`` -> ``cc-by-4.0``)."""
    return spdx.lower()


def model_index(name, config, by_scale):
    """The ``model-index`` front matter of ``publishing/model_card.read_results`` output (``[]`` without results).

    Each test set (and scale) is one result of task ``image-to-image``; the scale is the dataset's ``config``
    (``x2``), the model's own for results without one.
    """
    results = []
    for scale, sets in sorted(by_scale.items(), key=lambda kv: kv[0] or 0):
        scale = scale or (config['upscale'] if config['type'] == 'MRNet' else None)
        for test_set, metrics in sets.items():
            dataset = {'name': test_set, 'type': test_set}
            if scale:
                dataset['config'] = f'x{scale}'
            results.append({
                'task': {'type': PIPELINE_TAG, 'name': 'Image Super-Resolution'},
                'dataset': dataset,
                'metrics': [{'type': k.lower(), 'value': float(v), 'name': k.upper()} for k, v in metrics.items()],
            })
    return [{'name': name, 'results': results}] if results else []


def front_matter(name, config, license, by_scale=None):
    """The card's metadata (the YAML front matter) as a dict, in the order the Hub's examples use."""
    data = {'license': hub_license(license), 'library_name': 'mrnet_arch', 'pipeline_tag': PIPELINE_TAG,
            'tags': list(TAGS)}
    index = model_index(name, config, by_scale or {})
    if index:
        data['model-index'] = index
    return data


def provenance_section(provenance):
    """Markdown lines of what the weights' provenance says."""
    if not provenance:
        return ['No provenance found beside the weights (PROVENANCE.md or the experiment\'s option file).']
    rows = [('dataset', provenance.get('dataset')), ('images', provenance.get('dataset_size')),
            ('iterations', provenance.get('iterations')), ('batch size', provenance.get('batch_size')),
            ('HR patch', provenance.get('hr_size')), ('licence', provenance.get('license')),
            ('date', provenance.get('date'))]
    return ([f'From `{osp.basename(provenance["source"])}` beside the weights.', '', '| | |', '|---|---|'] +
            [f'| {k} | {v} |' for k, v in rows if v is not None])


def card_text(weights, name, config, license, results=None, options=None, prefer_ema=True, weights_sha=None):
    """The repository's README.md: front matter, ``mrnet card``'s body, provenance, files and the paper."""
    by_scale = read_results(results) if results else {}
    meta = yaml.safe_dump(front_matter(name, config, license, by_scale), sort_keys=False, allow_unicode=True)
    body = make_card(weights, results, options, prefer_ema=prefer_ema).rstrip('\n')
    provenance = read_provenance(weights, config['upscale'])
    lines = ['---', meta.rstrip('\n'), '---', '', body, '', '## Provenance', '', *provenance_section(provenance),
             '', '## Files', '', f'- `{WEIGHTS_FILE}`: the weights with their arch config in the safetensors '
             f'metadata (`mrnet_config`); sha256 `{weights_sha}`', f'- `{CONFIG_FILE}`: the arch config (BasicSR '
             '`network_g` options)', '', '## Use', '', '```python', 'from mrnet_arch import Upscaler  '
             '# pip install "mrnet_arch[hf]"', "up = Upscaler.from_pretrained('USER/REPO')  # or this folder",
             "up.upscale_file('photo.png', 'photo_sr.png')", '```', '', '## Paper', '', PAPER, '']
    return '\n'.join(lines)


def write_repo(net, config, weights, output, license, results=None, options=None, prefer_ema=True):
    """Write the repository folder ``output`` (created when missing) for ``net`` loaded from ``weights``.

    Returns:
        list[str]: The files written.
    """
    os.makedirs(output, exist_ok=True)
    paths = [osp.join(output, f) for f in REPO_FILES]
    save_safetensors(net, config, paths[0])
    write_text(paths[1], json.dumps(config, indent=2) + '\n')
    name = osp.splitext(osp.basename(weights))[0]
    write_text(paths[2], card_text(weights, name, config, license, results, options, prefer_ema,
                                   sha256_of(paths[0])))
    return paths


def pretrained_files(repo_id_or_folder, revision=None):
    """The weights file and the config of a repository: a local folder, or a Hub repo id fetched through
    ``huggingface_hub.hf_hub_download`` (its cache; offline when ``HF_HUB_OFFLINE=1`` and cached).

    Returns:
        tuple[str, dict]: The ``model.safetensors`` path and the ``config.json`` contents (``{}`` when absent).

    Raises:
        ImportError: A repo id without huggingface_hub installed (the message names the extra).
        WeightsError: A folder without ``model.safetensors``, an unreadable ``config.json``, or neither a folder
            nor a repo id.
    """
    source = str(repo_id_or_folder)
    if osp.isdir(source):
        weights, config = osp.join(source, WEIGHTS_FILE), osp.join(source, CONFIG_FILE)
        if not osp.isfile(weights):
            raise WeightsError(f'{source}: no {WEIGHTS_FILE} in the folder (write one with mrnet export --format hf)')
        config = config if osp.isfile(config) else None
    elif osp.exists(source) or source.startswith(('.', '/', '~')) or not _REPO_ID.match(source):
        raise WeightsError(f'{source}: expected a model folder (with {WEIGHTS_FILE}) or a Hub repo id such as '
                           'USER/REPO')
    else:
        try:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError,
                                                RevisionNotFoundError)
        except ImportError as err:
            raise ImportError(f'loading the Hub repo {source} needs huggingface_hub: {INSTALL_HF}') from err
        try:
            weights = hf_hub_download(source, WEIGHTS_FILE, revision=revision)
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, HfHubHTTPError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise WeightsError(f'Hub repo {source}: no {WEIGHTS_FILE} could be fetched ({first})') from err
        try:
            config = hf_hub_download(source, CONFIG_FILE, revision=revision)
        except EntryNotFoundError:
            config = None
    if config is None:
        return weights, {}
    try:
        with open(config, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise WeightsError(f'{config}: not readable JSON ({err})') from err
    if not isinstance(data, dict):
        raise WeightsError(f'{config}: expected a JSON object (the arch config)')
    return weights, data
