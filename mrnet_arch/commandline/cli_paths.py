"""Paths given on the command line, and outputs that would replace inputs.

Every path given on the command line resolves against the working directory, as in any shell tool. The project
root (``mrnet_arch.project.project_root``) is for the paths inside option files (datasets, pretrained weights,
and the ``experiments/`` and ``results/`` of ``mrnet train`` and ``mrnet test``), for the default of an output
option that is left out (``mrnet prepare``'s ``datasets/...``, ``mrnet bench``'s ``benchmarks/results/``), and for
``mrnet demo``'s fixed layout.
"""
import os
from os import path as osp

from mrnet_arch.project import project_root


def output_or_default(given, default):
    """The absolute path of an output option: ``given`` against the working directory, or, when the option was
    left out (None), ``default`` under the project root.

    Args:
        given (str | None): The option's value as typed.
        default (str): The default, relative to the project root (e.g. ``datasets/DIV2K``).

    Returns:
        str: An absolute path.
    """
    return osp.abspath(given) if given is not None else osp.join(project_root(), default)


def same_file(a, b):
    """Whether the paths ``a`` and ``b`` name one file (links and ``..`` resolved; a hard link of an existing file
    too)."""
    if osp.realpath(a) == osp.realpath(b):
        return True
    try:
        return osp.exists(a) and osp.exists(b) and osp.samefile(a, b)
    except OSError:
        return False


def inside(path, folder):
    """Whether ``path`` is ``folder`` or lies under it (real paths)."""
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def overwritten_inputs(outputs, inputs):
    """The paths of ``outputs`` that name a file of ``inputs`` (which writing them would replace)."""
    return [o for o in outputs if any(same_file(o, i) for i in inputs)]
