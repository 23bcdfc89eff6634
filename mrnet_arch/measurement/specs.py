"""Model specs: the ``--models`` syntax of the comparison tools (``mrnet bench``, ``benchmarks/equal_budget.py``).

A spec is one of:

- a preset name: ``MRNet`` (the paper's MRNet-S config for the scale), ``MRNet-MS`` (the paper's
  multi-scale MRNet run at the scale), ``EDSR-baseline``, ``RCAN``, ``SwinIR`` (lightweight config),
  ``Bicubic``; a preset may take overrides: ``MRNet:num_feat=32,num_block=4``;
- a registered arch with keyword arguments: ``EDSR:num_in_ch=3,num_out_ch=3,num_feat=64,num_block=16``
  (values are YAML: ``depths=[6,6,6,6]``; ``upscale`` defaults to the scale, ``num_in_ch`` / ``num_out_ch``
  to 3 where the arch has no default);
- an option YAML (its ``network_g``, whose ``upscale`` must equal the scale; its
  ``path: pretrain_network_g`` is used as weights, a relative path being relative to the project root
  as in ``mrnet train``/``mrnet test``);
- a weight file, ``.pth``, ``.pt`` or ``.safetensors`` (BasicSR checkpoint, plain state dict): the network is built
  from it, as ``mrnet infer`` builds it (MRNet and MultiScaleMRNet weights: ``storage.weights.infer_config``; a
  safetensors file of another arch: the ``network_g`` of its metadata); labelled by its file name;
- any of these with a label: ``small=MRNet:num_feat=32``, ``demo=MRNet_demo_x2.pth``.

Weights define the network (``ModelSpec.resolve``, run before any model is built): an MRNet preset or
``MRNet:k=v`` given weights of another size takes the size from them (every argument but those written in the
spec) and says so in one line; weights that fit no network of the spec (an EDSR preset with MRNet weights, an
option file whose ``network_g`` differs from its weights) stop the command with one line naming the tensors that
differ: the first few of each kind, with their counts.

``parse_model_spec(text, scale)`` returns a ``ModelSpec``; ``ModelSpec.build()`` builds the network from
BasicSR's ``ARCH_REGISTRY`` and loads its weights (``mrnet_arch.storage.weights.read_state_dict``: BasicSR
checkpoints, plain state dicts, safetensors; nothing that runs code). ``PadCrop`` runs a network whose input
must be a multiple of a window size (SwinIR) on any input. Errors are ``SpecError``, an ``InputError`` of
``mrnet_arch.errors``: the ``mrnet`` command prints its message after the command's name (exit status 2).
"""
import inspect
import json
import os.path as osp

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from mrnet_arch.archs.mrnet_config import PAPER_RECURSIONS
from mrnet_arch.errors import InputError
from mrnet_arch.models.mrnet_options import registry_lookup
from mrnet_arch.project import project_root
from mrnet_arch.storage.weights import WeightsError, config_from_metadata, infer_config, read_state_dict

OPTION_FILE_SUFFIXES = ('.yml', '.yaml')
WEIGHT_FILE_SUFFIXES = ('.pth', '.pt', '.safetensors')
MRNET_ARCHS = ('MRNet', 'MultiScaleMRNet')
SHOWN_TENSORS = 3  # tensors named per kind in a message about weights that do not fit


class SpecError(InputError):
    """A model spec that cannot be parsed or built; the message names the model, the option or the file."""


def presets(scale):
    """The preset models at ``scale``.

    Args:
        scale (int): The scale.

    Returns:
        dict: Preset name -> (arch type, kwargs, input multiple).
    """
    swinir = dict(upscale=scale, img_size=64, window_size=8, img_range=1., depths=[6, 6, 6, 6], embed_dim=60,
                  num_heads=[6, 6, 6, 6], mlp_ratio=2, upsampler='pixelshuffledirect', resi_connection='1conv')
    return {
        'MRNet': ('MRNet', dict(num_feat=64, num_block=10, upscale=scale,
                                num_recursion=PAPER_RECURSIONS.get(scale, 4)), 1),
        'MRNet-MS': ('MultiScaleMRNet', dict(upscale=scale), 1),
        'EDSR-baseline': ('EDSR', dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=scale,
                                       res_scale=1, img_range=255.), 1),
        'RCAN': ('RCAN', dict(num_in_ch=3, num_out_ch=3, upscale=scale), 1),
        'SwinIR': ('SwinIR', swinir, 8),
        'Bicubic': ('Bicubic', dict(upscale=scale), 1),
    }


PRESET_NAMES = tuple(presets(2))


class ModelSpec:
    """One model to build: label, arch type, kwargs, weights, input multiple (window size).

    Args:
        label (str): The name it is reported under.
        arch (str): Its type in BasicSR's ``ARCH_REGISTRY``.
        kwargs (dict): Arguments of the arch.
        weights (str | None): The weights path as given (None: no weights). Default: None.
        multiple (int): The input must be a multiple of this (SwinIR's window size). Default: 1.
        source (str): The spec text it was parsed from. Default: ''.
        weights_base (str | None): The folder a relative ``weights`` is relative to (the project root for an
            option file's ``pretrain_network_g``; None: the working directory). Default: None.
        scale (int | None): The scale it runs at (``resolve`` checks the weights against it). Default: None.
        fixed (Iterable[str] | None): The arguments the spec states, which the weights must fit; the others of
            an MRNet arch are taken from its weights. None: all (an option file's ``network_g``, BasicSR's
            contract). Default: None.
        from_preset (bool): A preset name (or a weight file): the weights may also change the arch type
            (MRNet for MultiScaleMRNet weights, and back). Default: False.
    """

    def __init__(self, label, arch, kwargs, weights=None, multiple=1, source='', weights_base=None,
                 scale=None, fixed=None, from_preset=False):
        self.label, self.arch, self.kwargs = label, arch, kwargs
        self.weights, self.multiple, self.source = weights, multiple, source
        self.weights_base = weights_base
        self.scale = scale
        self.fixed = None if fixed is None else set(fixed)
        self.from_preset = from_preset
        self.resolved = None  # the weights file resolve() settled the network against

    def weights_path(self):
        """The weights file to load (None: no weights)."""
        if self.weights and self.weights_base and not osp.isabs(self.weights):
            return osp.join(self.weights_base, self.weights)
        return self.weights

    def check_weights(self):
        """Stop with a clear message when the weights file does not exist.

        Raises:
            SpecError: The file does not exist.
        """
        path = self.weights_path()
        if path and not osp.isfile(path):
            where = (f' (path: pretrain_network_g of {self.source}, relative to the project root '
                     f'{self.weights_base})' if self.weights_base else '')
            raise SpecError(f'weights file not found: {path}{where}')

    def arch_class(self):
        """The arch's class in BasicSR's ``ARCH_REGISTRY``.

        Raises:
            SpecError: The arch is not registered.
        """
        from basicsr.utils.registry import ARCH_REGISTRY
        cls = registry_lookup(ARCH_REGISTRY, self.arch)
        if cls is None:
            raise SpecError(f'arch {self.arch!r} (model {self.label!r}) is not registered')
        return cls

    def describe(self):
        """``ARCH(k=v, ...)``, for messages."""
        return f'{self.arch}({", ".join(f"{k}={v}" for k, v in self.kwargs.items())})'

    def _instantiate(self, device=None):
        cls = self.arch_class()
        try:
            if device is None:
                return cls(**self.kwargs)
            with torch.device(device):
                return cls(**self.kwargs)
        except Exception as err:  # noqa: BLE001  (any failure to build is a configuration error)
            if device is not None:
                return self._instantiate()  # an arch that cannot be built on the meta device
            raise SpecError(f'model {self.label!r}: building {self.describe()} failed: '
                            f'{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}') from err

    def resolve(self):
        """Settle the network against its weights, before any model is built: read the weights (safely), take an
        MRNet network's size (and for a preset or weight file its type) from them, and check that every tensor
        fits. Does nothing without weights; runs once per weights file.

        Returns:
            str | None: A one-line note when the weights changed what the spec said (None otherwise).

        Raises:
            SpecError: The weights are missing, refused, for another scale, or fit no network of the spec (the
                message names the differing tensors and shapes: the first few of each kind, with counts).
        """
        if not self.weights:
            if self.arch is None:
                raise SpecError(f'model {self.label!r} has neither an arch nor weights')
            return None
        path = self.weights_path()
        if self.resolved == path:
            return None
        self.check_weights()
        try:
            state, metadata = read_state_dict(path)
        except WeightsError as err:
            raise SpecError(str(err)) from err
        note = None
        if self.arch is None or self.arch in MRNET_ARCHS:
            note = self._size_from_weights(state, metadata, path)
        problem = misfit(self._instantiate('meta').state_dict(), state)
        if problem:
            raise SpecError(f'model {self.label!r}: the weights {path} do not fit {self.describe()}: '
                            f'{problem}')
        self.resolved = path
        return note

    def _size_from_weights(self, state, metadata, path):
        """Take the arguments of an MRNet network from its weights (``resolve``); returns the note or None."""
        try:
            config = infer_config(state)
            config.update(config_from_metadata(metadata, path))
        except WeightsError as err:
            if self.arch is not None:
                return None  # an MRNet arch given other weights: the fit check names the tensors
            network_g = (metadata or {}).get('network_g')
            if not network_g:
                raise SpecError(f'model {self.label!r}: {path} holds no MRNet weights ({err}) and no '
                                'network_g in its metadata: name its arch, e.g. '
                                f'{self.label}=EDSR:num_feat=64,num_block=16 with --weights {self.label}={path}') \
                    from err
            try:
                config = dict(json.loads(network_g))
                self.arch = config.pop('type')
            except (ValueError, TypeError, KeyError) as bad:
                raise SpecError(f'{path}: metadata network_g is not an arch config with a type: '
                                f'{network_g[:200]}') from bad
            self.kwargs = _fill_defaults(self.arch, config, self.scale)
            return None
        scales = config['upscales'] if config['type'] == 'MultiScaleMRNet' else [config['upscale']]
        if self.scale is not None and self.scale not in scales:
            raise SpecError(f'model {self.label!r}: {path} holds {config["type"]} weights for '
                            f'{", ".join(f"x{s}" for s in scales)}, not x{self.scale}: pass --scale {scales[0]}')
        if config['type'] == 'MultiScaleMRNet':
            config['upscale'] = self.scale or scales[0]
        arch = config.pop('type')
        if self.arch is None:
            self.arch, self.kwargs = arch, _drop_defaults(arch, config)
            return f'{self.label}: {self.describe()} from its weights {path}'
        if self.fixed is None:
            return None  # an option file: its network_g is the network, the fit check compares
        if arch != self.arch and not self.from_preset:
            return None  # MRNet:k=v given MultiScaleMRNet weights (or back): the fit check names the tensors
        before, was = dict(self.kwargs), self.describe()
        kept = {k: v for k, v in self.kwargs.items() if k in self.fixed}
        if arch != self.arch:
            self.arch, self.kwargs = arch, dict(_drop_defaults(arch, config), **kept)
            return f'{self.label}: {path} holds {arch} weights: {self.describe()}, not {was}'
        defaults = _defaults(arch)
        taken = {k: v for k, v in config.items()
                 if k not in self.fixed and not _same(v, before.get(k, defaults.get(k, inspect.Parameter.empty)))}
        if not taken:
            return None
        self.kwargs = dict(before, **taken)
        said = 'preset' if self.from_preset else 'spec'
        changes = ', '.join(f'{k}={v} ({said}: {before[k] if k in before else defaults.get(k)})'
                            for k, v in taken.items())
        return f'{self.label}: built with the size of its weights {path}: {changes}'

    def build(self):
        """Build the network and load its weights (if any; ``resolve`` first, when it has not run).

        Returns:
            torch.nn.Module: The network (CPU, train mode as built).

        Raises:
            SpecError: The arch is not registered, or the weights are missing, refused or do not fit.
        """
        if self.weights:
            self.resolve()
        net = self._instantiate()
        if self.weights:
            load_weights(net, self.weights_path(), self.label)
        return net


def split_top_level(text, sep=','):
    """Split ``text`` on ``sep`` outside brackets (so ``depths=[6,6]`` stays whole)."""
    parts, depth, cur = [], 0, ''
    for ch in text:
        depth += ch in '[({'
        depth -= ch in '])}'
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def parse_kwargs(text):
    """``k=v,k2=v2`` (values YAML) -> dict.

    Raises:
        SpecError: An item without ``=``.
    """
    kwargs = {}
    for item in split_top_level(text):
        key, eq, value = item.partition('=')
        if not eq or not key.strip():
            raise SpecError(f'bad argument {item!r}: expected key=value')
        kwargs[key.strip()] = yaml.safe_load(value)
    return kwargs


def _defaults(arch):
    """The arguments of a registered arch that have a default, with it."""
    from basicsr.utils.registry import ARCH_REGISTRY
    params = inspect.signature(ARCH_REGISTRY.get(arch)).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def _same(a, b):
    """Equal argument values, a list equal to a tuple of the same items (YAML and JSON give lists)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _drop_defaults(arch, config):
    """``config`` without the arguments equal to the arch's defaults (``upscale`` always kept)."""
    defaults = _defaults(arch)
    return {k: v for k, v in config.items() if k == 'upscale' or k not in defaults or not _same(defaults[k], v)}


def _fill_defaults(arch, kwargs, scale):
    """``upscale`` = scale and 3 channels for arch arguments that are left out and have no default."""
    from basicsr.utils.registry import ARCH_REGISTRY
    try:
        params = inspect.signature(ARCH_REGISTRY.get(arch)).parameters
    except KeyError:
        return kwargs
    kwargs = dict(kwargs)
    if 'upscale' in params and 'upscale' not in kwargs:
        kwargs['upscale'] = scale
    for key in ('num_in_ch', 'num_out_ch'):
        if key in params and key not in kwargs and params[key].default is inspect.Parameter.empty:
            kwargs[key] = 3
    return kwargs


def _from_option_file(text, label, scale):
    if not osp.isfile(text):
        raise SpecError(f'option file not found: {text}')
    with open(text, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    net_opt = dict(opt.get('network_g') or {})
    if 'type' not in net_opt:
        raise SpecError(f'{text} has no network_g: type')
    arch = net_opt.pop('type')
    if 'upscale' in net_opt and net_opt['upscale'] != scale:
        raise SpecError(f"{text} has network_g: upscale {net_opt['upscale']}, but --scale is "
                        f"{scale}: pass --scale {net_opt['upscale']} or an option file for x{scale}")
    weights = (opt.get('path') or {}).get('pretrain_network_g')
    if weights:
        weights = osp.expanduser(weights)  # as BasicSR's parse_options
    multiple = net_opt.get('window_size', 1) if arch == 'SwinIR' else 1
    return ModelSpec(label or opt.get('name') or arch, arch, _fill_defaults(arch, net_opt, scale), weights,
                     multiple, source=text, weights_base=project_root(text), scale=scale)


def parse_model_spec(text, scale):
    """Parse one ``--models`` entry (see the module docstring).

    Args:
        text (str): The spec.
        scale (int): The scale the model runs at.

    Returns:
        ModelSpec: The spec (not built yet).

    Raises:
        SpecError: A missing or unusable option file, an option file for another scale, or a bad ``k=v``.
    """
    label = None
    head, eq, rest = text.partition('=')
    if eq and ':' not in head and not head.lower().endswith(OPTION_FILE_SUFFIXES):
        label, text = head, rest
    if text.lower().endswith(OPTION_FILE_SUFFIXES):
        return _from_option_file(text, label, scale)
    if text.lower().endswith(WEIGHT_FILE_SUFFIXES):
        name = label or osp.splitext(osp.basename(text))[0]
        return ModelSpec(name, None, {}, text, source=text, scale=scale, fixed=(), from_preset=True)
    name, _, args = text.partition(':')
    overrides = parse_kwargs(args) if args else {}
    known = presets(scale)
    if name in known:
        arch, kwargs, multiple = known[name]
        kwargs = dict(kwargs, **overrides)
        if arch == 'SwinIR':
            multiple = kwargs.get('window_size', multiple)
        return ModelSpec(label or name, arch, kwargs, None, multiple, source=text, scale=scale,
                         fixed=overrides, from_preset=True)
    multiple = overrides.get('window_size', 7) if name == 'SwinIR' else 1
    return ModelSpec(label or name, name, _fill_defaults(name, overrides, scale), None, multiple, source=text,
                     scale=scale, fixed=overrides)


def assign_weights(specs, items):
    """Give models the weights of ``--weights LABEL=PATH`` items (a relative PATH: the working directory).

    Raises:
        SpecError: An item that is not ``LABEL=PATH`` with a label of ``specs``.
    """
    labels = [s.label for s in specs]
    for item in items:
        label, eq, path = item.partition('=')
        if not eq or label not in labels:
            raise SpecError(f'--weights {item!r}: expected LABEL=PATH with LABEL one of {labels}')
        spec = specs[labels.index(label)]
        spec.weights, spec.weights_base, spec.resolved = path, None, None


def misfit(expected, found, shown=SHOWN_TENSORS):
    """What keeps the state dict ``found`` from loading strictly into a network whose state dict is ``expected``,
    as one line: the tensors missing, unexpected and of another shape, the first ``shown`` of each with counts.

    Args:
        expected (dict): The network's state dict (tensors, e.g. on the meta device).
        found (dict): The weights' state dict.
        shown (int): Tensors named per kind. Default: ``SHOWN_TENSORS``.

    Returns:
        str | None: The line, or None when the weights fit.
    """
    def some(items):
        return ', '.join(items[:shown]) + (', ...' if len(items) > shown else '')

    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f'{k}: expected {tuple(v.shape)}, found {tuple(found[k].shape)}' for k, v in expected.items()
              if k in found and tuple(found[k].shape) != tuple(v.shape)]
    parts = [f'{len(items)} {what} ({some(items)})' for what, items in (
        ('tensor(s) of another shape', shapes), ('missing', missing), ('unexpected', unexpected)) if items]
    return '; '.join(parts) or None


def load_weights(net, path, label=None):
    """Load BasicSR weights (``params_ema`` / ``params`` / a bare state dict; ``.pth`` or ``.safetensors``) into
    ``net`` with ``mrnet_arch.storage.weights.read_state_dict``, strictly.

    Raises:
        SpecError: The file is refused (its ``WeightsError`` message), or its tensors do not fit ``net`` (one
            line: ``misfit``).
    """
    try:
        state = read_state_dict(path)[0]
    except WeightsError as err:
        raise SpecError(str(err)) from err
    problem = misfit(net.state_dict(), state)
    if problem:
        model = f'model {label!r}: ' if label else ''
        raise SpecError(f'{model}the weights {path} do not fit {type(net).__name__}: {problem}')
    net.load_state_dict(state, strict=True)


class PadCrop(nn.Module):
    """Reflect-pad the input to a multiple of ``multiple`` (SwinIR's window size) and crop the output
    back to ``scale`` times the input size, as SwinIR's own test script does.

    Args:
        net (nn.Module): The network.
        multiple (int): The input multiple (1: no padding).
        scale (int): The network's scale.
    """

    def __init__(self, net, multiple, scale):
        super().__init__()
        self.net, self.multiple, self.upscale = net, multiple, scale

    def padded_size(self, h, w):
        """The input size the network runs at for an ``h`` x ``w`` input."""
        m = self.multiple
        return h + (-h) % m, w + (-w) % m

    def forward(self, x):
        h, w = x.shape[-2:]
        ph, pw = self.padded_size(h, w)
        if (ph, pw) != (h, w):
            x = F.pad(x, (0, pw - w, 0, ph - h), mode='reflect')
        return self.net(x)[..., :h * self.upscale, :w * self.upscale]
