"""The ``vpbench`` command line, built in a function from a plugin manager.

One module per command; plugins may add commands through the ``register_commands`` hook.
A user error prints one line and exits with status 2; no traceback.
"""

from __future__ import annotations

import errno
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


def _printable(line: str) -> str:
    """One line that any terminal encoding can print: undecodable bytes of a file name
    (surrogate escapes) and characters the stream cannot encode are backslash-escaped."""
    line = " ".join(line.split())
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    try:
        return line.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return line.encode("ascii", "backslashreplace").decode("ascii")


def _error(message: str) -> None:
    click.echo(_printable(f"error: {message}"), err=True)


def main(argv: Sequence[str] | None = None, plugins: Sequence[object] = ()) -> None:
    """Console-script entry point (``plugins``: extra plugin objects, e.g. in tests).

    User errors (:class:`VpbenchError`, bad flags, a path name longer than the file system
    allows) print one line and exit with status 2. Ctrl-C (a real SIGINT) prints
    ``interrupted`` and exits with 130. Any other exception is a bug and keeps its traceback.
    """
    from ..plugins import get_plugin_manager

    try:
        cli = build_cli(get_plugin_manager(plugins))
        cli.main(args=list(argv) if argv is not None else None, prog_name="vpbench", standalone_mode=False)
    except VpbenchError as exc:
        _error(str(exc))  # one line, whatever the message holds
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        # click turns an EOFError into Abort too: only a KeyboardInterrupt is the user's Ctrl-C
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, EOFError):
            raise cause  # a bug (a user's file would have been reported): keep its traceback
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        click.echo(_printable(_usage_line(exc)), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        where = str(exc.filename) if exc.filename is not None else "a path"
        if len(where) > 120:
            where = where[:60] + "..." + where[-40:]
        _error(f"a name in {where} is too long for the file system (at most 255 bytes per name); choose a shorter name")
        sys.exit(2)
