"""Build the plugin manager and the registry of models, datasets and metrics.

Nothing here runs at import time: :func:`get_plugin_manager` builds a fresh manager
(pluggy's eggsample pattern), so tests and Ray workers each get their own.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownPluginError, VpbenchError
from .names import is_slug, quote
from .specs import DatasetSpec, MetricSpec, ModelSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginManager",
    "unmarked_hooks",
    "ALLOW_ENV",
    "get_plugin_manager",
    "Registry",
    "Registered",
    "get_registry",
    "fault_line",
    "where",
    "without_hint",
]

#: Entry-point group that every plugin, first-party or not, registers in.
ENTRY_POINT_GROUP = "vpbench"
#: Comma-separated entry-point names to load; unset loads every installed plugin.
ALLOW_ENV = "VPBENCH_PLUGINS"


def _allowed() -> set[str] | None:
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus what went wrong while loading plugins.

    Attributes:
        broken: entry-point name -> one-line reason, for plugins that failed to import;
            they are left out and the others work.
        problems: one line per plugin defect that does not stop it from loading (a
            function named like a hook but not marked ``@vpbench.hookimpl``).
    """

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.broken: dict[str, str] = {}
        self.problems: list[str] = []

    def warnings(self) -> list[str]:
        """Everything a command should warn about once, one line each."""
        out = [
            f"plugin {name!r} is broken and was left out: {why} "
            f"(fix or uninstall it, or leave it out of {ALLOW_ENV}; `vpbench plugins` lists it)"
            for name, why in sorted(self.broken.items())
        ]
        return out + self.problems


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#: Top-level modules that are not plugin code: a fault is located in the innermost frame outside them.
_NOT_PLUGIN_CODE = frozenset(
    {"vpbench", "torch", "numpy", "scipy", "skimage", "PIL", "lpips", "einops", "pydantic", "pluggy",
     "importlib", "av", "pandas", "functools", "contextlib", "abc", "typing"}
)


def _frame_file(tb: types.TracebackType) -> str:
    return tb.tb_frame.f_code.co_filename


def where(exc: BaseException) -> str:
    """``"file.py:LINE"`` of the plugin code that raised ``exc``, or ``""`` when none did.

    That is the innermost frame outside vpbench's core and the libraries it calls (torch,
    numpy, ...), so that a plugin bug surfacing inside ``torch.cat`` points at the plugin's
    line that called it; a module that does not compile points at its bad line.
    """
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{Path(exc.filename).name}:{exc.lineno}"
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    for frame in reversed(frames):
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] not in _NOT_PLUGIN_CODE and not _frame_file(frame).startswith("<"):
            return f"{Path(_frame_file(frame)).name}:{frame.tb_lineno}"
    if exc.__cause__ is not None:  # e.g. vpbench's PluginError around the plugin's ImportError
        return where(exc.__cause__)
    return ""  # raised by vpbench itself (e.g. a target that does not exist): the message says it all


def fault_line(exc: BaseException) -> str:
    """``"ZeroDivisionError: division by zero (at metric.py:12)"``: a plugin's crash on one line."""
    at = where(exc)
    return _one_line(exc) + (f" (at {at})" if at else "")


def without_hint(registry: Registry, requested: Iterable[str] | None, broken: Iterable[str]) -> str:
    """How to run without the ``broken`` metrics: the ``eval.metrics`` setting that leaves them out."""
    left_out = set(broken)
    pool = list(requested) if requested is not None else registry.metrics.names()
    rest = [n for n in pool if n not in left_out]
    if not rest:
        return "leave it out of eval.metrics and name a working metric, e.g. --set eval.metrics=[mse]"
    return f"run without it: --set eval.metrics=[{','.join(rest)}]"


def unmarked_hooks(plugin: object) -> list[str]:
    """Names of functions on ``plugin`` that look like hooks but lack ``@vpbench.hookimpl``.

    pluggy silently ignores such a function, so the plugin would register nothing.
    """
    is_module = isinstance(plugin, type(pluggy))
    found = []
    for attr in sorted(dir(plugin)):
        if not attr.startswith("register_"):
            continue
        value = getattr(plugin, attr, None)
        if not callable(value) or hasattr(value, f"{ENTRY_POINT_GROUP}_impl"):
            continue
        # a module's own functions only, not helpers it imported under such a name
        if not is_module or getattr(value, "__module__", None) == getattr(plugin, "__name__", None):
            found.append(attr)
    return found


def get_plugin_manager(
    plugins: Iterable[object] = (), *, load_entry_points: bool = True
) -> PluginManager:
    """Return a new plugin manager with the hook specs and the installed plugins.

    A plugin that fails to import is left out and recorded in ``pm.broken`` (the others
    still load); a function named like a hook without the ``@vpbench.hookimpl`` marker is
    recorded in ``pm.problems``.

    Args:
        plugins: extra plugin objects (modules or instances) to register, e.g. in tests.
        load_entry_points: load the ``vpbench`` entry-point group, filtered by the
            ``VPBENCH_PLUGINS`` allow-list when that variable is set.

    Raises:
        PluginError: a plugin implements a hook that does not exist.
    """
    pm = PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        allowed = _allowed()
        names = sorted({ep.name for ep in _entry_points()})
        for name in names:
            if allowed is not None and name not in allowed:
                pm.set_blocked(name)
                continue
            try:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
            # Third-party import code may raise anything; the plugin is named and left out
            # so that one broken package does not take every other plugin down.
            except Exception as exc:
                pm.broken[name] = f"failed to import: {_one_line(exc)}"
    for obj in plugins:
        pm.register(obj)
    for plugin_name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        for attr in unmarked_hooks(plugin):
            pm.problems.append(
                f"plugin {plugin_name!r} defines {attr}() without @vpbench.hookimpl, so vpbench ignores it; "
                "decorate it with @vpbench.hookimpl"
            )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} (known hooks: {', '.join(_hook_names())})") from exc
    return pm


def _hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("register_"))


S = TypeVar("S", ModelSpec, DatasetSpec, MetricSpec)


@dataclass(frozen=True)
class Registered(Generic[S]):
    """A spec together with the plugin (and distribution) that registered it."""

    spec: S
    plugin: str
    package: str


class _Table(Generic[S]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Registered[S]] = {}

    def add(self, item: Registered[S]) -> None:
        name = item.spec.name
        if not is_slug(name):  # names become folder and file names (runs/<model>-<dataset>-..., pages)
            raise PluginError(
                f"plugin {item.plugin!r} registers the {self.kind} name {quote(name)}, which is not a plain name "
                f"(letters, digits, . _ + -); rename it, or exclude the plugin with {ALLOW_ENV}"
            )
        if name in self._items:
            other = self._items[name]
            raise PluginError(
                f"{self.kind} {name!r} is registered twice: by plugin {other.plugin!r} and by "
                f"{item.plugin!r}; uninstall one or exclude it with {ALLOW_ENV}"
            )
        self._items[name] = item

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[Registered[S]]:
        return iter(self._items[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> S:
        return self.entry(name).spec

    def entry(self, name: str) -> Registered[S]:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(self.names()) or "(none installed)"
            raise UnknownPluginError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {valid} "
                f"(see `vpbench plugins`)"
            ) from None


class Registry:
    """Every model, dataset and metric registered by the loaded plugins."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.models: _Table[ModelSpec] = _Table("model")
        self.datasets: _Table[DatasetSpec] = _Table("dataset")
        self.metrics: _Table[MetricSpec] = _Table("metric")
        self._collect("register_models", ModelSpec, self.models)
        self._collect("register_datasets", DatasetSpec, self.datasets)
        self._collect("register_metrics", MetricSpec, self.metrics)

    def _package_of(self, plugin: object) -> str:
        for plug, dist in self.pm.list_plugin_distinfo():
            if plug is plugin:
                return f"{dist.project_name} {dist.version}"
        module = getattr(plugin, "__name__", None) or type(plugin).__module__
        return str(module)

    def _collect(self, hook: str, spec_type: type[Any], table: _Table[Any]) -> None:
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            plugin_name = impl.plugin_name
            package = self._package_of(impl.plugin)
            staged: list[Registered[Any]] = []

            def register(spec: Any, _plugin: str = plugin_name, _package: str = package) -> None:
                if not isinstance(spec, spec_type):
                    raise PluginError(
                        f"plugin {_plugin!r} passed {type(spec).__name__} to {hook}; "
                        f"expected vpbench.{spec_type.__name__}"
                    )
                staged.append(Registered(spec, _plugin, _package))

            kwargs: dict[str, Callable[..., None]] = {"register": register}
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except VpbenchError:
                raise
            # The plugin's own hook code may raise anything (a spec built with a wrong argument):
            # what this hook registers is left out and the other plugins work.
            except Exception as exc:
                broken = getattr(self.pm, "broken", None)
                if not isinstance(broken, dict):
                    raise
                broken[plugin_name] = f"{hook} raised {fault_line(exc)}; what it registers is left out"
                continue
            for item in staged:
                table.add(item)


def get_registry(plugins: Iterable[object] = (), *, load_entry_points: bool = True) -> Registry:
    """Build a plugin manager and collect its registrations."""
    return Registry(get_plugin_manager(plugins, load_entry_points=load_entry_points))
