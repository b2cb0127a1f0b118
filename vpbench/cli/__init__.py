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
            self.warn_plugin_problems()
            self._registry = Registry(self.pm)
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
    from . import check, data, evaluate, leaderboard, plugins, predict, profile, run, score, tune

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

    for module in (run, evaluate, score, predict, check, plugins, data, profile, leaderboard, tune):
        cli.add_command(module.command)
    pm.hook.register_commands(cli=cli)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    from ..plugins import get_plugin_manager

    try:
        cli = build_cli(get_plugin_manager())
        cli.main(args=list(argv) if argv is not None else None, prog_name="vpbench", standalone_mode=False)
    except VpbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
