"""One option schema (``OPTIONS`` in ``mrnet_arch/models/mrnet_options.py``): the key check, the type checks, the
required keys and ``docs/options.md`` all come from it, and the keys that the checks and ``MRNetModel`` read are in
it."""
import glob
import os
import re

import pytest

import _tiny
from mrnet_arch.models import mrnet_options
from mrnet_arch.models.mrnet_options import OPTIONS, section_keys, unknown_options
from mrnet_arch.preflight import check_report, checks
from mrnet_arch.preflight.checks import CheckError
from mrnet_arch.reports.options_doc import DOC, render

# stand-ins for the sections' placeholders when an option dict is built from the schema
_PLACEHOLDERS = {'<phase>': 'train', '<name>': 'psnr'}


def _path(entry):
    """The key path of a schema entry, placeholders filled in."""
    parts = entry.section.split(':') if entry.section else []
    return [_PLACEHOLDERS.get(p, p) for p in parts] + [entry.key]


def _from_schema(value, skip=()):
    """An option dict with every key of the schema (but sections in ``skip``): mappings as dicts, the rest
    ``value``."""
    opt = {}
    for entry in OPTIONS:
        if entry.section in skip:
            continue
        section = opt
        for part in _path(entry)[:-1]:
            section = section.setdefault(part, {})
        section.setdefault(entry.key, {} if entry.type == 'mapping' else value)
    return opt


def test_the_options_page_is_current():
    with open(os.path.join(_tiny.REPO, DOC), encoding='utf-8') as f:
        assert f.read() == render(), f'{DOC} is out of date: run python tools/make_options_doc.py'


def test_the_page_has_a_table_for_every_section_and_a_row_for_every_key():
    page = render()
    for section in {o.section for o in OPTIONS}:
        title = f'## `{section}`' if section else '## Top level'
        assert page.count(f'\n{title}\n') == 1, section
    rows = re.findall(r'^\| `([^`]+)` \|.*\|$', page, flags=re.M)
    assert len(rows) == len(OPTIONS) + len(mrnet_options.READERS)  # the reader legend has rows too
    assert '--allow-unknown-options' in page and 'did you mean `ema_decay`' in page


def test_the_key_sets_of_the_check_are_the_schema():
    expected = {
        'TOP_LEVEL': set(section_keys('')),
        'PATH': set(section_keys('path')),
        'LOGGER': set(section_keys('logger')),
        'WANDB': set(section_keys('logger:wandb')),
        'DIST_PARAMS': set(section_keys('dist_params')),
    }
    for name, keys in expected.items():
        assert getattr(mrnet_options, name) == keys, name
    dataset_keys = set(section_keys('datasets:<phase>'))
    assert mrnet_options.DATASET_LOADER | set().union(*mrnet_options.DATASET_KEYS.values()) == dataset_keys
    for sections in mrnet_options.MODEL_KEYS.values():
        for section, keys in sections.items():
            assert keys <= set(section_keys(section)), section
    for section in ('train', 'val'):
        union = set().union(*(sections[section] for sections in mrnet_options.MODEL_KEYS.values()))
        assert union == set(section_keys(section)), section
    from mrnet_arch.models.mrnet_tiling import TILE_KEYS
    assert TILE_KEYS == section_keys('val:tile')


def test_the_check_accepts_every_key_of_the_schema_and_no_other():
    opt = _from_schema(None)
    opt['model_type'] = 'MultiScaleMRNetModel'
    opt['datasets']['train']['type'] = 'MultiScalePairedImageDataset'
    paired = {
        o.key
        for o in OPTIONS if o.section == 'datasets:<phase>'
        and ('PairedImageDataset' in o.reader or not set(o.reader) & set(mrnet_options.DATASET_CLASSES))
    }
    opt['datasets']['val'] = {k: v for k, v in opt['datasets']['train'].items() if k in paired}
    opt['datasets']['val']['type'] = 'PairedImageDataset'
    for key in ('optim_g', 'scheduler', 'pixel_opt', 'perceptual_opt'):
        opt['train'][key] = None  # their keys are checked against the signature of their type
    opt['val']['metrics'] = None
    assert unknown_options(opt) == ([], [])
    for where in ([], ['path'], ['logger'], ['logger', 'wandb'], ['dist_params'], ['train'], ['val'],
                  ['datasets', 'train'], ['datasets', 'val']):
        section = opt
        for part in where:
            section = section[part]
        section['not_in_the_schema'] = 1
        problems, _ = unknown_options(opt)
        assert problems == [f'`{"".join(p + ":" for p in where)}not_in_the_schema`'], where
        del section['not_in_the_schema']


def test_the_type_checks_are_the_schemas_checks(monkeypatch):
    """Every key with a ``check`` in the schema, and no other, is refused with a value of the wrong type (the
    MRNetModel rules of train: and val:tile have their own messages)."""
    monkeypatch.setattr(check_report, 'MAX_LISTED', len(OPTIONS))  # list them all
    own = {('train', k) for k in ('amp', 'compile', 'finite_check_freq', 'grad_clip')}
    opt = _from_schema('x', skip=('val:tile', ))
    for key in own:
        del opt['train'][key[1]]
    with pytest.raises(CheckError) as raised:
        checks.check_types(opt)
    refused = set(re.findall(r'^  (\S+) must be', str(raised.value), flags=re.M))
    expected = {':'.join(_path(o)) for o in OPTIONS if o.check}
    assert refused == expected
    good = {'int': 2, 'number': 0.5, 'int or auto': 'auto', 'int list': [2, 3]}
    opt = _from_schema(None, skip=('val:tile', ))
    for key in own:
        del opt['train'][key[1]]
    for entry in OPTIONS:
        if entry.check:
            section = opt
            for part in _path(entry)[:-1]:
                section = section[part]
            section[entry.key] = good[entry.check]
    checks.check_types(opt)  # no problem


def test_the_required_keys_are_the_schemas(monkeypatch):
    monkeypatch.setattr(check_report, 'MAX_LISTED', len(OPTIONS))  # list them all
    required = {tuple(_path(o)) for o in OPTIONS if o.required and o.section != 'network_g'}
    listed = ({(k, ) for k in checks.REQUIRED} | set(checks.REQUIRED_TRAIN) | set(checks.REQUIRED_VAL)
              | set(checks.REQUIRED_VAL_TEST) | {('datasets', 'train', k) for k in checks.REQUIRED_DATASET}
              | {('datasets', 'train', k) for k in checks.REQUIRED_TRAIN_DATASET})
    assert listed == required
    with pytest.raises(CheckError) as raised:
        checks.check_structure({'datasets': {'train': {}}, 'val': {}}, is_train=True)
    missing = set(re.findall(r'^  (\S+)$', str(raised.value), flags=re.M))
    assert missing == {':'.join(p) for p in required} - {'datasets', 'val'}  # both given


@pytest.mark.parametrize('module, patterns', [
    ('mrnet_arch/preflight/dataset_checks.py', {
        'datasets:<phase>': [r"dataset_opt(?:\.get\(|\[)'(\w+)'"]
    }),
    ('mrnet_arch/models/mrnet_model.py', {
        'train': [r"train_opt\.get\('(\w+)'", r"get\('train'\) or \{\}\)\.get\('(\w+)'"],
        'logger': [r"get\('logger'\) or \{\}\)\.get\('(\w+)'"],
        'path': [r"paths\.get\('(\w+)'", r"opt\['path'\]\.get\('(\w+)'"],
        '': [r"self\.opt\.get\('(\w+)'", r"self\.opt\['(\w+)'\]"],
    }),
    ('mrnet_arch/preflight/checks.py', {
        'path': [r"get\('path'\) or \{\}\)\.get\('(\w+)'"],
        '': [r"opt\.get\('(\w+)'\)"],
    }),
])
def test_the_keys_the_checks_and_the_model_read_are_in_the_schema(module, patterns):
    with open(os.path.join(_tiny.REPO, module), encoding='utf-8') as f:
        source = f.read()
    for section, regexes in patterns.items():
        found = {key for regex in regexes for key in re.findall(regex, source)}
        assert found, (module, section)  # the patterns still match the code
        unknown = sorted(k for k in found if k not in section_keys(section) and not re.fullmatch(
            '|'.join(mrnet_options.PATH_PATTERNS if section == 'path' else mrnet_options.TOP_LEVEL_PATTERNS), k))
        assert not unknown, f'{module} reads {section or "top-level"} keys the schema lacks: {unknown}'


def test_the_shipped_option_files_use_only_documented_keys():
    """Every key of the shipped option files has a row in docs/options.md, but the arguments of network_g (those of
    the arch, checked against its signature)."""
    documented = {(o.section, o.key) for o in OPTIONS}

    def walk(section, mapping, where):
        for key, value in mapping.items():
            if section != 'network_g':
                assert (section, key) in documented, f'{where}: {section}:{key}'
            if isinstance(value, dict):
                if section == 'datasets':
                    sub = 'datasets:<phase>'
                elif section == 'val:metrics':
                    sub = 'val:metrics:<name>'
                else:
                    sub = f'{section}:{key}' if section else key
                walk(sub, value, where)

    files = sorted(glob.glob(os.path.join(_tiny.REPO, 'options', '**', '*.yml'), recursive=True))
    assert len(files) > 10
    documented |= {('datasets', k) for k in ('train', 'val', 'test')} | {('val:metrics', k) for k in ('psnr', 'ssim')}
    for path in files:
        opt = checks.read_option_file(path)
        for phase in opt.get('datasets') or {}:
            documented.add(('datasets', phase))
        for name in (opt.get('val') or {}).get('metrics') or {}:
            documented.add(('val:metrics', name))
        walk('', opt, path)
