"""Where the plugin's files are: the project root of a run, the shipped option files and pretrained weights, the
package and its source checkout; and BasicSR's scan-and-register import of a folder."""
import importlib
import os
from os import path as osp

# The weights ``python tools/cpu_campaign.py ship`` writes into ``mrnet_arch/pretrained/`` (with PROVENANCE.md and
# MODEL_CARD.md): MRNet-S x2 plus a bicubic global skip, named for the skip, an addition to the paper's arch.
PRETRAINED_WEIGHTS = 'MRNet-S_x2_bicubic-skip.safetensors'


def import_all(package, init_file, suffix):
    """Import every module ``*<suffix>`` beside ``init_file`` (BasicSR's scan-and-register convention)."""
    folder = osp.dirname(osp.abspath(init_file))
    return [
        importlib.import_module(f'{package}.{osp.splitext(f)[0]}') for f in sorted(os.listdir(folder))
        if f.endswith(suffix)
    ]


def package_dir():
    """The folder of the ``mrnet_arch`` package."""
    return osp.dirname(osp.abspath(__file__))


def pretrained_weights():
    """The path of the pretrained weights the CPU campaign shipped (``mrnet_arch/pretrained/PRETRAINED_WEIGHTS``).
    Callers check that the file is there (a package built without it still runs on the demo weights)."""
    return osp.join(package_dir(), 'pretrained', PRETRAINED_WEIGHTS)


def source_checkout():
    """The source checkout this package runs from (``pip install -e`` or ``PYTHONPATH``), or None when it
    runs from an installed wheel."""
    checkout = osp.dirname(package_dir())
    if osp.isfile(osp.join(checkout, 'setup.py')) and osp.isdir(osp.join(checkout, 'options')):
        return checkout
    return None


def shipped_options_dir():
    """The option files the plugin ships: ``options/`` of the source checkout, or the copy a wheel installs
    as package data (``mrnet_arch/options/``)."""
    checkout = source_checkout()
    return osp.join(checkout, 'options') if checkout else osp.join(package_dir(), 'options')


def project_root(opt_file=None):
    """The folder that holds ``experiments/``, ``results/`` and the relative dataset paths (``datasets/...``)
    of a run, in this order:

    1. ``$MRNET_ROOT``;
    2. else, for an ``opt_file`` inside the source checkout this package runs from, that checkout (also for
       ``benchmarks/options/*.yml``);
    3. else the parent of the nearest ancestor folder named ``options`` of ``opt_file`` (for
       ``proj/options/train.yml``, ``proj``);
    4. else the source checkout;
    5. else the working directory.

    Args:
        opt_file (str | None): The ``-opt`` file of the run, if any.

    Returns:
        str: An absolute path.
    """
    if os.environ.get('MRNET_ROOT'):
        return osp.abspath(os.environ['MRNET_ROOT'])
    checkout = source_checkout()
    if opt_file:
        folder = osp.dirname(osp.realpath(opt_file))
        if checkout and osp.commonpath([folder, osp.realpath(checkout)]) == osp.realpath(checkout):
            return checkout
        while True:
            if osp.basename(folder) == 'options':
                return osp.dirname(folder)
            parent = osp.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return checkout or os.getcwd()
