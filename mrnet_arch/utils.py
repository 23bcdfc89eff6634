"""Small helpers shared by the plugin's entry points."""
import importlib
import os
from os import path as osp


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
    2. else the parent of the nearest ancestor folder named ``options`` of ``opt_file`` (for the option files
       of a checkout, the checkout; for ``proj/options/train.yml``, ``proj``);
    3. else the source checkout this package runs from;
    4. else the working directory.

    Args:
        opt_file (str | None): The ``-opt`` file of the run, if any.

    Returns:
        str: An absolute path.
    """
    if os.environ.get('MRNET_ROOT'):
        return osp.abspath(os.environ['MRNET_ROOT'])
    if opt_file:
        folder = osp.dirname(osp.abspath(opt_file))
        while True:
            if osp.basename(folder) == 'options':
                return osp.dirname(folder)
            parent = osp.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return source_checkout() or os.getcwd()
