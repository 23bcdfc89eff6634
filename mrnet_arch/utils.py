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


def project_root():
    """The folder that holds ``experiments/``, ``results/``, ``datasets/`` and ``options/``.

    ``$MRNET_ROOT`` if set; else the source checkout this package lives in (BasicSR's convention, as in
    ``python mrnet_arch/train.py``); else, for a non-editable install, the current working directory.
    """
    if os.environ.get('MRNET_ROOT'):
        return osp.abspath(os.environ['MRNET_ROOT'])
    checkout = osp.dirname(osp.dirname(osp.abspath(__file__)))
    if osp.isfile(osp.join(checkout, 'setup.py')) and osp.isdir(osp.join(checkout, 'options')):
        return checkout
    return os.getcwd()
