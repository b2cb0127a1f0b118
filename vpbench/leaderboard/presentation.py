"""How a metric column looks, taken from the metric's own registration (:class:`vpbench.MetricSpec`):
heading, unit, number format and column order. A metric that no installed plugin registers (a
record from elsewhere) or that declares nothing gets the defaults: upper-cased name, ``.4g``,
after the ordered metrics, alphabetically. Markdown, CSV, LaTeX and HTML all read it from here."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..specs import MetricSpec
from .table import fmt_float

__all__ = ["MetricStyle", "Styles", "style_of", "styles_from_registry", "ordered", "SIGNIFICANT"]

#: significant digits a fixed-point metric column keeps for its smallest value
SIGNIFICANT = 3
MAX_DECIMALS = 12


@dataclass(frozen=True)
class MetricStyle:
    heading: str
    number_format: str = ".4g"
    column_order: int = 1000

    @classmethod
    def of(cls, spec: MetricSpec) -> MetricStyle:
        return cls(spec.heading, spec.number_format, spec.column_order)

    def fmt(self, value: float | None) -> str:
        return fmt_float(value, self.number_format)

    def widened(self, values: Iterable[float | None]) -> MetricStyle:
        """This style, with a fixed-point format (``.2f``) given enough decimals that the
        column's smallest non-zero value keeps :data:`SIGNIFICANT` significant digits: a
        per-pixel MSE of 0.0268 prints as ``0.0268``, not ``0.03``. Other formats are kept."""
        m = re.fullmatch(r"(.*\.)(\d+)f", self.number_format)
        small = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
        if m is None or not small:
            return self
        need = SIGNIFICANT - 1 - math.floor(math.log10(min(small)))
        if need <= int(m.group(2)):
            return self
        return replace(self, number_format=f"{m.group(1)}{min(need, MAX_DECIMALS)}f")


Styles = Mapping[str, MetricStyle]


def style_of(name: str, styles: Styles) -> MetricStyle:
    return styles.get(name) or MetricStyle(name.upper())


def ordered(names: list[str] | set[str], styles: Styles) -> list[str]:
    """Metric names in their declared column order, then by name."""
    return sorted(names, key=lambda n: (style_of(n, styles).column_order, n))


def styles_from_registry() -> dict[str, MetricStyle]:
    """The styles of every installed metric (plugins loaded from their entry points)."""
    from ..plugins import get_registry

    return {r.spec.name: MetricStyle.of(r.spec) for r in get_registry().metrics}
