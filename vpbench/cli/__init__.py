"""The ``vpbench`` command line, built in a function from a plugin manager.

One module per command; plugins may add commands through the ``register_commands`` hook.
A user error prints one line and exits with status 2; no traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import click
import pluggy

from .. import __version__
from ..errors import VpbenchError

__all__ = ["AppState", "build_cli", "main"]


@dataclass
class AppState:
    """Shared by every command through ``click.Context.obj``."""

    pm: pluggy.PluginManager
    _registry: object | None = field(default=None, repr=False)
    #: plugin problems (broken imports, unmarked hooks) were already shown
    warned: bool = False

    @property
    def registry(self):  # type: ignore[no-untyped-def]
        from ..plugins import Registry

        if self._registry is None:
            self._registry = Registry(self.pm)  # first: a hook that crashes is one of the problems
            self.warn_plugin_problems()
        return self._registry

    def warn_plugin_problems(self) -> None:
        """Warn once on stderr about broken plugins; the command goes on without them."""
        if self.warned:
            return
        self.warned = True
        for line in getattr(self.pm, "warnings", lambda: [])():
            click.echo(f"warning: {line}", err=True)


def build_cli(pm: pluggy.PluginManager) -> click.Group:
    """Assemble the command group for ``pm``: built-in commands, then plugin commands."""
    from . import bench, check, data, evaluate, leaderboard, plugins, predict, profile, run, score, tune

    @click.group(
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        epilog="\b\nExamples:\n  vpbench plugins\n  vpbench run --model shrvq --dataset glyphs\n"
        "  vpbench run --model copy-last --dataset mmnist --data-root ~/data\n"
        "  vpbench leaderboard --records leaderboards/records --out leaderboards",
    )
    @click.version_option(__version__, prog_name="vpbench")
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        """vpbench: benchmark video-prediction models on the literature's protocols.

        Models, datasets and metrics are plugins (`vpbench plugins` lists them). Every run
        writes a versioned record; leaderboards are generated from records.
        """
        ctx.obj = AppState(pm)

    for module in (run, evaluate, score, predict, check, plugins, data, profile, leaderboard, tune, bench):
        cli.add_command(module.command)
    pm.hook.register_commands(cli=cli)
    return cli


def _usage_line(exc: click.UsageError) -> str:
    """A click usage error on one line, with the help command that explains the flags."""
    ctx = exc.ctx
    path = ctx.command_path if ctx is not None else "vpbench"
    return f"error: {exc.format_message().rstrip('.')}; see `{path} --help`"


def main(argv: Sequence[str] | None = None, plugins: Sequence[object] = ()) -> None:
    """Console-script entry point (``plugins``: extra plugin objects, e.g. in tests).

    User errors (:class:`VpbenchError`, bad flags) print one line and exit with status 2.
    Any other exception is a bug and keeps its traceback.
    """
    from ..plugins import get_plugin_manager

    try:
        cli = build_cli(get_plugin_manager(plugins))
        cli.main(args=list(argv) if argv is not None else None, prog_name="vpbench", standalone_mode=False)
    except VpbenchError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        click.echo(f"error: {message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        click.echo(_usage_line(exc), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
