"""``mrnet contribute basicsr DIR``: write MRNet into a BasicSR checkout, as a model-zoo pull request has it.

What it writes into the checkout at DIR (a folder holding ``basicsr/archs/``, ``basicsr/models/``,
``basicsr/data/`` and ``basicsr/train.py``; BasicSR 1.4.2's layout and GitHub master's):

- the plugin's drop-in files, the files the plugin itself imports: every module file of ``mrnet_arch/archs``,
  ``models`` and ``data`` but ``__init__.py`` (found by glob: ``mrnet_arch.py`` with its sibling
  ``mrnet_config.py``, ``bicubic_arch.py``, ``mrnet_model.py``, ``multiscale_dataset.py``, ...) into
  ``basicsr/archs/``, ``basicsr/models/`` and ``basicsr/data/``, where BasicSR's scan registers their classes.
  One change: their classes register with ``suffix='basicsr'`` (``MRNet_basicsr``, ...), BasicSR's convention for
  its copy of code that another package registers too (Real-ESRGAN's ``SRVGGNetCompact``): ``type: MRNet``
  still finds them through the registry's fallback, and the plugin (which registers ``MRNet``) imports beside
  that BasicSR in one process;
- every option file the plugin ships: ``train_*.yml`` (with ``ablation/`` and ``demo/``) under
  ``options/train/MRNet/``, ``test_*.yml`` under ``options/test/MRNet/``, with BasicSR's relative dataset
  paths (``datasets/DIV2K/...``, ``datasets/Set5/...``); the demo's shipped weights go to
  ``experiments/pretrained_models/`` and its option file points there;
- when the package holds the campaign's pretrained weights (``mrnet_arch/pretrained/``, MRNet-S x2 plus a bicubic
  global skip), those too, as ``--weights`` adds weights, with their shipped model card and provenance beside them;
- a section in ``docs/ModelZoo.md`` (between ``<!-- MRNet -->`` markers) with the models, their
  parameter counts and option files;
- with ``--weights W``: the weights under ``experiments/pretrained_models/``, their model card beside them,
  test option files that point at them (with the weights' global skip, if they have one), and a row for them
  in the model-zoo section.

Rerunning it is idempotent. A file that exists with other contents is never overwritten without
``--overwrite``; the command then writes nothing and names the files. In ``docs/ModelZoo.md`` it only
adds: its section is inserted or, keeping every earlier line (earlier weight rows included), extended; an
MRNet section edited by hand is replaced only with ``--overwrite``.
"""
import copy
import glob
import hashlib
import os
import re
from os import path as osp

import yaml

from mrnet_arch.commandline.cli_paths import inside
from mrnet_arch.measurement.complexity import count_params
from mrnet_arch.project import package_dir, pretrained_weights, shipped_options_dir

from .common import ContributeError, check_folder, check_pr_body, only_adds_lines
from .common import read as _read
from .common import report, write

CHECKOUT_PARTS = ('basicsr/archs', 'basicsr/models', 'basicsr/data', 'basicsr/train.py')
DROP_IN_FOLDERS = ('archs', 'models', 'data')  # of the plugin, each copied into basicsr/<folder>/
DEMO_WEIGHTS = 'demo_weights/MRNet_demo_x2.pth'
PRETRAINED = 'experiments/pretrained_models'
ZOO_FILE = 'docs/ModelZoo.md'
ZOO_BEGIN, ZOO_END = '<!-- MRNet -->', '<!-- /MRNet -->'
REGISTER = re.compile(r'^(@[A-Z]+_REGISTRY)\.register\(\)$', re.M)


def check_checkout(folder):
    """Raise ``ContributeError`` unless ``folder`` is a BasicSR checkout (the parts it needs exist)."""
    check_folder(folder, CHECKOUT_PARTS, 'BasicSR checkout (clone https://github.com/XPixelGroup/BasicSR and pass '
                 'its folder)')


def basicsr_copy(text):
    """A drop-in file as BasicSR holds it: each ``@<X>_REGISTRY.register()`` with ``suffix='basicsr'``."""
    return REGISTER.sub(r"\1.register(suffix='basicsr')", text)


def drop_in_files():
    """``{checkout path: text}`` of every module file of the plugin's archs/, models/ and data/ but __init__.py,
    as ``basicsr_copy`` writes it."""
    pkg = package_dir()
    files = {}
    for folder in DROP_IN_FOLDERS:
        for path in sorted(glob.glob(osp.join(pkg, folder, '*.py'))):
            if osp.basename(path) != '__init__.py':
                files[f'basicsr/{folder}/{osp.basename(path)}'] = basicsr_copy(_read(path))
    return files


def _option_target(rel):
    """Where the shipped option file ``rel`` (relative to ``options/``) goes in the checkout."""
    head, name = osp.split(rel)
    kind = 'test' if name.startswith('test_') else 'train'
    return osp.join('options', kind, 'MRNet', head, name)


def option_files():
    """``{checkout path: text}`` of every shipped option file, as the checkout runs them."""
    root = shipped_options_dir()
    files = {}
    for folder, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if not name.endswith('.yml'):
                continue
            rel = osp.relpath(osp.join(folder, name), root)
            text = _read(osp.join(folder, name))
            text = text.replace(f'mrnet_arch/{DEMO_WEIGHTS}', f'{PRETRAINED}/{osp.basename(DEMO_WEIGHTS)}')
            files[_option_target(rel)] = text
    return files


def _params(network_g):
    """Parameter count of a ``network_g`` option dict, built through BasicSR's ARCH_REGISTRY."""
    from basicsr.archs import build_network
    return count_params(build_network(copy.deepcopy(network_g)))


def zoo_rows(options):
    """Model-zoo rows (Markdown) of the shipped training option files, parsed from their checkout texts."""
    rows = []
    for path, text in sorted(options.items()):
        if not path.startswith('options/train/MRNet/train_'):
            continue
        opt = yaml.safe_load(text)
        net = opt['network_g']
        scales = net.get('upscales') or [net.get('upscale', opt.get('scale'))]
        rows.append(f"| {opt['name']} | {net['type']} | {'/'.join(f'x{s}' for s in scales)} | "
                    f"{_params(net):,} | `{path}` |")
    return rows


def zoo_section(options, weight_rows=()):
    """The Markdown section for ``docs/ModelZoo.md``, between the MRNet markers."""
    lines = [
        ZOO_BEGIN,
        '## MRNet',
        '',
        '*Memory Recursive Network for Single Image Super-Resolution* (ACM MM 2020): one memory recursive',
        'module (MRM) applied T times with shared weights, its outputs fused by ShuffleConv. Archs in',
        '`basicsr/archs/mrnet_arch.py` (`MRNet`, `MultiScaleMRNet`, `MRM`, `ShuffleConv`) and',
        '`basicsr/archs/bicubic_arch.py` (`Bicubic`); model classes `MRNetModel` and `MultiScaleMRNetModel`',
        'in `basicsr/models/mrnet_model.py`; `MultiScalePairedImageDataset` in',
        '`basicsr/data/multiscale_dataset.py`. Train with',
        '`PYTHONPATH=. python basicsr/train.py -opt options/train/MRNet/train_MRNet_x2.yml`,',
        'test with `PYTHONPATH=. python basicsr/test.py -opt options/test/MRNet/test_MRNet_x2.yml`.',
        '',
        '| name | arch | scales | params | training options |',
        '|:---|:---|:---|---:|:---|',
        *zoo_rows(options),
    ]
    if weight_rows:
        lines += ['', '| weights | arch | scales | params | sha256 | test options | model card |',
                  '|:---|:---|:---|---:|:---|:---|:---|', *weight_rows]
    return '\n'.join(lines + [ZOO_END]) + '\n'


def _zoo_pattern():
    return re.compile(re.escape(ZOO_BEGIN) + '.*?' + re.escape(ZOO_END) + r'\n?', re.S)


def earlier_weight_rows(existing):
    """The weight rows of an earlier MRNet section in ModelZoo text ``existing`` (None: no file)."""
    found = _zoo_pattern().search(existing or '')
    return [line for line in found.group(0).splitlines() if line.startswith(f'| `{PRETRAINED}/')] if found else []


def merge_zoo(existing, section):
    """``existing`` ModelZoo text with ``section`` in place of an earlier MRNet section, or appended."""
    if existing is None:
        return '# Model Zoo\n\n' + section
    pattern = _zoo_pattern()
    if pattern.search(existing):
        return pattern.sub(lambda _: section, existing, count=1)
    return existing.rstrip('\n') + '\n\n' + section


def zoo_update_is_addition(existing, updated):
    """Whether ``updated`` keeps every line of the MRNet section of ``existing`` (it only adds rows)."""
    old, new = _zoo_pattern().search(existing), _zoo_pattern().search(updated)
    if old is None:
        return only_adds_lines(existing, updated)
    return new is not None and set(old.group(0).splitlines()) <= set(new.group(0).splitlines())


def is_addition(rel, old, new):
    """``common.write``'s test: only ``docs/ModelZoo.md`` is updated in place, when its MRNet section grows."""
    return rel == ZOO_FILE and zoo_update_is_addition(old, new)


def weight_files(weights, options, test_option=None, prefer_ema=True, card=None, provenance=None):
    """The files ``--weights`` adds: the weights, their model card and test option files pointing at them.

    Args:
        weights (str): Weight file (BasicSR checkpoint, state dict or safetensors).
        options (dict): ``option_files()``.
        test_option (str | None): Checkout path of the test option file to derive from (its ``network_g``
            must fit the weights). Default: the shipped ``test_MRNet_x<s>.yml`` of the weights' scale, or
            ``test_MRNet_multiscale.yml``.
        prefer_ema (bool): Use ``params_ema`` when the checkpoint has it. Default: True.
        card (str | None): The model card's text. Default: ``mrnet card``'s card of the weights.
        provenance (str | None): If given, written as ``<stem>_PROVENANCE.md`` beside the weights and named in
            the row.

    Returns:
        tuple[dict, str]: ``{checkout path: text or bytes}`` and the model-zoo row.

    Raises:
        ContributeError: The weights cannot be read, or do not fit the test option file's network.
    """
    from basicsr.archs import build_network
    from mrnet_arch.publishing.model_card import make_card
    from mrnet_arch.storage.weights import WeightsError, build_from_state_dict, read_state_dict
    try:
        state_dict, metadata = read_state_dict(weights, prefer_ema=prefer_ema)
        net, config = build_from_state_dict(state_dict, weights, metadata)
    except WeightsError as e:
        raise ContributeError(f'--weights: {e}') from e
    if test_option is None:
        multi = config['type'] == 'MultiScaleMRNet'
        test_option = f"options/test/MRNet/test_MRNet_{'multiscale' if multi else 'x%d' % config['upscale']}.yml"
    if test_option not in options:
        raise ContributeError(f'--test-options {test_option}: not a shipped test option file; choose one of '
                              f'{sorted(p for p in options if "/test/" in p)}')
    opt = yaml.safe_load(options[test_option])
    if config.get('global_skip') and not opt['network_g'].get('global_skip'):
        opt['network_g']['global_skip'] = config['global_skip']  # the test option file runs the weights' network
    expected = build_network(copy.deepcopy(opt['network_g'])).state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [k for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise ContributeError(
            f'the weights {weights} do not match network_g of {test_option} ({dict(opt["network_g"])}): missing '
            f'keys {missing[:5]}, unexpected keys {unexpected[:5]}, other shapes {shapes[:5]}; the weights are '
            f'{config}. Pass --test-options with a test option file that fits them.')
    stem = osp.splitext(osp.basename(weights))[0]
    ext = osp.splitext(weights)[1].lower()
    target = f'{PRETRAINED}/{stem}{ext}'
    opt['name'] = stem
    opt['path']['pretrain_network_g'] = target
    opt['path']['param_key_g'] = 'params_ema' if prefer_ema else 'params'  # MRNetModel falls back to the other
    test_path = f'options/test/MRNet/test_{stem}.yml'
    header = (f'# {stem}: {test_option} with the pretrained weights {target}.\n'
              f'# Written by `mrnet contribute basicsr`.\n')
    data = _read(weights, binary=True)
    digest = hashlib.sha256(data).hexdigest()
    card_path = f'{PRETRAINED}/{stem}.md'
    card = make_card(weights, prefer_ema=prefer_ema) if card is None else card
    scales = '/'.join(f'x{s}' for s in (config.get('upscales') or [config['upscale']]))
    arch = config['type'] + (f' + {config["global_skip"]} global skip' if config.get('global_skip') else '')
    files = {target: data, card_path: card, test_path: header + yaml.safe_dump(opt, sort_keys=False)}
    cards = f'`{card_path}`'
    if provenance is not None:
        files[f'{PRETRAINED}/{stem}_PROVENANCE.md'] = provenance
        cards += f', provenance `{PRETRAINED}/{stem}_PROVENANCE.md`'
    row = (f'| `{target}` | {arch} | {scales} | {count_params(net):,} | '
           f'`{digest[:16]}…` | `{test_path}` | {cards} |')
    return files, row


def pretrained_files(options):
    """The files and model-zoo row of the package's pretrained weights (``mrnet_arch/pretrained/``): as
    ``weight_files`` adds weights, with the shipped ``MODEL_CARD.md`` as their card and ``PROVENANCE.md`` beside.

    Args:
        options (dict): ``option_files()``.

    Returns:
        tuple[dict, str | None]: ``{checkout path: text or bytes}`` and the row; ``({}, None)`` when the package
        holds no pretrained weights.
    """
    weights = pretrained_weights()
    if not osp.isfile(weights):
        return {}, None
    folder = osp.dirname(weights)
    texts = [_read(osp.join(folder, name)) if osp.isfile(osp.join(folder, name)) else None
             for name in ('MODEL_CARD.md', 'PROVENANCE.md')]
    return weight_files(weights, options, card=texts[0], provenance=texts[1])


def plan(checkout, weights=None, test_option=None, prefer_ema=True):
    """``{checkout path: text or bytes}`` of everything the contribution writes into ``checkout``."""
    pkg = package_dir()
    files = drop_in_files()
    options = option_files()
    files.update(options)
    files[f'{PRETRAINED}/{osp.basename(DEMO_WEIGHTS)}'] = _read(osp.join(pkg, DEMO_WEIGHTS), binary=True)
    shipped, row = pretrained_files(options)
    files.update(shipped)
    rows = [row] if row else []
    if weights is not None and shipped and osp.realpath(weights) == osp.realpath(pretrained_weights()):
        weights = None  # the pretrained weights themselves: already added
    if weights is not None:
        extra, row = weight_files(weights, options, test_option, prefer_ema)
        clash = [p for p in extra if p in files]
        if clash:
            raise ContributeError(f'--weights {weights}: its files {clash} would replace shipped files; '
                                  'rename the weight file')
        files.update(extra)
        rows.append(row)
    zoo = osp.join(checkout, ZOO_FILE)
    existing = _read(zoo) if osp.isfile(zoo) else None
    new_targets = {row.split('`')[1] for row in rows}
    rows = [r for r in earlier_weight_rows(existing) if r.split('`')[1] not in new_targets] + rows
    files[ZOO_FILE] = merge_zoo(existing, zoo_section(options, rows))
    return files


MRNET_SUMMARY = (
    'MRNet (*Memory Recursive Network for Single Image Super-Resolution*, ACM MM 2020) applies one memory '
    'recursive module (MRM: input encoder, a ConvBlock of EDSR residual blocks, memory updater) T times with '
    'shared weights and fuses the T outputs with ShuffleConv, one small linear layer per channel group before '
    'PixelShuffle: 0.88 M parameters for MRNet-S x2 (T = 4), 1.06 M for the multi-scale MRNet (x2/x3/x4).')


def pr_body(files):
    """The pull-request description (Markdown) for the files ``plan`` wrote."""
    code = sorted(p for p in files if p.startswith('basicsr/'))
    options = sorted(p for p in files if p.startswith('options/'))
    zoo = _zoo_pattern().search(files.get(ZOO_FILE, ''))
    rows = [line for line in (zoo.group(0).splitlines() if zoo else []) if line.startswith('|')]
    return '\n'.join([
        '# Add MRNet (ACM MM 2020) to the model zoo', '', MRNET_SUMMARY, '', '## What is added', '',
        *[f'- `{p}`' for p in code],
        f'- {len(options)} option files under `options/train/MRNet/` and `options/test/MRNet/` (the paper\'s '
        'x2/x3/x4 and multi-scale settings, Table 1/Table 2/Figure 7 ablations, a small demo)',
        f'- `{PRETRAINED}/{osp.basename(DEMO_WEIGHTS)}`: small demo weights for `options/*/MRNet/demo/`',
        *([f'- `{PRETRAINED}/{osp.basename(pretrained_weights())}`: MRNet-S x2 plus a bicubic global skip (an '
           'addition to the paper\'s architecture), trained on CPUs; its model card and provenance beside it']
          if f'{PRETRAINED}/{osp.basename(pretrained_weights())}' in files else []),
        f'- an MRNet section in `{ZOO_FILE}`', '',
        'The files import only torch and basicsr (the arch file imports its sibling `mrnet_config.py` '
        'relatively); no other file of BasicSR changes.', '', '## How it was tested', '',
        '- `flake8 .`, `isort --check-only --diff` and `yapf -d` (this repository\'s CI commands and '
        '`setup.cfg`) on the added Python files: clean.',
        '- `PYTHONPATH=. python basicsr/train.py -opt options/train/MRNet/train_MRNet_x2.yml` and the '
        'multi-scale option file, then `basicsr/test.py -opt options/test/MRNet/test_MRNet_x2.yml` on Set5, '
        'Set14, B100, Urban100 and Manga109 layouts, on the CPU with size overrides (`--force_yml`).',
        '- The parameter counts below are the built networks\' (Table 1 and 2 of the paper are reproduced by the '
        'ablation option files).', '', '## Model zoo', '', *rows, ''])


def run(args):
    """``mrnet contribute basicsr``: plan, write, report. Returns the exit code."""
    checkout = osp.abspath(args.dir)
    check_checkout(checkout)
    test_options = args.test_options
    if test_options and osp.isfile(test_options) and inside(test_options, checkout):  # a path to the checkout's file
        test_options = osp.relpath(osp.realpath(test_options), osp.realpath(checkout)).replace(os.sep, '/')
    files = plan(checkout, args.weights, test_options, prefer_ema=not args.no_ema)
    check_pr_body(args.pr_body)
    status = write(checkout, files, overwrite=args.overwrite, is_addition=is_addition)
    report(checkout, status, f'Train with: cd {checkout} && PYTHONPATH=. python basicsr/train.py -opt '
           'options/train/MRNet/train_MRNet_x2.yml', args.pr_body, pr_body(files) if args.pr_body else None)
    return 0
