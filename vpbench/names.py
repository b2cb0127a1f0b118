"""Names that become paths: one checker for every entry point.

A suite name, a run id (the last part of ``--out``), an entry name, a dataset, model or
metric name, a ``--name`` given to ``vpbench score``: each becomes a folder or file name
somewhere (``runs/bench-<suite>``, ``<out>/<dataset>/<entry>-seed-<n>``, leaderboard
pages). Each must be a *slug*: a letter or digit, then letters, digits, ``.``, ``_``,
``+`` or ``-``, at most :data:`MAX_LEN` characters. A slug holds no ``/``, cannot be
``..``, cannot start with ``.`` (a hidden file) and encodes in every format.
"""

from __future__ import annotations

import re
import reprlib

from .errors import ConfigError

__all__ = ["MAX_LEN", "SLUG", "check_slug", "is_slug", "quote", "shorten"]

#: the leaderboard accepts the same names (vpbench/leaderboard/safety.py)
MAX_LEN = 100
SLUG = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._+-]{{0,{MAX_LEN - 1}}}$")

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlevel = 3


def quote(value: object) -> str:
    """``repr(value)`` bounded in length (``reprlib``: long strings and deep or long
    containers are cut with ``...``), for echoing user input in a one-line error."""
    return shorten(_REPR.repr(value))  # reprlib bounds each part; many long keys can still add up


def shorten(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters with a visible ``...``."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_slug(name: object, max_len: int = MAX_LEN) -> bool:
    return isinstance(name, str) and len(name) <= max_len and SLUG.match(name) is not None


def check_slug(what: str, name: object, fix: str, max_len: int = MAX_LEN) -> str:
    """``name`` when it is a slug of at most ``max_len`` characters; else a one-line
    :class:`ConfigError` naming ``what`` and the ``fix``."""
    if is_slug(name, max_len):
        assert isinstance(name, str)
        return name
    if isinstance(name, str) and len(name) > max_len:
        why = f"is {len(name)} characters long (at most {max_len})"
    else:
        why = "must be a plain name (a letter or digit, then letters, digits, '.', '_', '+', '-'; no '/', no spaces)"
    # the surrogate escapes of an undecodable file name must not reach the terminal raw
    shown = quote(name).encode("ascii", "backslashreplace").decode("ascii")
    raise ConfigError(f"{what} {shown} {why}; {fix}")
