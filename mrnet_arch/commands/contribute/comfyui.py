"""``mrnet contribute comfyui DIR``: write MRNet into a ComfyUI checkout as a custom node.

What it writes into ``DIR/custom_nodes/<name>/`` (``--name``, default ``ComfyUI-MRNet``):

- ``__init__.py``: the plugin's spandrel architectures (``mrnet_arch/spandrel_arch.py``, the code
  ``spandrel_support.register()`` registers and ``mrnet contribute spandrel`` writes, with this package's imports),
  added to ``spandrel.MAIN_REGISTRY`` when ComfyUI imports the folder (``nodes.load_custom_node``); it adds no
  nodes of its own (``NODE_CLASS_MAPPINGS = {}``): ComfyUI's "Load Upscale Model" and "Upscale Image (using
  Model)" then load and run MRNet ``.pth`` (BasicSR ``params``/``params_ema`` checkpoints, plain state dicts) and
  ``.safetensors`` files from ``models/upscale_models/``. Registering twice changes nothing.
- ``mrnet_arch.py`` (the torch-only network generated from the plugin's, ``spandrel_files.arch_source``) and
  ``mrnet_config.py`` (the plugin's facts module); neither imports basicsr nor the plugin.
- ``LICENSE`` (the plugin's), ``pyproject.toml`` for the Comfy registry (``[project]`` and ``[tool.comfy]``
  with ``PublisherId``, ``DisplayName`` and ``Icon``) and a ``README.md``.

Idempotent; a file that exists with other contents is never replaced without ``--overwrite``.
"""
import re
from os import path as osp

from mrnet_arch import __version__

from . import spandrel_files
from .common import ContributeError, check_folder, license_text, report, write

CHECKOUT_PARTS = ('nodes.py', 'custom_nodes')
DEFAULT_NAME = 'ComfyUI-MRNet'
DISPLAY_NAME = 'MRNet upscale models'
DESCRIPTION = ('MRNet (Memory Recursive Network for Single Image Super-Resolution, ACM MM 2020) for the stock '
               '"Load Upscale Model" node: adds MRNet and MultiScaleMRNet to spandrel.')
# The host module of each import of mrnet_arch/spandrel_arch.py inside the custom node's __init__.py.
COMFYUI_IMPORTS = {
    'spandrel': 'spandrel',
    'mrnet_arch.archs.mrnet_arch': '.mrnet_arch',
    'mrnet_arch.archs.mrnet_config': '.mrnet_config',
}
INIT_DOC = '''"""MRNet (ACM MM 2020) for ComfyUI: adds MRNet and MultiScaleMRNet to spandrel's registry.

Written by ``mrnet contribute comfyui`` from ``mrnet_arch/spandrel_arch.py`` of the MRNet plugin for BasicSR (MIT,
see LICENSE). This package adds no nodes: ComfyUI's "Load Upscale Model" reads the weights and asks spandrel's
``ModelLoader`` for the architecture, which then finds MRNet (``mrnet_arch.py``, torch only; ``mrnet_config.py``
reads the hyperparameters from the state dict). The state dict cannot tell (``UNDETECTABLE``) res_scale,
img_range and rgb_mean: their defaults are used.
"""
'''
REGISTRATION = '''

def register() -> list[ArchSupport]:
    """Add both architectures to ``spandrel.MAIN_REGISTRY``; an id it already holds is left as it is."""
    archs = (MRNetArch(), MultiScaleMRNetArch())
    return MAIN_REGISTRY.add(
        *(ArchSupport.from_architecture(a) for a in archs if a.id not in MAIN_REGISTRY), ignore_duplicates=True
    )


register()

NODE_CLASS_MAPPINGS: dict[str, Any] = {}  # no nodes of its own: the stock upscale-model nodes load MRNet
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
'''


def check_checkout(folder):
    """Raise ``ContributeError`` unless ``folder`` is a ComfyUI checkout."""
    check_folder(folder, CHECKOUT_PARTS, 'ComfyUI checkout (clone https://github.com/comfyanonymous/ComfyUI and '
                 'pass its folder)')


def check_name(name):
    """Raise ``ContributeError`` unless ``name`` can be the custom node's folder and registry name."""
    if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_-]{0,99}', name or ''):
        raise ContributeError(f'--name {name!r}: expected a folder name of letters, digits, "-" and "_" (the Comfy '
                              'registry\'s node id), e.g. ComfyUI-MRNet')


def toml_string(text):
    """``text`` as a TOML basic string."""
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


def init_source():
    """The custom node's ``__init__.py``."""
    text = spandrel_files.descriptor_source(INIT_DOC, COMFYUI_IMPORTS)
    return text.replace('from spandrel import ', 'from spandrel import MAIN_REGISTRY, ArchSupport, ', 1) + REGISTRATION


def pyproject(name, publisher_id='', icon=''):
    """``pyproject.toml`` of the custom node: ``[project]`` and the Comfy registry's ``[tool.comfy]``."""
    return '\n'.join([
        '[project]',
        f'name = {toml_string(name.lower())}',
        f'description = {toml_string(DESCRIPTION)}',
        f'version = {toml_string(__version__)}',
        'license = { file = "LICENSE" }',
        'requires-python = ">=3.9"',
        'dependencies = ["spandrel"]  # ComfyUI requires it already',
        '',
        '[tool.comfy]',
        f'PublisherId = {toml_string(publisher_id)}  # your id on registry.comfy.org, before "comfy node publish"',
        f'DisplayName = {toml_string(DISPLAY_NAME)}',
        f'Icon = {toml_string(icon)}',
        '',
    ])


def readme(name):
    """The custom node's README."""
    return '\n'.join([
        f'# {name}', '', DESCRIPTION, '',
        'It adds no nodes. Put MRNet weights (`.pth`: BasicSR `net_g_*.pth` with `params`/`params_ema`, or a plain '
        'state dict; or `.safetensors`) into `ComfyUI/models/upscale_models/`, load them with "Load Upscale '
        'Model" and run them with "Upscale Image (using Model)". A multi-scale MRNet runs its smallest scale.', '',
        'Written by `mrnet contribute comfyui` of the MRNet plugin for BasicSR; MIT licence (LICENSE).', ''])


def plan(name, publisher_id='', icon=''):
    """``{checkout path: text}`` of everything the contribution writes into a ComfyUI checkout."""
    folder = f'custom_nodes/{name}'
    return {
        f'{folder}/__init__.py': init_source(),
        f'{folder}/mrnet_arch.py': spandrel_files.arch_source(),
        f'{folder}/mrnet_config.py': spandrel_files.config_source(),
        f'{folder}/LICENSE': license_text(),
        f'{folder}/pyproject.toml': pyproject(name, publisher_id, icon),
        f'{folder}/README.md': readme(name),
    }


def run(args):
    """``mrnet contribute comfyui``: plan, write, report. Returns the exit code."""
    checkout = osp.abspath(args.dir)
    check_checkout(checkout)
    name = args.name or DEFAULT_NAME
    check_name(name)
    files = plan(name, args.publisher_id or '', args.icon or '')
    status = write(checkout, files, overwrite=args.overwrite)
    report(checkout, status, f'Put MRNet weights into {osp.join(checkout, "models", "upscale_models")} and '
           'restart ComfyUI; "Load Upscale Model" lists them.')
    return 0
