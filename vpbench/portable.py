"""Records that travel: no absolute local path in what a run record stores.

A record is read on other machines (the committed leaderboard records, a colleague's runs),
so :func:`portable_record` rewrites every absolute path found in its strings:

* inside the run folder (the folder holding ``record.json``): relative to it, ``.`` for the
  folder itself (``--out /tmp/lb/x`` is stored as ``--out .``);
* inside the data root: ``<data-root>/mnist/t10k-images-idx3-ubyte.gz`` (the data itself
  is named by the dataset's checksum and ``data_info``);
* inside the vpbench checkout: ``<vpbench>/configs/shrvq-glyphs.yaml``;
* anywhere else: ``<local>/NAME``, the file's name only.

POSIX (``/x``, ``~/x``) and Windows (``C:\\x``, ``\\\\server\\x``) paths are recognised where
a path can start: at the start of a string or after a space, ``=``, ``(``, a quote and the
like, never inside a URL (``http://host/x``) or a ratio (``MSE/px``). Keys are left alone.

``python -m vpbench.portable RECORD.json ...`` rewrites records written before this existed
(it takes the run folder from the record's own ``--out``); see :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

from .fsutil import atomic_write_json

__all__ = ["ABSOLUTE_PATH", "DATA_ROOT", "LOCAL", "VPBENCH", "portable_path", "portable_text", "portable_record", "main"]

DATA_ROOT = "<data-root>"
VPBENCH = "<vpbench>"
LOCAL = "<local>"

#: an absolute path where one can start (see the module docstring), up to a delimiter
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.:/\\~<>%&+-])"  # not inside a word, URL, ratio, placeholder or another path
    r"(?:~(?=[/\\])|[A-Za-z]:[\\/]|\\\\(?=[^\s\\])|/(?=[^\s/]))"
    r"[^\s'\"`()\[\]{},;|<>*?]*"
)


def _checkout() -> Path | None:
    """The vpbench source checkout this code runs from (a folder with pyproject.toml), if any."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def _relative(path: PurePath, base: Path | None) -> str | None:
    if base is None:
        return None
    candidates = {path}
    if isinstance(path, Path):
        try:
            candidates.add(path.resolve())
        except (OSError, RuntimeError):
            pass
    bases = {base}
    try:
        bases.add(base.resolve())
    except (OSError, RuntimeError):
        pass
    for p in candidates:
        for b in bases:
            try:
                rel = p.relative_to(b)
            except ValueError:
                continue
            return rel.as_posix() or "."
    return None


def portable_path(
    text: str, *, run_dir: Path | None, data_root: Path | None = None, checkout: Path | None = None, elsewhere: bool = True
) -> str:
    """One absolute path written as the module docstring says (``elsewhere=False``: a path
    outside the known folders is left as it is, for a later pass that knows the run folder)."""
    if re.match(r"^(?:[A-Za-z]:[\\/]|\\\\)", text):  # Windows: nothing here can be under our folders
        return f"{LOCAL}/{PureWindowsPath(text).name}" if elsewhere else text
    path = Path(text).expanduser()
    rel = _relative(path, run_dir)
    if rel is not None:
        return rel
    for base, label in ((data_root, DATA_ROOT), (checkout, VPBENCH)):
        rel = _relative(path, base)
        if rel is not None:
            return label if rel == "." else f"{label}/{rel}"
    if not elsewhere:
        return text
    return f"{LOCAL}/{path.name}" if path.name else LOCAL


def portable_text(text: str, **where: Any) -> str:
    """``text`` with each absolute path in it rewritten by :func:`portable_path` (``where``: its keywords)."""
    return ABSOLUTE_PATH.sub(lambda m: portable_path(m.group(0), **where), text)


_STARTS_ABSOLUTE = re.compile(r"^(?:~[/\\]|[A-Za-z]:[\\/]|\\\\|/)")
_ARG = re.compile(r"^(--[\w-]+=|[\w.\-]+=)?(.*)$", re.DOTALL)


def _portable_arg(arg: str, **where: Any) -> str:
    """A command-line argument: a whole path (spaces and all) or an ``--opt=PATH``/``key=PATH`` value."""
    m = _ARG.match(arg)
    prefix, value = (m.group(1) or "", m.group(2)) if m else ("", arg)
    if _STARTS_ABSOLUTE.match(value):  # the whole value is one path, spaces and all
        return prefix + portable_path(value, **where)
    return portable_text(arg, **where)


def _walk(value: Any, fn: Any) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_walk(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    return value


#: record fields that identify rather than describe: never rewritten (a path there makes the
#: record invalid for the leaderboard, which says so, rather than silently renamed)
_IDENTIFIERS = frozenset({"schema", "run_id", "created", "vpbench_version", "git", "data_checksum"})


def portable_record(
    data: dict[str, Any],
    *,
    run_dir: Path | None,
    data_root: Path | None = None,
    checkout: Path | None = None,
    elsewhere: bool = True,
) -> dict[str, Any]:
    """A record's JSON (``RunRecord.to_json()``) with no absolute local path left in its strings.

    ``checkout``: the vpbench source folder the run came from (default: this one's, if it is
    a checkout). ``elsewhere=False`` rewrites only the paths under the folders given.
    """
    where: dict[str, Any] = {"run_dir": run_dir, "data_root": data_root, "checkout": checkout or _checkout(), "elsewhere": elsewhere}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _IDENTIFIERS or key == "argv":
            out[key] = value
        elif key in ("model", "dataset") and isinstance(value, dict):  # names are identifiers, configs values
            out[key] = {k: v if k in ("name", "package") else _walk(v, lambda s: portable_text(s, **where)) for k, v in value.items()}
        else:
            out[key] = _walk(value, lambda s: portable_text(s, **where))
    if "argv" in data:
        argv = data["argv"]
        out["argv"] = [_portable_arg(a, **where) if isinstance(a, str) else a for a in argv] if isinstance(argv, list) else argv
    return {k: out[k] for k in data}  # the original key order


def _option(argv: Sequence[Any], name: str) -> str | None:
    """The value of ``--name VALUE`` / ``--name=VALUE`` in an argv list (the last one given)."""
    found = None
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv) and isinstance(argv[i + 1], str):
            found = argv[i + 1]
        elif isinstance(a, str) and a.startswith(name + "="):
            found = a.split("=", 1)[1]
    return found


def main(args: Sequence[str] | None = None) -> int:
    """Rewrite records in place so that they hold no absolute local path.

    The run folder a record was written in is its own ``--out`` when that was absolute
    (else the folder it is in now); ``--data-root`` defaults to the record's own
    ``--data-root``; ``--vpbench`` names the checkout the runs were made from when it was
    another one than this.
    """
    parser = argparse.ArgumentParser(prog="python -m vpbench.portable", description=main.__doc__)
    parser.add_argument("records", nargs="+", type=Path, help="record.json files or folders holding them")
    parser.add_argument("--data-root", type=Path, help="the data root the runs read (when argv does not say)")
    parser.add_argument("--vpbench", type=Path, help="the vpbench checkout the runs were made from")
    ns = parser.parse_args(args)
    paths = [p for r in ns.records for p in (sorted(r.rglob("record.json")) if r.is_dir() else [r])]
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        argv = data.get("argv", [])
        out = _option(argv, "--out")
        run_dir = Path(out) if out and Path(out).is_absolute() else path.parent
        root = _option(argv, "--data-root")
        data_root = Path(root) if root and Path(root).is_absolute() else ns.data_root
        new = portable_record(data, run_dir=run_dir, data_root=data_root, checkout=ns.vpbench)
        if new != data:
            atomic_write_json(path, new)
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
