"""``vpbench leaderboard``: tables, pages and figures generated from run records."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]

EPILOG = """\b
Examples:
  vpbench leaderboard                                   # markdown tables on stdout
  vpbench leaderboard --dataset glyphs --format csv
  vpbench leaderboard --format latex --out tables.tex
  vpbench leaderboard --records leaderboards/records --out leaderboards
  vpbench leaderboard --format html --out site      # a static website

\b
--out DIR with --format md writes README.md, a page per dataset and the figures
(fixed test clips per model, per-horizon curves); with csv or latex it writes
one file per table. --out FILE writes every table into that one file.
--format html needs --out DIR: a static site (index.html, a page per dataset and
test set, a page per record, the fixed clips as players); relative links only,
no network at view time, so the folder can be published as it is.
"""


def _is_dir_target(out: Path) -> bool:
    """A folder (existing, or a new name without a suffix); an existing file without a suffix is refused."""
    from ..errors import ConfigError

    if out.exists() and not out.is_dir() and out.suffix == "":
        raise ConfigError(
            f"--out {out} is an existing file, not a folder; give a folder for the site (or a FILE.md/.csv/.tex "
            f"for one file of tables)"
        )
    return out.is_dir() or out.suffix == ""


def _command(records_dir: Path, out: Path, dataset: str | None, no_figures: bool, fmt: str = "md") -> str:
    """The command line that produced a site, as the pages state it."""
    import shlex

    parts = ["vpbench", "leaderboard", *(["--format", fmt] if fmt != "md" else [])]
    parts += ["--records", records_dir.as_posix(), "--out", out.as_posix()]
    parts += ["--dataset", dataset] if dataset else []
    parts += ["--no-figures"] if no_figures else []
    return shlex.join(parts)


@click.command("leaderboard", epilog=EPILOG)
@click.option("--dataset", "-d", help="Only this dataset (default: every dataset with records or reported tables).")
@click.option("--records", "records_dir", type=click.Path(path_type=Path), default=Path("leaderboards/records"), show_default=True, help="Folder searched recursively for <run>/record.json.")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "latex", "html"]), default="md", show_default=True, help="Output format.")
@click.option("--out", type=click.Path(path_type=Path), help="Output FILE, or DIR for a site (md) / one file per table (csv, latex). Default: stdout.")
@click.option("--no-figures", is_flag=True, help="Write the markdown only, not the PNG figures (faster; same tables; md only).")
@click.pass_obj
def command(app: object, dataset: str | None, records_dir: Path, fmt: str, out: Path | None, no_figures: bool) -> None:
    """Build leaderboards from run records: one table per dataset, test set and metric
    protocol (PSNR, SSIM, LPIPS, MSE, MAE, #Params, MACs and throughput when profiled),
    with each row's training budget, hardware and wall time, best values marked, and the
    published reference numbers in separate "reported" sections.

    Corrupt records are reported by name and skipped. Rows scored on different test sets
    (different data checksum, clip count or lengths) never share a table.
    """
    from ..errors import ConfigError
    from ..leaderboard import build_board, load_records, load_reported, render_flat, write_site, write_table_files
    from ..leaderboard.presentation import MetricStyle
    from ..leaderboard.safety import printable

    site = out is not None and _is_dir_target(out)  # checked before anything is read or written
    if fmt == "html" and not site:
        raise ConfigError("--format html writes a website into a folder; give --out DIR (e.g. --out site)")
    loaded = load_records(records_dir, dataset)
    for path, reason in loaded.problems:
        click.echo(printable(f"warning: skipped record {path}: {reason}"), err=True)
    reported = load_reported(dataset=dataset)
    styles = {r.spec.name: MetricStyle.of(r.spec) for r in app.registry.metrics}  # type: ignore[attr-defined]
    pictures = site and fmt == "md"  # the pages name the pictures even with --no-figures
    board = build_board(loaded, reported, link_base=out if site else None, dataset=dataset, styles=styles, figures=pictures)
    if not board.datasets:
        known = sorted(set(load_records(records_dir).datasets) | {t.dataset for t in load_reported()})
        raise ConfigError(
            f"no records under {records_dir} and no reported tables for dataset {dataset!r}; "
            f"datasets with either: {', '.join(known) or 'none'}"
        )
    if out is None:
        click.echo(render_flat(board, fmt), nl=False)
        return
    if site:
        if fmt == "md":
            written = write_site(board, out, figures=not no_figures, command=_command(records_dir, out, dataset, no_figures))
        elif fmt == "html":
            from ..leaderboard.html import write_html_site

            written = write_html_site(board, out, records_dir, board.styles, command=_command(records_dir, out, dataset, False, fmt))
        else:
            written = write_table_files(board, out, fmt)
        runs = sum(len(g.records) for db in board.datasets for g in db.groups)
        click.echo(f"{len(written)} files written to {out} from {runs} records ({len(loaded.problems)} skipped)")
        return
    from ..fsutil import atomic_write_text

    atomic_write_text(out, render_flat(board, fmt))
    click.echo(f"wrote {out}")
