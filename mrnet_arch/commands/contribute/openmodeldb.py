"""``mrnet contribute openmodeldb DIR --weights W --weights-url URL``: an OpenModelDB entry for MRNet weights.

What it writes into the checkout at DIR (a clone of https://github.com/OpenModelDB/open-model-database: a folder
holding ``data/models/``, ``data/architectures.json``, ``data/tags.json`` and ``data/users.json``):

- ``data/models/<scale>x-<name>.json``: the model in OpenModelDB's schema (``src/lib/schema.ts``), its keys in the
  order OpenModelDB's own writer uses. From the weights (``storage/weights``, ``archs/mrnet_config.infer_config``):
  scale, input and output channels, size (``<num_feat>nf``, ``<num_block>nb``, ``<T>nr``), the file's sha256
  and byte size; from their provenance (``publishing/provenance``: ``PROVENANCE.md`` beside them, else the BasicSR
  experiment's option file): dataset, dataset size, iterations, batch size, HR patch size, licence and date;
  options override each;
- when missing: the ``mrnet`` architecture in ``data/architectures.json``, its tag ``arch:mrnet`` in
  ``data/tags.json`` (and in the architecture category of ``data/tag-categories.json`` when that file exists),
  and the author in ``data/users.json``, each inserted where OpenModelDB's sorted order puts it.

Every JSON file is written as OpenModelDB's ``validate-db`` requires: ``JSON.stringify(data, null, 4)``, no
trailing newline. Idempotent; the model file is never replaced without ``--overwrite``, the registry files are
updated in place when the change only adds entries. Bad input (weights, URL, licence, date, tags, names) stops
the command before anything is written.
"""
import json
import re
from os import path as osp
from urllib.parse import urlparse

from mrnet_arch.measurement.complexity import count_params
from mrnet_arch.publishing.provenance import file_date, read_provenance
from mrnet_arch.storage.files import sha256_of
from mrnet_arch.storage.weights import WeightsError, load_model

from . import DEFAULT_TAGS
from .common import ContributeError, check_folder, license_text, read, report, write

MODELS = 'data/models'
ARCHITECTURES = 'data/architectures.json'
TAGS = 'data/tags.json'
TAG_CATEGORIES = 'data/tag-categories.json'
USERS = 'data/users.json'
CHECKOUT_PARTS = (MODELS, ARCHITECTURES, TAGS, USERS)
ARCH_ID, ARCH_TAG = 'mrnet', 'arch:mrnet'
ARCH_ENTRY = {'name': 'MRNet', 'input': 'image', 'compatiblePlatforms': ['pytorch', 'onnx']}
TAG_ENTRY = {'name': 'MRNet', 'description': ''}
ARCH_CATEGORY = 'architecture'
# what the description says of a global skip (an addition to the paper's network, read from the weights)
GLOBAL_SKIPS = {'bicubic': ', plus a bicubic global skip (the network learns the residual to a bicubic upscale; '
                           'not in the paper)',
                'learned': ', plus a learned global skip (one 3x3 conv; not in the paper)'}
# OpenModelDB's src/lib/server/file-data.ts (modelKeyOrder) and src/lib/schema-util.ts (id patterns)
MODEL_KEY_ORDER = ('name', 'author', 'license', 'tags', 'description', 'date', 'architecture', 'size', 'scale',
                   'inputChannels', 'outputChannels', 'resources', 'trainingIterations', 'trainingEpochs',
                   'trainingBatchSize', 'trainingHRSize', 'trainingOTF', 'dataset', 'datasetSize', 'pretrainedModelG',
                   'pretrainedModelD', 'images', 'thumbnail')
MODEL_ID = re.compile(r'^\d+x-[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$')
USER_ID = re.compile(r'^[a-z0-9]+(?:-[a-z0-9]+)*$')
DATE = re.compile(r'^\d{4}-\d{2}-\d{2}$')
SPDX = re.compile(r'^\(?[A-Za-z0-9.+-]+\)?(?: (?:AND|OR|WITH) \(?[A-Za-z0-9.+-]+\)?)*$')
RESOURCE_TYPES = {'.pth': 'pth', '.pt': 'pth', '.safetensors': 'safetensors'}
PAPER = 'Memory Recursive Network for Single Image Super-Resolution (ACM MM 2020)'


def dumps(data):
    """``data`` as OpenModelDB writes JSON: ``JSON.stringify(data, null, 4)``, without a trailing newline."""
    return json.dumps(data, indent=4, ensure_ascii=False)


def _dashes(text, forbidden):
    return re.sub(r'^-|-$', '', re.sub(f'(?:{forbidden})+', '-', text.strip(), flags=re.I))


def model_id(scale, name):
    """OpenModelDB's ``canonicalizeModelId`` of ``<scale>x-<name>`` (a duplicate scale at either end removed)."""
    text = _dashes(f'{scale}x-{name}', '[^a-z0-9]')
    text = re.sub(r'^(\d+)x-(?:\1x-?|x\1)', r'\1x-', text, flags=re.I)
    return re.sub(r'^((\d+)x.*?)-(?:x\2|\2x)$', r'\1', text, flags=re.I)


def user_id(name):
    """OpenModelDB's ``canonicalizeUserId``: lower case, runs of other characters as one dash."""
    return _dashes(name.lower(), '[^a-z0-9]')


def tag_order(tag):
    """OpenModelDB's ``compareTagId`` as a sort key: category (the part before ':', none first), then the id."""
    return (tag.split(':', 1)[0] if ':' in tag else '', tag)


def insert_sorted(mapping, key, value, sort_key=lambda k: k):
    """A copy of ``mapping`` with ``key`` inserted before the first key that sorts after it (the others keep
    their order, so an already sorted file gets a one-entry diff)."""
    items = list(mapping.items())
    at = next((i for i, (k, _) in enumerate(items) if sort_key(k) > sort_key(key)), len(items))
    return dict(items[:at] + [(key, value)] + items[at:])


def load_json(checkout, rel):
    """A JSON object of the checkout, or ``ContributeError`` naming the file."""
    try:
        data = json.loads(read(osp.join(checkout, rel)))
    except (OSError, ValueError) as err:
        raise ContributeError(f'{osp.join(checkout, rel)}: not readable JSON ({err})') from err
    if not isinstance(data, dict):
        raise ContributeError(f'{osp.join(checkout, rel)}: expected a JSON object of entries, found '
                              f'{type(data).__name__}')
    return data


def check_url(url):
    """Raise ``ContributeError`` unless ``url`` is a public http(s) URL that OpenModelDB accepts."""
    parsed = urlparse(url or '')
    if parsed.scheme not in ('https', 'http') or not parsed.netloc or ' ' in url:
        raise ContributeError(f'--weights-url {url!r}: expected the public http(s) URL of the weight file, e.g. '
                              'https://github.com/USER/REPO/releases/download/v1/MRNet_x2.pth')
    if url.startswith('https://cdn.discordapp.com/'):
        raise ContributeError(f'--weights-url {url}: OpenModelDB refuses Discord CDN links (they expire); host the '
                              'file elsewhere (GitHub Releases, Hugging Face, Google Drive)')


def default_author():
    """The copyright holder of the plugin's LICENSE (``Copyright (c) YEAR HOLDER``)."""
    found = re.search(r'Copyright \(c\) [\d, -]+ (.+)', license_text())
    return found.group(1).strip() if found else 'MRNet'


def description(config, params, provenance):
    """The entry's Markdown description: the network and where the weights come from."""
    size = (f'{config["num_feat"]} features, {config["num_block"]} residual blocks per ConvBlock, '
            f'T = {recursions(config)} recursions of one memory recursive module')
    skip = GLOBAL_SKIPS.get(config.get('global_skip'), '')
    lines = [f'{config["type"]} x{config["upscale"]}, {PAPER}: {size}, '
             f'{config.get("fusion", "shuffleconv")} fusion{skip}; {params:,} parameters.']
    if provenance.get('dataset') or provenance.get('iterations'):
        trained = ', '.join(x for x in (
            f'{provenance["iterations"]:,} iterations' if provenance.get('iterations') else '',
            f'on {provenance["dataset"]}' if provenance.get('dataset') else '') if x)
        lines += ['', f'Trained {trained} (provenance: `{osp.basename(provenance["source"])}`).']
    lines += ['', 'Loads with the BasicSR plugin mrnet_arch (`mrnet infer --weights FILE`, '
              '`Upscaler.from_weights(FILE)`) and with spandrel once MRNet is registered.']
    return '\n'.join(lines)


def recursions(config):
    """T of the config's scale."""
    if config['type'] == 'MultiScaleMRNet':
        return config['num_recursions'][config['upscales'].index(config['upscale'])]
    return config['num_recursion']


def model_entry(args, config, params, provenance, author):
    """The model's JSON object, keys in OpenModelDB's order."""
    entry = {
        'name': args.name,
        'author': author,
        'license': args.license,
        'tags': sorted(args.tags, key=tag_order),
        'description': description(config, params, provenance),
        'date': args.date,
        'architecture': ARCH_ID,
        'size': [f'{config["num_feat"]}nf', f'{config["num_block"]}nb', f'{recursions(config)}nr'],
        'scale': int(config['upscale']),
        'inputChannels': int(config['num_in_ch']),
        'outputChannels': int(config['num_out_ch']),
        'resources': [{
            'platform': 'pytorch',
            'type': RESOURCE_TYPES[osp.splitext(args.weights)[1].lower()],
            'size': osp.getsize(args.weights),
            'sha256': sha256_of(args.weights),
            'urls': [args.weights_url],
        }],
        'trainingIterations': provenance.get('iterations'),
        'trainingBatchSize': provenance.get('batch_size'),
        'trainingHRSize': provenance.get('hr_size'),
        'dataset': args.dataset,
        'datasetSize': args.dataset_size,
        'images': [],
    }
    return {k: entry[k] for k in MODEL_KEY_ORDER if entry.get(k) is not None}


def settle_options(args):
    """Check the weights and every option, fill the defaults from the weights' provenance.

    Returns:
        tuple[dict, int, dict]: The weights' config, parameter count and provenance.

    Raises:
        ContributeError: A bad option or unreadable weights (named), before anything is written.
    """
    if not args.weights:
        raise ContributeError('openmodeldb needs --weights (the weight file the entry describes)')
    if not osp.isfile(args.weights):
        raise ContributeError(f'--weights {args.weights}: no such file')
    if osp.splitext(args.weights)[1].lower() not in RESOURCE_TYPES:
        raise ContributeError(f'--weights {args.weights}: expected a .pth, .pt or .safetensors file')
    check_url(args.weights_url)
    try:
        net, config = load_model(args.weights, scale=args.scale, prefer_ema=not args.no_ema)
    except WeightsError as err:
        raise ContributeError(f'--weights: {err}') from err
    provenance = read_provenance(args.weights, config['upscale'])
    args.name = args.name or osp.splitext(osp.basename(args.weights))[0]
    args.license = args.license or provenance.get('license')
    args.date = args.date or provenance.get('date') or file_date(args.weights)
    args.dataset = args.dataset or provenance.get('dataset')
    args.dataset_size = args.dataset_size or provenance.get('dataset_size')
    args.author = args.author or default_author()
    args.tags = args.tags or list(DEFAULT_TAGS)
    if not MODEL_ID.match(model_id(config['upscale'], args.name)):
        raise ContributeError(f'--name {args.name!r}: needs letters or digits (the model id is <scale>x-<name>)')
    if args.license is None:
        raise ContributeError(f'{args.weights}: its provenance names no licence; pass --license SPDX-ID (e.g. MIT)')
    if not SPDX.match(args.license):
        raise ContributeError(f'--license {args.license!r}: expected an SPDX licence expression, e.g. MIT, '
                              'CC-BY-4.0, Apache-2.0')
    if not DATE.match(args.date):
        raise ContributeError(f'--date {args.date!r}: expected yyyy-mm-dd')
    if not USER_ID.match(user_id(args.author)):
        raise ContributeError(f'--author {args.author!r}: needs letters or digits')
    if args.dataset_size is not None and args.dataset_size < 1:
        raise ContributeError(f'--dataset-size {args.dataset_size}: expected a positive number of images')
    return config, count_params(net), provenance


def plan(checkout, args):
    """``{checkout path: text}`` of the model file and the registry files that change."""
    config, params, provenance = settle_options(args)
    architectures, tags, users = (load_json(checkout, rel) for rel in (ARCHITECTURES, TAGS, USERS))
    unknown = [t for t in args.tags if t not in tags or ':' in t]
    if unknown:
        raise ContributeError(f'--tags {" ".join(unknown)}: not a tag of {TAGS} that a model lists (derived tags '
                              'such as arch:, scale:, license: are computed by OpenModelDB); e.g. photo, '
                              'general-upscaler, research')
    author = user_id(args.author)
    files = {}
    if ARCH_ID not in architectures:
        files[ARCHITECTURES] = dumps(insert_sorted(architectures, ARCH_ID, ARCH_ENTRY))
    if ARCH_TAG not in tags:
        files[TAGS] = dumps(insert_sorted(tags, ARCH_TAG, TAG_ENTRY, tag_order))
    if author not in users:
        files[USERS] = dumps(insert_sorted(users, author, {'name': args.author}))
    if osp.isfile(osp.join(checkout, TAG_CATEGORIES)):
        categories = load_json(checkout, TAG_CATEGORIES)
        category = categories.get(ARCH_CATEGORY)
        if isinstance(category, dict) and ARCH_TAG not in category.get('tags', []):
            category['tags'] = list(category.get('tags', [])) + [ARCH_TAG]
            files[TAG_CATEGORIES] = dumps(categories)
    entry = model_entry(args, config, params, provenance, author)
    files[f'{MODELS}/{model_id(config["upscale"], args.name)}.json'] = dumps(entry)
    return files


def contains(new, old):
    """Whether JSON value ``new`` keeps all of ``old``: every key with a value that contains the old one, every
    list item in order."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and contains(new[k], v) for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and [x for x in new if x in old] == old
    return new == old


def is_addition(rel, old, new):
    """``common.write``'s test: a registry file is updated in place when the change only adds entries."""
    if rel not in (ARCHITECTURES, TAGS, TAG_CATEGORIES, USERS):
        return False
    try:
        return contains(json.loads(new), json.loads(old))
    except ValueError:
        return False


def run(args):
    """``mrnet contribute openmodeldb``: plan, write, report. Returns the exit code."""
    checkout = osp.abspath(args.dir)
    check_folder(checkout, CHECKOUT_PARTS, 'OpenModelDB checkout (clone '
                 'https://github.com/OpenModelDB/open-model-database and pass its folder)')
    files = plan(checkout, args)
    status = write(checkout, files, overwrite=args.overwrite, is_addition=is_addition)
    report(checkout, status, f'Check with: cd {checkout} && npm ci && npm run validate-db')
    return 0
