"""What a conformance check is, and how the kit's checks are gathered."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from ..plugins import Registry

__all__ = ["Case", "ConformanceFailure", "NotApplicable", "all_cases", "run_in_pytest"]


class ConformanceFailure(AssertionError):
    """A component breaks the contract; the message says what was expected and what came back."""


class NotApplicable(Exception):
    """The check cannot run here (data not prepared, metric weights missing); the reason says why."""


@dataclass(frozen=True)
class Case:
    """One check of one registered component."""

    kind: str  # "model", "dataset" or "metric"
    name: str
    check: str
    fn: Callable[[], None]
    #: how a crash names the component, as the pre-flight does: "metric 'x' (package p 1.0)"
    who: str = ""
    #: the metric protocol the check runs under: one fault seen under several is one fault
    protocol: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}:{self.check}"

    def run(self) -> None:
        """Run the check; plugin code that raises becomes a :class:`ConformanceFailure` naming
        the component, the exception and the file:line of the plugin code that raised it."""
        from ..engine.preflight import PLUGIN_FAULTS, TRACEBACK_ENV
        from ..errors import DataError, VpbenchError
        from ..plugins import fault_line, where

        try:
            self.fn()
        except (ConformanceFailure, NotApplicable):
            raise
        except DataError as exc:  # the plugin says its data is missing or too small here
            raise NotApplicable(f"data not usable here ({' '.join(str(exc).split())})") from exc
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV) == "1" and not isinstance(exc, VpbenchError):
                raise  # the plugin author asked for the full traceback
            if not isinstance(exc, PLUGIN_FAULTS) and not where(exc):
                raise  # not raised by plugin code: a bug in vpbench keeps its traceback
            who = self.who or f"{self.kind} {self.name!r}"
            raise ConformanceFailure(f"{who} raised {fault_line(exc)}") from exc

    def fault(self, message: str) -> str:
        """``message`` without this check's protocol: the same fault under two protocols is one."""
        return message.replace(f" ({self.protocol})", "").replace(f" under protocol {self.protocol!r}", "") if self.protocol else message


def fail(what: str) -> NoReturn:
    raise ConformanceFailure(what)


def all_cases(
    registry: Registry,
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    data_root: Any = None,
) -> list[Case]:
    """Cases for the named components; with no names at all, for everything registered.

    Naming some components of one kind selects only those kinds that were named.
    """
    from .datasets import dataset_cases
    from .metrics import metric_cases
    from .models import model_cases

    everything = models is None and datasets is None and metrics is None
    out: list[Case] = []
    if everything or models is not None:
        out += model_cases(registry, models)
    if everything or datasets is not None:
        out += dataset_cases(registry, datasets, data_root=data_root)
    if everything or metrics is not None:
        out += metric_cases(registry, metrics)
    return out


def run_in_pytest(case: Case) -> None:
    """Run ``case`` inside a pytest test: :class:`NotApplicable` becomes a skip."""
    import pytest

    try:
        case.run()
    except NotApplicable as exc:
        pytest.skip(f"{case}: {exc}")
