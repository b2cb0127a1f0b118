"""The conformance kit: registry-driven checks of models, datasets and metrics.

Shipped in the wheel so a third-party plugin package can run the same checks vpbench runs on
its own plugins, without a clone of vpbench:

* ``vpbench check [--model M] [--dataset D] [--metric X]`` on the command line, or
* in pytest (the project's ``tests/test_models_conformance.py`` does exactly this)::

      import pytest
      from vpbench.plugins import get_registry
      from vpbench.testing import all_cases, run_in_pytest

      @pytest.mark.parametrize("case", all_cases(get_registry(), models=["my-model"]), ids=str)
      def test_vpbench_conformance(case):
          run_in_pytest(case)

Each :class:`Case` is one check of one component; it raises :class:`ConformanceFailure`
(an ``AssertionError``) naming what was expected and what came back, or :class:`NotApplicable`
when it cannot run here (data not prepared, metric weights missing).
"""

from __future__ import annotations

from .cases import Case, ConformanceFailure, NotApplicable, all_cases, run_in_pytest
from .datasets import dataset_cases
from .metrics import metric_cases
from .models import GEOMETRIES, model_cases

__all__ = [
    "Case",
    "ConformanceFailure",
    "NotApplicable",
    "GEOMETRIES",
    "all_cases",
    "model_cases",
    "dataset_cases",
    "metric_cases",
    "run_in_pytest",
]
