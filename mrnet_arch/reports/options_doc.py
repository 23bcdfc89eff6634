"""The option reference ``docs/options.md``, written from the option schema (``OPTIONS`` of
``mrnet_arch/models/mrnet_options.py``): one table per section of the option file, with each key's type, default,
meaning and reader. ``tools/make_options_doc.py`` writes the page; a test compares it with ``render()``.
"""
from mrnet_arch.models.mrnet_options import OPTIONS, READERS, SECTION_NOTES, SET_BY_BASICSR, unknown_options_message

DOC = 'docs/options.md'

_INTRO = """# Option reference

An option file is the YAML file that `mrnet train -opt` and `mrnet test -opt` (and BasicSR's own `basicsr/train.py`
and `basicsr/test.py`) read. This page lists every key that BasicSR 1.4.2 or this plugin reads, one table per
section of the file. It is written from the option schema in `mrnet_arch/models/mrnet_options.py`, the table that
the option checks use too; do not edit it by hand: change the schema and run `python tools/make_options_doc.py`.

## Unknown keys

BasicSR ignores a key it does not read, so a misspelt key silently turns a setting off, and under `path:` it creates
a folder named after the value. `mrnet train` and `mrnet test` check every key against this page before anything is
created or renamed, and stop on an unknown one, naming it with the closest known key:

```
{example}
```

To go on anyway, pass `--allow-unknown-options` to `mrnet train` or `mrnet test`, or set `allow_unknown_options:
true` in the file: each unknown key is then a warning. `MRNetModel` runs the same check when it is built, so
BasicSR's own `train.py` in a checkout with the MRNet files stops too, before the first iteration.

Keys are checked by section. A dataset class is checked with the keys of the classes it derives from (so a subclass
of `PairedImageDataset` needs no entry here); the keys of another plugin's dataset, and the `train:` and `val:` keys
of a model class that is not listed here (such as BasicSR's GAN models), are not checked, and a note says so. The
sections whose other keys are the arguments of a class (`network_g`, `train:optim_g`, `train:scheduler`, the losses,
the metrics) are checked against that class's signature.

## Types and required keys

A type marked *checked* is checked before anything moves (a common trap: PyYAML reads `2e-4` as the text '2e-4';
write `2.0e-4` or `!!float 2e-4`); other keys with a fixed set of values name it under meaning, and are checked too.
*required* keys are those BasicSR reads without a default; the checks list every missing one. Keys *{set_by}*
are added by BasicSR's `parse_options`: an option file need not give them.

## Readers

| class | file |
|---|---|
{readers}
"""


def _text(value):
    """A table cell: ``|`` escaped, and ``<`` outside code spans written as an entity (it would start an HTML tag)."""
    parts = str(value).replace('|', '\\|').split('`')
    return '`'.join(part if i % 2 else part.replace('<', '&lt;') for i, part in enumerate(parts))


def _title(section):
    return 'Top level' if not section else f'`{section}`'


def render():
    """The text of ``docs/options.md``.

    Returns:
        str: Markdown.
    """
    example = unknown_options_message(['`train:ema_decya` (did you mean `ema_decay`?)'])
    readers = '\n'.join(f'| `{name}` | `{path}` |' for name, path in READERS.items())
    lines = [_INTRO.format(example=example, set_by=SET_BY_BASICSR, readers=readers)]
    sections = list(dict.fromkeys(o.section for o in OPTIONS))
    for section in sections:
        lines.append(f'## {_title(section)}\n')
        if section in SECTION_NOTES:
            lines.append(f'{_text(SECTION_NOTES[section])}\n')
        lines.append('| key | type | default | meaning | read by |')
        lines.append('|---|---|---|---|---|')
        for o in OPTIONS:
            if o.section != section:
                continue
            kind = f'{o.type}, *checked*' if o.check else o.type
            default = f'*{o.default}*' if o.default.startswith(('required', SET_BY_BASICSR)) else o.default
            readers = ', '.join(f'`{r}`' for r in o.reader)
            lines.append(f'| `{o.key}` | {_text(kind)} | {_text(default)} | {_text(o.meaning)} | {readers} |')
        lines.append('')
    return '\n'.join(lines)
