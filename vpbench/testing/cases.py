"""What a conformance check is, and how the kit's checks are gathered."""

from __future__ import annotations

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

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}:{self.check}"

    def run(self) -> None:
        """Run the check; plugin code that raises becomes a :class:`ConformanceFailure` naming it."""
        from ..engine.preflight import PLUGIN_FAULTS
        from ..errors import DataError

        try:
            self.fn()
        except (ConformanceFailure, NotApplicable):
            raise
        except DataError as exc:  # the plugin says its data is missing or too small here
            raise NotApplicable(f"data not usable here ({' '.join(str(exc).split())})") from exc
        except PLUGIN_FAULTS as exc:
            text = " ".join(str(exc).split())
            raise ConformanceFailure(f"{self.kind} {self.name!r} raised {type(exc).__name__}: {text}") from exc


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
