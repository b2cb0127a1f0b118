"""What a record may put into a leaderboard: names that are safe as file names, and text
escaped for the format it lands in (markdown, LaTeX, CSV).

Records are data from anywhere (a colleague's run, a downloaded archive). Their dataset,
model, protocol and metric names become file names and headings, so they must be slugs; a
record with another name is skipped with the reason. Free text (run ids, hardware strings,
provenance) is escaped so it can neither break a table nor inject markup or links.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from ..errors import StorageError
from ..portable import ABSOLUTE_PATH
from ..records import RunRecord

__all__ = [
    "SLUG",
    "record_problem",
    "one_line",
    "md_text",
    "md_code",
    "md_link",
    "csv_value",
    "inside",
    "cap",
    "printable",
    "portable",
    "TEXT_CAP",
    "LABEL_CAP",
]

#: the longest free text (provenance, hardware, a command) a page shows; longer text ends in "…"
TEXT_CAP = 400
#: the longest row label (model and its flags) a table or a figure shows
LABEL_CAP = 80

#: dataset, model, protocol and metric names: a letter or digit, then letters, digits, . _ + -
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_MD = {"\\": "\\\\", "|": "\\|", "*": "\\*", "`": "\\`", "<": "&lt;", ">": "&gt;"}


def _slug_problem(what: str, name: object) -> str | None:
    if isinstance(name, str) and SLUG.match(name):
        return None
    return (
        f"{what} {str(name)[:60]!r} is not a plain name (letters, digits, '.', '_', '+', '-'; no '/' or '..'); "
        "fix the record or leave it out"
    )


def record_problem(rec: RunRecord) -> str | None:
    """Why ``rec`` cannot be shown safely, or ``None`` when every name it carries is a slug."""
    checks: list[tuple[str, object]] = [("dataset name", rec.dataset.name), ("model name", rec.model.name)]
    for protocol, metrics in rec.metrics.items():
        checks.append(("protocol", protocol))
        checks += [("metric name", m) for m in metrics]
    for baseline, by_protocol in rec.baselines.items():
        checks.append(("baseline name", baseline))
        for protocol, metrics in by_protocol.items():
            checks.append(("protocol", protocol))
            checks += [("metric name", m) for m in metrics]
    checks += [("metric name", m) for m in rec.unavailable_metrics]
    for what, name in checks:
        problem = _slug_problem(what, name)
        if problem is not None:
            return problem
    if not rec.run_id or len(rec.run_id) > 200 or _CONTROL.search(rec.run_id) or "/" in rec.run_id or "\\" in rec.run_id:
        return f"run id {rec.run_id[:60]!r} is empty, too long or holds '/', '\\\\' or control characters; fix the record"
    return None


def printable(text: str) -> str:
    """``text`` that encodes as UTF-8: an unpaired surrogate (a file name that was not UTF-8,
    e.g. ``\\udcff``) is written as its escape, never fatal to the page."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def cap(text: str, limit: int = TEXT_CAP) -> str:
    """At most ``limit`` characters; a longer text is cut with a visible ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"




def portable(text: str) -> str:
    """Free text with every absolute local path replaced by its last component
    (``/work/data/mnist/t10k.gz`` -> ``t10k.gz``): no page names the machine a record came from."""

    def last(m: re.Match[str]) -> str:
        parts = [p for p in re.split(r"[\\/]", m.group(0)) if p and p != "~" and not p.endswith(":")]
        return parts[-1] if parts else "…"

    return ABSOLUTE_PATH.sub(last, text)  # the records' own definition (not "n/a", "seq/s", "<data-root>/x")


def one_line(text: str) -> str:
    """Control characters (newlines, tabs, escapes) become spaces; unpaired surrogates their escapes."""
    return _CONTROL.sub(" ", printable(text))


def md_text(text: str) -> str:
    """Plain text for a markdown table cell or paragraph: no markup, no HTML, no links."""
    # "](" is what turns bracketed text into a link: escape the parenthesis
    return "".join(_MD.get(ch, ch) for ch in one_line(text)).replace("](", "]\\(")


def md_code(text: str) -> str:
    """Text for inside a markdown code span (backticks cannot close it)."""
    return one_line(text).replace("`", "'")


def md_link(label: str, target: str) -> str:
    """A markdown link to a relative path; the path is percent-encoded (spaces work, no scheme)."""
    return f"[{md_text(label)}]({quote(target, safe='/', errors='surrogateescape')})"


def csv_value(value: object) -> object:
    """A string cell that no spreadsheet runs as a formula, on one line."""
    if not isinstance(value, str):
        return value
    text = one_line(value)
    if text[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"[-+]?[0-9.eE+-]+", text):
        text = "'" + text
    return text


def inside(out: Path, path: Path) -> Path:
    """``path`` when it lies inside ``out``; anything else is refused before it is written."""
    base = out.resolve()
    target = path.resolve()
    if target != base and base not in target.parents:
        raise StorageError(f"refusing to write {path}: it is outside the output folder {out}; check the record names")
    return path
