"""Charts of a summary as PNG files: overall accuracy per run, and radars by group.

`overall_chart` draws one bar per run with its bootstrap interval as an error
bar, its chance level and its always-None level as short lines across the bar
(a bar is read against what guessing gets), and, when compared with the
paper, the published bar beside it (hatched). `radar_chart` draws the
accuracy of one or more runs across the groups of a breakdown (categories,
tasks), as the paper's figure does, with the published numbers dashed when
compared. `length_chart` draws accuracy against the number of frames, overall
and per task, where a benchmark's items have several lengths. Every group of
any run is a radar's axis; a run without that group has a
gap there, neither a zero (which would read as a score) nor a dropped axis
(which would hide the group from the runs that have it). Figures are built
without pyplot (no global state, no display needed) and rendered by
matplotlib's Agg canvas.

``--plots`` follows the rules of every output (`tpru.files`): charts go only
into a new or empty folder, or one an earlier report wrote, never into a
dataset (its ``images/``) or a folder of the user's (`check_plots_folder`).

matplotlib is an optional dependency (``pip install 'tpru[eval]'``).

Example:
    >>> write_plots(summary, Path("report/plots"))  # doctest: +SKIP
    [PosixPath('report/plots/overall.png'), PosixPath('report/plots/radar-lego-puzzles-task.png')]
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tpru.diagnostics import InputError
from tpru.eval.report import Summary
from tpru.eval.report_lengths import TASK_SEPARATOR
from tpru.eval.report_paper import Comparison
from tpru.eval.report_splits import split_name
from tpru.files import check_output_folder, mark_output, output_around

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

RADAR_BREAKDOWNS = ("category", "task", "scenario")
"""Breakdowns a radar is drawn for (per benchmark) when its runs have 3 or more groups."""

_PAPER_COLOUR = "#999999"
_REFERENCES: tuple[tuple[str, str, Literal["--", ":"]], ...] = (
    ("chance", "chance", "--"), ("always_none", "always None", ":"))
"""The reference levels across each bar: RunReport field, legend label, line style."""

PLOTS_KIND = "plots folder"
"""The kind `write_plots` marks its folder with (`tpru.files.OUTPUT_MARKER`)."""


def _figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("plots need matplotlib: pip install 'tpru[eval]' "
                         "(or pip install matplotlib)") from None
    # Margins are set by hand: an automatic layout engine triples the drawing time.
    return Figure(figsize=(width, height), dpi=100)


def _save(figure: Figure, out: Path | io.BytesIO) -> None:
    # A Figure made without pyplot renders through the Agg canvas for PNG output.
    if isinstance(out, Path):
        out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (for embedding in a page)."""
    buffer = io.BytesIO()
    _save(figure, buffer)
    return buffer.getvalue()


def _run_names(summary: Summary) -> list[str]:
    """Bar labels: the run, with its benchmark and split where the runs differ in them."""
    names = [run.label for run in summary.runs]
    if len({run.benchmark for run in summary.runs}) > 1:
        names = [f"{name}\n{run.benchmark}" for name, run in zip(names, summary.runs,
                                                                  strict=True)]
    if len({run.split for run in summary.runs}) > 1:
        names = [f"{name}\nsplit {split_name(run.split)}" for name, run in zip(
            names, summary.runs, strict=True)]
    return names


def overall_chart(summary: Summary, comparison: Comparison | None = None) -> Figure:
    """Bars of overall accuracy per run, with interval error bars, chance and always-None
    lines across each bar (where the run's results say), and published bars."""
    published = {} if comparison is None else {
        p.run: p for p in comparison.rows if p.breakdown == "overall"}
    names = _run_names(summary)
    width_in = max(4.0, 1.6 * len(names) + 1.5)
    figure = _figure(width_in, 4.5)
    figure.subplots_adjust(left=0.7 / width_in, right=1 - 0.2 / width_in, top=0.9, bottom=0.17)
    axes = figure.add_subplot()
    width = 0.38 if published else 0.6
    paper_label: str | None = "paper"
    drawn: set[str] = set()
    for index, run in enumerate(summary.runs):
        cell = run.overall
        x = index - width / 2 if published else index
        error = None
        if cell.low is not None and cell.high is not None:
            error = [[max(0.0, cell.accuracy - cell.low)], [max(0.0, cell.high - cell.accuracy)]]
        bar = axes.bar([x], [cell.accuracy], width, yerr=error, capsize=4,
                       color=f"C{index % 10}", label="ours" if index == 0 and published else None)
        axes.bar_label(bar, fmt="%.1f", padding=2, fontsize=8)
        for field, label, style in _REFERENCES:
            level = getattr(run, field)
            if level is not None:
                axes.hlines(level, x - width / 2, x + width / 2, colors="black",
                            linestyles=style, linewidth=1.2,
                            label="_nolegend_" if label in drawn else label)
                drawn.add(label)
        paper = published.get(run.label)
        if paper is not None:
            bar = axes.bar([index + width / 2], [paper.paper], width, color=_PAPER_COLOUR,
                           hatch="//", edgecolor="white",
                           label=paper_label)
            paper_label = None
            axes.bar_label(bar, labels=[f"{paper.paper:.1f}\n{paper.paper_model}"],
                           padding=2, fontsize=7)
    axes.set_xticks(range(len(names)), names, fontsize=8)
    axes.set_ylim(0, 105)
    axes.set_ylabel("accuracy (%)")
    axes.set_title(f"Overall accuracy ({summary.confidence:.0%} bootstrap intervals)")
    axes.grid(axis="y", alpha=0.3)
    if published or drawn:
        axes.legend(loc="upper right", fontsize=8)
    return figure


def _runs_of(summary: Summary, breakdown: str, benchmark: str | None) -> list[int]:
    return [index for index, run in enumerate(summary.runs) if breakdown in run.groups
            and (benchmark is None or run.benchmark == benchmark)]


def radar_groups(summary: Summary, breakdown: str, benchmark: str | None = None) -> list[str]:
    """The groups of `breakdown` that any run (of `benchmark`) has: each is an axis."""
    return sorted({group for i in _runs_of(summary, breakdown, benchmark)
                   for group in summary.runs[i].groups[breakdown]})


def radars(summary: Summary) -> list[tuple[str, str]]:
    """The (benchmark, breakdown) radars worth drawing: 3 or more groups among the
    benchmark's runs, for each breakdown of `RADAR_BREAKDOWNS`."""
    benchmarks = dict.fromkeys(run.benchmark for run in summary.runs)
    return [(bench, breakdown) for bench in benchmarks for breakdown in RADAR_BREAKDOWNS
            if len(radar_groups(summary, breakdown, bench)) >= 3]


def radar_chart(summary: Summary, breakdown: str, comparison: Comparison | None = None, *,
                benchmark: str | None = None) -> Figure:
    """Accuracy of each run (of `benchmark`, default all) across the groups of
    `breakdown`, one polygon per run; published numbers dashed when compared.

    Every group of any run is an axis. A run without a value there has a gap:
    its line breaks at that axis, and its polygon is filled only when it has
    every group (a fill across the gap would draw a value that is not there).

    Raises:
        InputError: the runs have fewer than 3 groups (no radar to draw).
    """
    groups = radar_groups(summary, breakdown, benchmark)
    if len(groups) < 3:
        raise InputError(f"a radar by {breakdown} needs at least 3 groups among the runs; "
                         f"found {len(groups)}")
    angles = [2 * math.pi * i / len(groups) for i in range(len(groups))]
    figure = _figure(7.5, 7.0)
    figure.subplots_adjust(left=0.14, right=0.86, top=0.86, bottom=0.17)
    axes = figure.add_subplot(projection="polar")
    for index in _runs_of(summary, breakdown, benchmark):
        run = summary.runs[index]
        cells = run.groups[breakdown]
        values = [cells[g].accuracy if g in cells else math.nan for g in groups]
        colour = f"C{index % 10}"
        # NaN breaks the line; markers keep a value whose neighbours are both gaps visible.
        axes.plot([*angles, angles[0]], [*values, values[0]], color=colour, linewidth=1.5,
                  marker="o", markersize=3, label=run.label)
        if all(g in cells for g in groups):
            axes.fill([*angles, angles[0]], [*values, values[0]], color=colour, alpha=0.15)
        _published_polygon(axes, comparison, run.label, breakdown, groups, angles, colour)
    axes.set_xticks(angles, [_wrap(g) for g in groups], fontsize=8)
    axes.tick_params(axis="x", pad=10)
    axes.set_ylim(0, 100)
    axes.set_yticks([20, 40, 60, 80, 100], ["20", "40", "60", "80", "100"], fontsize=7)
    axes.set_title(f"{benchmark + ': ' if benchmark else ''}accuracy (%) by {breakdown}",
                   pad=28)
    figure.legend(loc="lower center", ncols=2, fontsize=8)
    return figure


def _published_polygon(axes: Axes, comparison: Comparison | None, run: str, breakdown: str,
                       groups: Sequence[str], angles: Sequence[float], colour: str) -> None:
    """The paper's numbers for `run` on this radar, dashed, with a gap at a group the
    paper has no number for."""
    if comparison is None:
        return
    paper = {p.run_group: p for p in comparison.rows
             if p.run == run and p.breakdown == breakdown and p.run_group}
    if not paper:
        return
    values = [paper[g].paper if g in paper else math.nan for g in groups]
    model = next(iter(paper.values())).paper_model
    axes.plot([*angles, angles[0]], [*values, values[0]],
              color=colour, linestyle="--", linewidth=1, label=f"paper: {model}")


def _wrap(text: str, width: int = 14) -> str:
    """Break a long group name onto lines of about `width` characters."""
    words, lines = text.split(), [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return "\n".join(lines)


def length_benchmarks(summary: Summary) -> list[str]:
    """The benchmarks whose runs show items of 2 or more lengths: each gets a length chart."""
    benchmarks = dict.fromkeys(run.benchmark for run in summary.runs)
    return [bench for bench in benchmarks
            if len({g for run in summary.runs if run.benchmark == bench
                    for g in run.groups.get("frames", {}) if g.isdigit()}) >= 2]


def length_chart(summary: Summary, benchmark: str | None = None) -> Figure:
    """Accuracy against sequence length: one panel overall and one per task, one line
    per run (of `benchmark`, default all) with its bootstrap interval as error bars.

    The x axis is the number of frames an item shows (`tpru.eval.report_lengths`);
    items of unknown length are left out of the chart (the tables count them).
    """
    runs = [(i, run) for i, run in enumerate(summary.runs)
            if benchmark is None or run.benchmark == benchmark]
    tasks = sorted({task for _, run in runs for task in run.groups.get("task", {})})
    panels: list[tuple[str, str, str]] = [("overall", "frames", "")]
    panels += [(task, "frames_by_task", f"{task}{TASK_SEPARATOR}") for task in tasks]
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = _figure(4.2 * columns, 3.4 * rows + 0.8)
    from matplotlib.ticker import MaxNLocator  # after _figure: it says how to install matplotlib

    figure.subplots_adjust(left=0.08, right=0.98, top=1 - 0.7 / (3.4 * rows + 0.8),
                           bottom=0.5 / (3.4 * rows + 0.8) + 0.06, hspace=0.45, wspace=0.25)
    for number, (title, breakdown, prefix) in enumerate(panels, start=1):
        axes = figure.add_subplot(rows, columns, number)
        for index, run in runs:
            points = sorted((int(group[len(prefix):]), cell)
                            for group, cell in run.groups.get(breakdown, {}).items()
                            if group.startswith(prefix) and group[len(prefix):].isdigit())
            if not points:
                continue
            xs = [x for x, _ in points]
            ys = [cell.accuracy for _, cell in points]
            error = None
            if all(c.low is not None and c.high is not None for _, c in points):
                error = [[max(0.0, c.accuracy - (c.low or 0.0)) for _, c in points],
                         [max(0.0, (c.high or 0.0) - c.accuracy) for _, c in points]]
            axes.errorbar(xs, ys, yerr=error, color=f"C{index % 10}", marker="o", markersize=4,
                          capsize=3, linewidth=1.5, label=run.label if number == 1 else None)
        axes.set_title(title, fontsize=9)
        axes.set_xlabel("frames", fontsize=8)
        axes.set_ylabel("accuracy (%)", fontsize=8)
        axes.set_ylim(0, 105)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    figure.suptitle(f"{benchmark + ': ' if benchmark else ''}accuracy against sequence length",
                    fontsize=10)
    figure.legend(loc="lower center", ncols=min(4, len(runs)), fontsize=8)
    return figure


def check_plots_folder(folder: Path, *, inputs: Iterable[Path] = ()) -> None:
    """Refuse a plots folder that holds anything but the charts of an earlier report.

    Charts replace files of the same name, so only an empty or new folder, or
    one `write_plots` marked (`PLOTS_KIND`), may take them; never a folder
    inside a dataset, export or run (a dataset's ``images/``), nor one of
    `inputs` (the runs' files) or around them.

    Raises:
        InputError: one line naming the folder and why, and ``--plots``.
    """
    check_output_folder(folder, kind=PLOTS_KIND, overwrite=True, inputs=inputs,
                        option="--plots")
    around = output_around(folder)
    if around is not None:
        raise InputError(f"{folder}: lies inside {around}, a folder tpru wrote (a dataset, "
                         "export or run); choose another --plots")


def _slug(benchmark: str) -> str:
    slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in benchmark.lower())
    return slug or "benchmark"


def write_plots(summary: Summary, folder: Path,
                comparison: Comparison | None = None) -> list[Path]:
    """Write ``overall.png``, ``radar-<benchmark>-<breakdown>.png`` for each of
    `radars` and ``length-<benchmark>.png`` for each of `length_benchmarks` into
    `folder`; returns the files written.

    The folder is checked first (`check_plots_folder`) and marked as a plots
    folder, so the next report may replace it; radars of an earlier report that
    this one does not draw are removed, so the folder shows this report only.
    """
    folder = Path(folder)
    check_plots_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mark_output(folder, PLOTS_KIND)
    written = [folder / "overall.png"]
    _save(overall_chart(summary, comparison), written[0])
    for benchmark, breakdown in radars(summary):
        path = folder / f"radar-{_slug(benchmark)}-{breakdown}.png"
        _save(radar_chart(summary, breakdown, comparison, benchmark=benchmark), path)
        written.append(path)
    for benchmark in length_benchmarks(summary):
        path = folder / f"length-{_slug(benchmark)}.png"
        _save(length_chart(summary, benchmark), path)
        written.append(path)
    for stale in {*folder.glob("radar-*.png"), *folder.glob("length-*.png")} - set(written):
        stale.unlink()
    return written
