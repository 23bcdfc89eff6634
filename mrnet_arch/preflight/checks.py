"""The option checks of ``mrnet train`` / ``mrnet test``, run before anything is created or renamed: the option
file itself (YAML syntax, the keys BasicSR's parser needs, ``--force_yml``), unknown keys, types, the networks,
pretrained weights and resume states, then the datasets (``dataset_checks``). A problem raises ``CheckError``
with a message that names the option or file and says what was expected.

What is checked (``check_options``, on the parsed options):

- unknown keys (``models/mrnet_options.py``: the option schema, every key BasicSR and the plugin read), with the
  closest known key;
- option types (``check`` in the schema): ``scale``, iteration counts and frequencies, learning rates, dataset
  sizes (a common trap: PyYAML reads ``2e-4`` as the *string* '2e-4'; write ``2.0e-4`` or ``!!float 2e-4``);
- ``network_g`` (and any other ``network_*``): the ``type`` is registered, every argument is one the arch
  accepts (the error lists the valid ones, from ``inspect.signature``), values have the type of the
  argument's default, and the arch can be built;
- ``path: pretrain_network_*``: the file exists, is a torch or safetensors file, and its tensors fit the
  configured arch (weights of another scale or arch are caught here); ``path: resume_state`` exists and loads;
- the datasets (``dataset_checks.check_datasets``), and that the largest image of each validation and test set
  fits in memory in BasicSR's evaluation (``pipeline_memory.check_evaluation_memory``).
"""
import difflib
import inspect
import os
from os import path as osp

from mrnet_arch.models.mrnet_model import train_option_problems
from mrnet_arch.models.mrnet_options import OPTIONS, PHASE, unknown_options, unknown_options_message
from mrnet_arch.models.mrnet_tiling import tile_option_problems
from mrnet_arch.preflight.check_report import CheckError, is_int, is_number, listed, raise_problems, registered
from mrnet_arch.preflight.dataset_checks import check_datasets
from mrnet_arch.preflight.pipeline_memory import check_evaluation_memory

__all__ = [
    'CheckError', 'check_datasets', 'check_force_yml', 'check_network', 'check_option_keys', 'check_options',
    'check_pretrained', 'check_resume_state', 'check_structure', 'check_types', 'listed', 'read_option_file'
]

DATASET_SECTION = 'datasets:' + PHASE


def _required(sections, run, only=None):
    """Key paths of the options of ``sections`` that ``run`` ('train' or 'test') requires (``only``: and no other)."""
    return tuple(
        tuple(o.section.split(':')) + (o.key, ) if o.section else (o.key, ) for o in OPTIONS
        if o.section in sections and run in o.required and (only is None or o.required == (only, )))


# What BasicSR's parse_options, train.py / test.py, build_dataloader and SRModel index without a default: a
# missing one is a KeyError traceback there (after the experiment folder was made, for the train ones). From the
# option schema (``required`` in models/mrnet_options.py OPTIONS); network_g:type is check_network's.
REQUIRED = tuple(keys[0] for keys in _required(('', ), 'train'))
REQUIRED_TRAIN = _required({o.section for o in OPTIONS} - {'', 'val', DATASET_SECTION, 'network_g'}, 'train')
REQUIRED_VAL = _required(('val', ), 'train')
REQUIRED_VAL_TEST = _required(('val', ), 'test')
REQUIRED_DATASET = tuple(keys[-1] for keys in _required((DATASET_SECTION, ), 'test'))
REQUIRED_TRAIN_DATASET = tuple(keys[-1] for keys in _required((DATASET_SECTION, ), 'train', only='train'))


# --------------------------------------------------------------------------------------------- the file


def read_option_file(path):
    """The option file as BasicSR's ``parse_options`` reads it (its ordered YAML loader).

    Args:
        path (str): The ``-opt`` file.

    Returns:
        dict: The options.

    Raises:
        CheckError: The file cannot be read, is not valid YAML (the message names the line and column), or
            does not hold a mapping.
    """
    import yaml

    from basicsr.utils.options import ordered_yaml
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except (OSError, UnicodeDecodeError) as e:
        raise CheckError(f'cannot read the option file: {e}') from e
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None) or getattr(e, 'context_mark', None)
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        problem = getattr(e, 'problem', None) or str(e)
        context = getattr(e, 'context', None)
        raise CheckError(f'not valid YAML{where}: {problem}{f" ({context})" if context else ""}') from e
    if not isinstance(opt, dict):
        raise CheckError(f'the option file must hold a mapping of options (name: ..., datasets: ...), found '
                         f'{type(opt).__name__}')
    return opt


_ABSENT = object()


def _has(opt, keys):
    """Whether the nested key path is present (with any value, ``None`` included)."""
    return _get(opt, keys, _ABSENT) is not _ABSENT


def check_structure(opt, is_train=True):
    """Check the keys that BasicSR indexes without a default, and that sections are mappings.

    Args:
        opt (dict): The options as read from the file (``read_option_file``).
        is_train (bool): For ``mrnet train`` (else ``mrnet test``, which needs ``val:save_img``).

    Raises:
        CheckError: Listing every missing key.
    """
    missing = [(key, ) for key in REQUIRED if key not in opt]
    not_mappings = [key for key in ('datasets', 'path', 'network_g', 'train', 'val', 'logger')
                    if key in opt and not isinstance(opt[key], dict)]
    raise_problems('Sections that must be mappings (key: value lines indented under them)',
                   [f'{key} is {opt[key]!r}' for key in not_mappings])
    name = opt.get('name')
    if 'name' in opt and (not isinstance(name, str) or not name.strip() or '/' in name or name in ('.', '..')):
        raise CheckError(f'name must be a folder name for experiments/<name> and results/<name> (text without "/"), '
                         f'got {name!r}')
    if is_train:
        missing += [keys for keys in REQUIRED_TRAIN if not _has(opt, keys)]
        if 'val' in opt:
            missing += [keys for keys in REQUIRED_VAL if not _has(opt, keys)]
    else:
        missing += [keys for keys in REQUIRED_VAL_TEST if not _has(opt, keys)]
    for phase, dataset in (opt.get('datasets') or {}).items():
        if not isinstance(dataset, dict):
            raise CheckError(f'datasets:{phase} must be a mapping of dataset options, got {dataset!r}')
        need = REQUIRED_DATASET + (REQUIRED_TRAIN_DATASET if str(phase).split('_')[0] == 'train' else ())
        missing += [('datasets', phase, key) for key in need if key not in dataset]
    raise_problems('Missing options (BasicSR reads them without a default)', [':'.join(map(str, k)) for k in missing])


def check_force_yml(opt, entries):
    """Check ``--force_yml`` entries: ``a:b:c=value`` where ``a:b`` exists (BasicSR creates no sections).

    Args:
        opt (dict): The options as read from the file.
        entries (list[str] | None): The ``--force_yml`` arguments.

    Raises:
        CheckError: Naming the entry and what is wrong.
    """
    for entry in entries or ():
        if entry.count('=') != 1:
            raise CheckError(f'--force_yml {entry}: expected KEY:SUBKEY=VALUE with one "=", e.g. train:ema_decay=0.999')
        keys = entry.split('=')[0].strip().split(':')
        section = opt
        for depth, key in enumerate(keys[:-1]):
            if not isinstance(section, dict) or key not in section or not isinstance(section[key], dict):
                raise CheckError(f'--force_yml {entry}: there is no section {":".join(keys[:depth + 1])} in the '
                                 'option file (--force_yml changes options; it cannot create sections)')
            section = section[key]


def check_option_keys(opt, allow_unknown=False):
    """Check every key against those BasicSR and the plugin read (``models/mrnet_options.py``).

    Args:
        opt (dict): Options.
        allow_unknown (bool): Return unknown keys as warnings instead of raising.

    Returns:
        list[str]: Warnings and notes to show (sections that were not checked; unknown keys when allowed).

    Raises:
        CheckError: Naming each unknown key with the closest known one.
    """
    problems, notes = unknown_options(opt)
    if problems and not (allow_unknown or opt.get('allow_unknown_options')):
        raise CheckError(unknown_options_message(problems))
    return ([f'going on despite {unknown_options_message(problems)}'] if problems else []) + notes


def check_resume_state(opt):
    """Check ``path: resume_state``: the file exists and is a training state ``torch.load`` reads.

    Raises:
        CheckError: Naming the file.
    """
    import collections

    from mrnet_arch.models.mrnet_checkpoint import WeightsError, load_torch_file
    state = (opt.get('path') or {}).get('resume_state')
    if not state or opt.get('auto_resume'):  # --auto_resume picks its own state and skips incomplete ones
        return
    if not osp.isfile(state):
        raise CheckError(f'path:resume_state: training state not found: {state}'
                         f'{" (it is a folder)" if osp.isdir(state) else ""}')
    try:
        loaded = load_torch_file(state, 'cpu', 'training state', [collections.Counter])
    except WeightsError as e:
        raise CheckError(f'path:resume_state: {e}') from e
    if not isinstance(loaded, dict) or 'iter' not in loaded or 'optimizers' not in loaded:
        raise CheckError(f'path:resume_state: {state} is no BasicSR training state (a <iter>.state file from '
                         'experiments/<name>/training_states/); to start from weights, use path:pretrain_network_g')


# ----------------------------------------------------------------------------------------------- types

def _type_problem(where, value, kind):
    """A message if ``value`` is not of ``kind`` ('int' or 'number'), else None."""
    ok = is_int(value) if kind == 'int' else is_number(value)
    if ok:
        return None
    hint = ''
    if isinstance(value, str):
        try:
            float(value)
            hint = f' (YAML read it as text: write it with a decimal point, like 2.0e-4, or as !!float {value})'
        except ValueError:
            pass
    expected = 'an integer' if kind == 'int' else 'a number'
    return f'{where} must be {expected}, got {value!r} ({type(value).__name__}){hint}'


def _get(opt, keys, default=None):
    """The value at the nested key path, or ``default`` where a key is missing."""
    for key in keys:
        if not isinstance(opt, dict) or key not in opt:
            return default
        opt = opt[key]
    return opt


def _mappings(opt, section):
    """``(where, mapping)`` of every mapping of ``opt`` at the schema ``section``: ``<phase>`` and ``<name>`` stand
    for every key, ``optim_g`` for every ``optim_*`` (each optimizer has the keys of train:optim_g)."""
    found = [('', opt)]
    for part in section.split(':') if section else ():
        found = [(f'{where}{key}:', sub) for where, mapping in found if isinstance(mapping, dict)
                 for key, sub in mapping.items()
                 if part.startswith('<') or key == part or part == 'optim_g' and str(key).startswith('optim_')]
    return [(where, mapping) for where, mapping in found if isinstance(mapping, dict)]


def _typed_problems(where, value, kind):
    """Messages if ``value`` is not of the schema's check ``kind`` ('int', 'number', 'int or auto', 'int list')."""
    if kind == 'int or auto':
        return [] if value == 'auto' else [_type_problem(where, value, 'int')]
    if kind == 'int list':
        if not isinstance(value, list):
            return [f'{where} must be a list of integers like [2, 3, 4], got {value!r}']
        return [_type_problem(f'{where}[{i}]', item, 'int') for i, item in enumerate(value)]
    return [_type_problem(where, value, kind)]


def check_types(opt):
    """Check the types of the options whose type the option schema checks (``check`` in
    ``models/mrnet_options.py``), then MRNetModel's own rules for ``train:`` and ``val:tile``.

    A null value passes (BasicSR takes it as absent), except under ``train:optim_*``, whose keys all go to the
    optimizer as they are.

    Args:
        opt (dict): Parsed options.

    Raises:
        CheckError: Listing every option of the wrong type.
    """
    problems = []
    for entry in OPTIONS:
        if entry.check is None:
            continue
        for where, mapping in _mappings(opt, entry.section):
            if entry.key in mapping and (mapping[entry.key] is not None or entry.section == 'train:optim_g'):
                problems += _typed_problems(f'{where}{entry.key}', mapping[entry.key], entry.check)
    problems += train_option_problems(opt.get('train') or {})  # MRNetModel's own rules, checked early
    problems += tile_option_problems(opt.get('val'), os.environ)  # val:tile and $MRNET_MAX_MEMORY, MRNetModel's
    raise_problems('Options of the wrong type', [p for p in problems if p])


# ---------------------------------------------------------------------------------------------- network


def _default_type_ok(value, default):
    """Whether ``value`` has the type of ``default`` (ints pass for floats, lists for tuples)."""
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return is_int(value) and isinstance(value, int)
    if isinstance(default, float):
        return is_number(value)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def check_network(opt, key='network_g'):
    """Check ``opt[key]`` against the signature of its registered arch and build it.

    Args:
        opt (dict): Parsed options.
        key (str): The network option, e.g. 'network_g'.

    Returns:
        torch.nn.Module: The built network (CPU), for ``check_pretrained``.

    Raises:
        CheckError: For an unknown type, an unknown or missing argument (listing the valid ones), a value
            of the wrong type, or an arch that fails to build.
    """
    from basicsr.utils.registry import ARCH_REGISTRY
    net_opt = opt.get(key)
    if not isinstance(net_opt, dict) or 'type' not in net_opt:
        raise CheckError(f'{key} must be a mapping with a "type" (an arch name), got {net_opt!r}')
    arch_type = net_opt['type']
    cls = registered(ARCH_REGISTRY, arch_type, f'{key}:type')
    params = inspect.signature(cls).parameters
    named = {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
    valid = ', '.join(n if p.default is p.empty else f'{n}={p.default!r}' for n, p in named.items())
    args = {k: v for k, v in net_opt.items() if k != 'type'}
    unknown = [k for k in args if k not in named]
    if unknown and not takes_kwargs:
        close = [difflib.get_close_matches(k, list(named), n=1) for k in unknown]
        hint = ', '.join(f'`{c[0]}`' for c in close if c)
        raise CheckError(f'{key}: {arch_type} has no argument {", ".join(map(repr, unknown))}. '
                         f'Valid arguments: {valid}{f" (did you mean {hint}?)" if hint else ""}')
    missing = [n for n, p in named.items() if p.default is p.empty and n not in args]
    if missing:
        raise CheckError(f'{key}: {arch_type} needs {", ".join(missing)}. Valid arguments: {valid}')
    wrong = [
        f'{key}:{n} must be {type(named[n].default).__name__} like its default {named[n].default!r}, '
        f'got {v!r} ({type(v).__name__})' for n, v in args.items()
        if n in named and not _default_type_ok(v, named[n].default)
    ]
    raise_problems(f'{key}: arguments of the wrong type for {arch_type}', wrong)
    try:
        return cls(**args)
    except Exception as e:  # noqa: BLE001  (any failure to build is a configuration error)
        raise CheckError(f'{key}: building {arch_type}({", ".join(f"{k}={v!r}" for k, v in args.items())}) '
                         f'failed: {type(e).__name__}: {e}') from e


# ------------------------------------------------------------------------------------------- pretrained


def check_pretrained(opt, nets):
    """Check every ``path: pretrain_network_*`` file against its built network.

    Args:
        opt (dict): Parsed options.
        nets (dict): Built networks by option key ('network_g': module), from ``check_network``.

    Raises:
        CheckError: For a missing or unreadable file (or one holding code), tensors whose shapes differ
            from the configured arch (expected vs found), or, with ``strict_load_*`` (default true),
            missing or unexpected tensors.
    """
    from mrnet_arch.storage.weights import WeightsError, read_state_dict
    for option, weights in (opt.get('path') or {}).items():
        if not option.startswith('pretrain_network_') or not weights:
            continue
        net_key = option[len('pretrain_'):]
        suffix = net_key[len('network_'):]
        where = f'path:{option}'
        if not osp.isfile(weights):
            raise CheckError(f'{where}: weight file not found: {weights}')
        param_key = opt['path'].get(f'param_key_{suffix}', 'params')
        try:  # the same reader as MRNetModel.load_network: BasicSR checkpoints, plain state dicts, safetensors
            loaded, _ = read_state_dict(weights, prefer_ema=param_key == 'params_ema')
        except WeightsError as e:
            raise CheckError(f'{where}: {e}') from e
        if net_key not in nets:
            continue
        expected = nets[net_key].state_dict()
        arch = f"{opt[net_key]['type']}({', '.join(f'{k}={v}' for k, v in opt[net_key].items() if k != 'type')})"
        shapes = [
            f'{k}: expected {tuple(expected[k].shape)}, found {tuple(v.shape)}' for k, v in loaded.items()
            if k in expected and tuple(v.shape) != tuple(expected[k].shape)
        ]
        raise_problems(
            f'{where}: {weights} does not fit {net_key} = {arch} (weights of another scale or arch?); '
            f'{len(shapes)} tensor(s) differ', shapes)
        if opt['path'].get(f'strict_load_{suffix}', True):
            missing = [k for k in expected if k not in loaded]
            unexpected = [k for k in loaded if k not in expected]
            raise_problems(
                f'{where}: {weights} does not fit {net_key} = {arch} (another arch?): {len(missing)} tensor(s) '
                f'missing, {len(unexpected)} unexpected (set path:strict_load_{suffix}: false to load '
                'the rest)', [f'missing {k}' for k in missing] + [f'unexpected {k}' for k in unexpected])


def check_options(opt, allow_unknown=False):
    """All checks of parsed options, in order: types, keys, networks, pretrained weights, resume state, datasets.

    Args:
        opt (dict): Options as returned by ``basicsr.utils.options.parse_options``.
        allow_unknown (bool): Unknown keys are warnings, not errors.

    Returns:
        list[str]: Warnings and notes for the user (see ``check_option_keys``).

    Raises:
        CheckError: The first problem found, naming the option or file and what was expected.
    """
    check_types(opt)
    warnings = check_option_keys(opt, allow_unknown)
    nets = {key: check_network(opt, key) for key in opt if key.startswith('network_')}
    check_pretrained(opt, nets)
    check_resume_state(opt)
    check_evaluation_memory(check_datasets(opt))
    return warnings
