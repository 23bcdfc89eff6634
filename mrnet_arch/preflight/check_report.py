"""What the option and dataset checks share: ``CheckError``, problem lists in messages, number tests and the
lookup of a registered name with close matches."""
import difflib

from mrnet_arch.errors import InputError
from mrnet_arch.models.mrnet_options import registry_lookup

MAX_LISTED = 5


class CheckError(InputError, ValueError):
    """An option or an input file is not what the pipeline expects; the message says which and why."""


def listed(items):
    """At most ``MAX_LISTED`` items as text, with a count of the rest."""
    items = list(items)
    text = '\n  '.join(str(i) for i in items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        text += f'\n  ... and {len(items) - MAX_LISTED} more'
    return '\n  ' + text


def raise_problems(title, problems):
    """Raise a ``CheckError`` listing ``problems`` under ``title`` if there are any."""
    if problems:
        raise CheckError(f'{title}:{listed(problems)}')


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value):
    return is_number(value) and float(value).is_integer()


def registered(registry, name, what):
    """The object ``registry.get(name)`` returns (``name``, else BasicSR's fallback ``<name>_basicsr``, the name of
    its copy of code that another package registers too), or a ``CheckError`` listing close names."""
    hit = registry_lookup(registry, name)
    if hit is None:
        names = sorted(registry._obj_map)  # noqa: SLF001  (basicsr's Registry has no public listing)
        close = difflib.get_close_matches(str(name), names, n=3)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        raise CheckError(f'{what} {name!r} is not registered in BasicSR.{hint} Registered: {", ".join(names)}')
    return hit
