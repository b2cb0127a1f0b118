"""Connecting to Ray: a local instance, or a cluster at ``auto``, ``host:port`` or ``ray://...``.

Workers are separate processes, perhaps on other machines: they rebuild the plugin registry
from the installed entry points, so the environment variables that shape a run travel with
the job (:mod:`vpbench.cluster.env`), and plugin objects registered in this process travel
with each task (:func:`forwarded_plugins`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from .env import runtime_env

__all__ = ["INSTALL_HINT", "CLIENT_HINT", "CONNECT_TIMEOUT_S", "require_ray", "require_client", "ray_session", "forwarded_plugins", "user_errors", "window"]

INSTALL_HINT = "pip install 'vpbench[tune]'"
#: what a ``ray://`` (Ray Client) address needs besides Ray Tune
CLIENT_HINT = "pip install 'ray[client]'"
#: seconds to wait for the cluster at --address to answer before giving up
CONNECT_TIMEOUT_S = 10.0
#: HTTP/2's connection preface and an empty SETTINGS frame: what a gRPC client sends first
_H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_START_HINT = "start one with `ray start --head --port 6379` and pass --address HOST:6379, or drop --address to run on this machine"


def require_ray() -> None:
    """Raise a ConfigError with the install command when Ray Tune is missing."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"Ray Tune is not installed ({exc.name}); install it with: {INSTALL_HINT}") from None


def require_client(address: str) -> None:
    """``ray://`` addresses go through Ray Client, which is Ray's ``client`` extra (gRPC)."""
    if not address.startswith("ray://"):
        return
    try:
        import grpc  # noqa: F401
        import ray.util.client.worker  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"--address {address} uses Ray Client, which is not installed ({exc.name}); install it with: {CLIENT_HINT}, "
            f"or pass the cluster's HOST:6379 address from a cluster node"
        ) from None


def forwarded_plugins(registry: Any) -> list[object]:
    """Plugin objects registered besides the installed entry points (workers register them too)."""
    pm = registry.pm
    installed = {id(plugin) for plugin, _ in pm.list_plugin_distinfo()}
    return [p for p in pm.get_plugins() if id(p) not in installed]


def _check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail within ``timeout`` seconds, in one line, when no Ray cluster answers at the address.

    Ray's own connection waits for minutes for a port that accepts connections but is no
    Ray cluster; both Ray's GCS and Ray Client speak gRPC, so a server that does not answer
    HTTP/2's opening within ``timeout`` is not one.
    """
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise ConfigError(f"bad --address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        raise ConfigError(f"no Ray cluster at {address} (nothing listens there); {_START_HINT}") from None
    with conn:
        try:
            conn.settimeout(timeout)
            conn.sendall(_H2_HELLO)
            head = conn.recv(9)
        except OSError:
            head = b""
    if len(head) < 4 or head[3] != 4:  # the server's first frame must be SETTINGS (type 4)
        raise ConfigError(
            f"no Ray cluster at {address} (something listens there but did not answer as Ray within {timeout:g} s); {_START_HINT}"
        )


@contextmanager
def ray_session(address: str | None, *, num_cpus: int | None = None, quiet: bool = False) -> Iterator[None]:
    """Connect to ``address`` (or start Ray locally), yield, disconnect.

    A session this function did not open (``ray.init`` called by the user) is reused and left open.
    """
    require_ray()
    import ray

    if ray.is_initialized():
        yield
        return
    if address:
        require_client(address)
        _check_reachable(address)
    kwargs: dict[str, Any] = {"runtime_env": runtime_env(), "log_to_driver": not quiet}
    if address is None:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus)
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"no Ray cluster at {address} ({first}); {_START_HINT}") from None
    try:
        yield
    finally:
        _shutdown(ray)


def _shutdown(ray: Any) -> None:
    """Disconnect from Ray, waiting at most SHUTDOWN_TIMEOUT_S: a Ray that hangs (after an
    interrupted call, say) cannot keep the command from exiting. When it did hang, Ray's own
    exit hook (another shutdown) is dropped so that the interpreter's exit does not wait on it."""
    import atexit

    from .interrupt import SHUTDOWN_TIMEOUT_S, bounded

    if not bounded(ray.shutdown, SHUTDOWN_TIMEOUT_S):
        atexit.unregister(ray.shutdown)


@contextmanager
def user_errors() -> Iterator[None]:
    """Re-raise a user error (ConfigError, DataError, ...) raised inside a Ray task as itself."""
    from ray.exceptions import RayTaskError

    from ..errors import VpbenchError

    try:
        yield
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, VpbenchError):
            raise cause from None
        raise


def window(ray: Any, cpus: float, gpus: float) -> int:
    """How many tasks of ``cpus`` CPUs and ``gpus`` GPUs a driver keeps submitted: what the
    cluster (as it is now: nodes join and leave) runs at once, plus one queued. A driver that
    submits no more than this holds the inputs of a bounded number of tasks, whatever their total."""
    now = ray.cluster_resources()
    fit = now.get("CPU", 0) / cpus if cpus > 0 else float("inf")
    if gpus > 0:
        fit = min(fit, now.get("GPU", 0) / gpus)
    return max(1, int(fit)) + 1
