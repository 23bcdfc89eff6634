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
- any of these with a label: ``small=MRNet:num_feat=32``.

``parse_model_spec(text, scale)`` returns a ``ModelSpec``; ``ModelSpec.build()`` builds the network from
BasicSR's ``ARCH_REGISTRY`` and loads its weights (``mrnet_arch.core.weights.read_state_dict``: BasicSR
checkpoints, plain state dicts, safetensors; nothing that runs code). ``PadCrop`` runs a network whose input
must be a multiple of a window size (SwinIR) on any input. Errors are ``SpecError``: a ``SystemExit`` whose
message starts with the ``prog`` given (the command's name), so a command stops with it as with argparse's
errors.
"""
import inspect
import os.path as osp

import torch.nn.functional as F
import yaml
from torch import nn

from mrnet_arch.archs.mrnet_config import PAPER_RECURSIONS
from mrnet_arch.core.weights import WeightsError, read_state_dict
from mrnet_arch.project import project_root

DEFAULT_PROG = 'mrnet'
OPTION_FILE_SUFFIXES = ('.yml', '.yaml')


class SpecError(SystemExit):
    """A model spec that cannot be parsed or built; the message starts with the command's name."""


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
        prog (str): Command name that starts error messages. Default: ``DEFAULT_PROG``.
    """

    def __init__(self, label, arch, kwargs, weights=None, multiple=1, source='', weights_base=None,
                 prog=DEFAULT_PROG):
        self.label, self.arch, self.kwargs = label, arch, kwargs
        self.weights, self.multiple, self.source = weights, multiple, source
        self.weights_base = weights_base
        self.prog = prog

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
            raise SpecError(f'{self.prog}: weights file not found: {path}{where}')

    def build(self):
        """Build the network and load its weights (if any).

        Returns:
            torch.nn.Module: The network (CPU, train mode as built).

        Raises:
            SpecError: The arch is not registered, or the weights are missing or refused.
        """
        from basicsr.utils.registry import ARCH_REGISTRY
        try:
            cls = ARCH_REGISTRY.get(self.arch)
        except KeyError as e:
            raise SpecError(f'{self.prog}: arch {self.arch!r} (model {self.label!r}) is not registered') from e
        net = cls(**self.kwargs)
        if self.weights:
            self.check_weights()
            load_weights(net, self.weights_path(), self.prog)
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


def parse_kwargs(text, prog=DEFAULT_PROG):
    """``k=v,k2=v2`` (values YAML) -> dict.

    Raises:
        SpecError: An item without ``=``.
    """
    kwargs = {}
    for item in split_top_level(text):
        key, eq, value = item.partition('=')
        if not eq or not key.strip():
            raise SpecError(f'{prog}: bad argument {item!r}: expected key=value')
        kwargs[key.strip()] = yaml.safe_load(value)
    return kwargs


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


def _from_option_file(text, label, scale, prog):
    if not osp.isfile(text):
        raise SpecError(f'{prog}: option file not found: {text}')
    with open(text, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    net_opt = dict(opt.get('network_g') or {})
    if 'type' not in net_opt:
        raise SpecError(f'{prog}: {text} has no network_g: type')
    arch = net_opt.pop('type')
    if 'upscale' in net_opt and net_opt['upscale'] != scale:
        raise SpecError(f"{prog}: {text} has network_g: upscale {net_opt['upscale']}, but --scale is "
                        f"{scale}: pass --scale {net_opt['upscale']} or an option file for x{scale}")
    weights = (opt.get('path') or {}).get('pretrain_network_g')
    if weights:
        weights = osp.expanduser(weights)  # as BasicSR's parse_options
    multiple = net_opt.get('window_size', 1) if arch == 'SwinIR' else 1
    return ModelSpec(label or opt.get('name') or arch, arch, _fill_defaults(arch, net_opt, scale), weights,
                     multiple, source=text, weights_base=project_root(text), prog=prog)


def parse_model_spec(text, scale, prog=DEFAULT_PROG):
    """Parse one ``--models`` entry (see the module docstring).

    Args:
        text (str): The spec.
        scale (int): The scale the model runs at.
        prog (str): Command name that starts error messages. Default: ``DEFAULT_PROG``.

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
        return _from_option_file(text, label, scale, prog)
    name, _, args = text.partition(':')
    overrides = parse_kwargs(args, prog) if args else {}
    known = presets(scale)
    if name in known:
        arch, kwargs, multiple = known[name]
        kwargs = dict(kwargs, **overrides)
        if arch == 'SwinIR':
            multiple = kwargs.get('window_size', multiple)
        return ModelSpec(label or name, arch, kwargs, None, multiple, source=text, prog=prog)
    multiple = overrides.get('window_size', 7) if name == 'SwinIR' else 1
    return ModelSpec(label or name, name, _fill_defaults(name, overrides, scale), None, multiple, source=text,
                     prog=prog)


def load_weights(net, path, prog=DEFAULT_PROG):
    """Load BasicSR weights (``params_ema`` / ``params`` / a bare state dict; ``.pth`` or ``.safetensors``) into
    ``net`` with ``mrnet_arch.core.weights.read_state_dict``, strictly.

    Raises:
        SpecError: The file is refused (its ``WeightsError`` message).
    """
    try:
        state = read_state_dict(path)[0]
    except WeightsError as err:
        raise SpecError(f'{prog}: {err}') from err
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
