"""Ray Tune hyperparameter search and cluster execution for vpbench.

``run_search`` runs one ``vpbench run`` per trial on Ray Tune (locally, or on a cluster at
an address); ``submit_run`` sends a single run to a cluster and brings its run directory
back. Search spaces are YAML files (:mod:`vpbench.tune.space`). Ray is imported lazily and
is an extra: ``pip install 'vpbench[tune]'``.
"""

from __future__ import annotations

from ..cluster.connect import INSTALL_HINT, ray_session, require_ray
from ..cluster.submit import submit_run
from .search import SearchInterrupted, SearchResult, TrialOutcome, TuneRequest, plan_search, run_search
from .space import Domain, SearchSpace, load_search_space, parse_search_space
from .summary import summary_frame, summary_table

__all__ = [
    "INSTALL_HINT",
    "Domain",
    "SearchInterrupted",
    "SearchResult",
    "SearchSpace",
    "TrialOutcome",
    "TuneRequest",
    "load_search_space",
    "parse_search_space",
    "plan_search",
    "ray_session",
    "require_ray",
    "run_search",
    "submit_run",
    "summary_frame",
    "summary_table",
]
