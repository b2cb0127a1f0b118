"""Record keys of a stochastic model scored on several samples per clip (``eval.samples: N``).

A model that declares itself stochastic (:attr:`vpbench.VideoModel.stochastic`) may be
scored on ``N`` futures drawn for every test clip. Its record then holds, beside each
protocol ``P`` it was scored under:

* ``P``: the first draw alone, exactly what a run with ``eval.samples: 1`` and the same seed
  records (the first draw continues the run's random stream; draws 2..N each have their own
  stream seeded from the run's seed and the draw's index);
* ``P-mean-of-N``: per-clip metrics averaged over the N draws of each clip, then over the
  clips; set-level metrics (FVD) computed over all N draws of every clip;
* ``P-best-of-N``: per clip, the draw whose score over the horizon is best against the
  truth (the stochastic video-prediction literature's best-of-N), then over the clips; the
  per-frame curve is the chosen draw's. Set-level metrics have no best-of-N.

The keys are protocols of their own, so the leaderboard shows them in their own tables and
they are never mixed with single-draw numbers.
"""

from __future__ import annotations

import re

__all__ = ["MEAN", "BEST", "sampled_key", "parse_sampled", "sampled_text"]

MEAN = "mean"
BEST = "best"
_KEY = re.compile(r"^(?P<base>.+)-(?P<kind>mean|best)-of-(?P<n>[0-9]+)$")


def sampled_key(protocol: str, kind: str, n: int) -> str:
    """``openstl-best-of-5``: the key of ``protocol``'s ``kind`` (mean or best) over ``n`` draws."""
    return f"{protocol}-{kind}-of-{n}"


def parse_sampled(key: str) -> tuple[str, str, int] | None:
    """``(protocol, kind, n)`` of a key made by :func:`sampled_key`, else ``None``."""
    m = _KEY.match(key)
    if m is None:
        return None
    return m["base"], m["kind"], int(m["n"])


def sampled_text(key: str) -> str | None:
    """What a leaderboard says about a sampled key, ``None`` for any other protocol."""
    parsed = parse_sampled(key)
    if parsed is None:
        return None
    base, kind, n = parsed
    if kind == MEAN:
        how = (f"each clip scored on {n} futures drawn by the model, per-clip values averaged over the draws; "
               f"set-level metrics over all {n} draws of every clip")
    else:
        how = (f"each clip scored on {n} futures drawn by the model, keeping the draw whose score over the horizon "
               f"is best against the truth (best-of-{n}; an oracle choice, not a prediction)")
    return f"protocol {base} with {how}. Not comparable with single-draw numbers."
