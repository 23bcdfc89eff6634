"""The plugin's error family and the exit status of each kind (standard library only).

Every error the plugin raises derives from ``MRNetError``, in one of two kinds:

- ``InputError``: bad input or usage (an option, a file, a model spec, a checkout); the ``mrnet`` command exits
  with status 2;
- ``RunError``: the input was fine but the run failed (a full disk, a failed download, a held lock, a missing
  optional package); status 1.

``mrnet_arch.cli.run_command`` is the one place that turns them into ``mrnet <command>: error: <message>`` on
stderr and the exit status, with no traceback. An error class that must also be caught as a built-in type keeps
that type as a second base (``class CheckError(InputError, ValueError)``, ``InvalidValueError``). A function called
wrongly by the plugin's own code (a bug, not bad input) raises a built-in error and keeps its traceback.

The BasicSR drop-ins (``archs/``, ``models/``, ``data/``) are copied into a BasicSR checkout and import nothing of
the plugin outside their own folder, so their errors cannot derive from ``MRNetError``. They keep a built-in base
(``DiskFullError(OSError)``, ``WeightsError(ValueError)``, ...) and are registered here by their qualified name in
``DROP_IN_ERRORS`` with their kind; ``error_kind`` reads the registry for them, so they map like the family
(``tests/test_errors.py`` checks that every exception class of the plugin is one or the other).
"""


class MRNetError(Exception):
    """The base of every error the plugin raises (outside the BasicSR drop-ins: see ``DROP_IN_ERRORS``)."""

    exit_status = 1


class InputError(MRNetError):
    """Bad input or usage: an option, a file or a spec is not what the command expects (exit status 2)."""

    exit_status = 2


class RunError(MRNetError):
    """A failed run: the input was fine but the command could not complete (exit status 1)."""

    exit_status = 1


class InvalidValueError(InputError, ValueError):
    """A value the user gave (an option such as ``--device``, an argument of a public function such as
    ``Upscaler(tile=...)``) that is not what is expected; also a ``ValueError`` for callers that catch that."""


# The drop-ins' errors (module.qualname) -> their kind.
DROP_IN_ERRORS = {
    'mrnet_arch.archs.mrnet_config.StateDictError': InputError,
    'mrnet_arch.models.mrnet_checkpoint.WeightsError': InputError,
    'mrnet_arch.models.mrnet_tiling.MemoryBudgetError': InputError,
    'mrnet_arch.models.mrnet_checkpoint.DiskFullError': RunError,
}


def error_kind(err):
    """The kind of an exception: ``InputError`` or ``RunError``, or None when it is not one of the plugin's.

    Args:
        err (BaseException | type): An exception or an exception class.

    Returns:
        type | None: ``InputError``, ``RunError`` (or another ``MRNetError`` subclass), or None.
    """
    cls = err if isinstance(err, type) else type(err)
    for klass in cls.__mro__:
        if klass in (InputError, RunError):
            return klass
        kind = DROP_IN_ERRORS.get(f'{klass.__module__}.{klass.__qualname__}')
        if kind is not None:
            return kind
    return MRNetError if issubclass(cls, MRNetError) else None


def exit_status(err):
    """The exit status of one of the plugin's errors (2 for bad input or usage, 1 for a failed run), else None."""
    kind = error_kind(err)
    return None if kind is None else kind.exit_status
