"""An HTML report of evaluation runs: tables, charts and every failed sample.

One self-contained file: the summary tables (as in the markdown report), the
charts embedded as PNG data URIs, and, for each run, the items the model got
wrong: the question with its images inline where the ``<image>`` placeholders
are, the options (image options as thumbnails) with the gold outlined in green
and the prediction in red, the gold answer, the model's full output, the
extracted prediction and the extraction rule that found it, and the backend's
error if any. Selects filter the failures by run, benchmark, task, category,
scenario and rule.

Item images are linked by paths relative to the HTML file (the page works
wherever it moves together with the images); with ``embed=True`` they are
inlined and the page stands alone. As in ``tpru view``, a load handler
writes how many images decoded into ``data-loaded-images`` on ``<body>``, so
a headless browser can check that every image path works.

Example:
    >>> write_html_report(runs, summarise(runs), Path("report.html"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from tpru.diagnostics import InputError
from tpru.eval.plots import (
    length_benchmarks,
    length_chart,
    overall_chart,
    png_bytes,
    radar_chart,
    radars,
)
from tpru.eval.report import Run, Summary
from tpru.eval.report_formats import Table, tables
from tpru.eval.report_paper import Comparison
from tpru.files import check_output_file, write_text_atomic
from tpru.records import ResultLine
from tpru.schema import IMAGE_OPTION, IMAGE_PLACEHOLDER
from tpru.view import FILTERS_AND_LOAD_PROBE_JS, image_tag

log = logging.getLogger(__name__)

SIGNATURE = "<title>tpru evaluation report"
"""How the report begins its title: an existing file without it is not replaced."""

FILTERS = ("run", "benchmark", "task", "category", "scenario", "rule")
"""Fields the failed samples can be filtered by (``data-*`` attributes)."""

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
td, th { border: 1px solid #ccc; padding: 2px 8px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.notes { color: #555; font-size: 12px; }
.plots img { max-width: 48%; border: 1px solid #ddd; margin: 4px; vertical-align: top; }
#filters { position: sticky; top: 0; background: #fff; padding: .5rem 0;
           border-bottom: 1px solid #ccc; z-index: 1; }
#filters label { margin-right: 1rem; }
.failure { border: 1px solid #ccc; border-left: 6px solid #c33; border-radius: 6px;
           margin: 1rem 0; padding: .5rem 1rem; }
.failure h3 { font-size: 1rem; margin: .2rem 0; }
.tags span { display: inline-block; background: #eee; border-radius: 3px; padding: 0 6px;
             margin-right: 4px; font-size: 12px; }
.question { white-space: pre-wrap; margin: .5rem 0; }
img.thumb { height: 96px; vertical-align: middle; margin: 2px; border: 1px solid #999; }
ol.options { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 8px; }
ol.options li { border: 3px solid #ddd; border-radius: 6px; padding: 4px 8px; }
ol.options li.gold { border-color: #2a2; background: #efe; }
ol.options li.predicted { border-color: #c33; background: #fee; }
.letter { font-weight: bold; margin-right: 4px; }
.verdict strong.gold { color: #161; } .verdict strong.pred { color: #a11; }
.error { color: #a00; }
.missing { color: #a00; font-family: monospace; }
pre.response { white-space: pre-wrap; background: #f6f6f6; padding: 6px; font-size: 12px;
               max-height: 24em; overflow: auto; }
"""

# Filters hide failures; see FILTERS_AND_LOAD_PROBE_JS for the rest.
_JS = """
function applyFilters() {
  var selects = document.querySelectorAll("select[data-filter]");
  var shown = 0;
  document.querySelectorAll("article.failure").forEach(function (el) {
    var ok = true;
    selects.forEach(function (s) {
      if (s.value && el.getAttribute("data-" + s.dataset.filter) !== s.value) { ok = false; }
    });
    el.hidden = !ok;
    if (ok) { shown++; }
  });
  var counter = document.getElementById("shown-count");
  if (counter) { counter.textContent = shown + " shown"; }
}""" + FILTERS_AND_LOAD_PROBE_JS


def write_html_report(runs: Sequence[Run], summary: Summary, out: Path, *,
                      comparison: Comparison | None = None, embed: bool = False,
                      plots: bool = True, charts: Sequence[Path] | None = None,
                      max_failures: int | None = None) -> Path:
    """Write the HTML report of `runs` (summarised as `summary`) to `out`.

    Args:
        runs: the runs, in the order of `summary.runs`.
        summary: from `summarise(runs)`.
        out: the HTML file; its folder is created. An existing file is
            replaced only when it is a report tpru wrote, never a run's own
            file (`tpru.files.check_output_file`).
        comparison: published numbers to show beside ours (tables and charts).
        embed: inline item images as data URIs instead of linking them.
        plots: draw the charts (needs matplotlib) and embed them.
        charts: PNG files already drawn (by `write_plots`) to show instead,
            linked like the item images (inlined with `embed`).
        max_failures: most failed samples shown per run (default: all).

    Returns:
        `out`.
    """
    if len(runs) != len(summary.runs):
        raise ValueError("summary does not match the runs")
    out = Path(out)
    check_output_file(out, kind="report page", signature=SIGNATURE,
                      inputs=[f for run in runs for f in run.files], option="--html")
    out.parent.mkdir(parents=True, exist_ok=True)
    e = html.escape
    title = "tpru evaluation report: " + ", ".join(r.label for r in summary.runs)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(title)}</title><style>{_CSS}</style></head>", "<body>",
             f"<h1>{e(title)}</h1>",
             f"<p>Accuracy in %, {summary.confidence:.0%} bootstrap intervals "
             f"({summary.bootstrap} resamples, seed {summary.seed}). Items whose backend "
             "failed count as wrong and are counted under errors.</p>"]
    if charts is not None:
        parts.append(_charts_html([image_tag(Path(c), out, embed=embed, alt=Path(c).stem,
                                             css="plot") for c in charts]))
    elif plots:
        parts.append(_plots_html(summary, comparison))
    parts += [_table_html(table) for table in tables(summary, comparison)]
    failures = [(label, run, result) for label, run in
                zip((s.label for s in summary.runs), runs, strict=True)
                for result in _failures(run, max_failures)]
    total = sum(sum(not r.correct for r in run.results) for run in runs)
    parts += ["<h2>Failed samples</h2>",
              f"<p>Showing {len(failures)} of {total} failed samples.</p>",
              _filters_html(failures)]
    parts += [_failure_html(label, run, result, out, embed) for label, run, result in failures]
    parts += [f"<script>{_JS}</script>", "</body></html>", ""]
    write_text_atomic(out, "\n".join(parts))
    log.info("report: wrote %s (%d failed samples)", out, len(failures))
    return out


def _failures(run: Run, limit: int | None) -> list[ResultLine]:
    wrong = [r for r in run.results if not r.correct]
    return wrong if limit is None else wrong[:limit]


def _table_html(table: Table) -> str:
    e = html.escape
    rows = [f"<h2>{e(table.title)}</h2>", f'<table data-table="{e(table.key)}"><tr>'
            + "".join(f"<th>{e(h)}</th>" for h in table.header) + "</tr>"]
    for row in table.rows:
        rows.append("<tr>" + "".join(
            f'<td class="num">{e(c)}</td>' if _is_number(c) else f"<td>{e(c)}</td>"
            for c in row) + "</tr>")
    rows.append("</table>")
    if table.notes:
        rows.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in table.notes)
                    + "</ul>")
    return "\n".join(rows)


def _is_number(text: str) -> bool:
    return text == "n/a" or text.lstrip("+-").replace(".", "", 1).isdigit()


def _plots_html(summary: Summary, comparison: Comparison | None) -> str:
    """The charts as embedded PNGs, or a note saying why there are none."""
    try:
        figures = [("overall accuracy", overall_chart(summary, comparison))]
        figures += [(f"{bench}: accuracy by {b}",
                     radar_chart(summary, b, comparison, benchmark=bench))
                    for bench, b in radars(summary)]
        figures += [(f"{bench}: accuracy against sequence length", length_chart(summary, bench))
                    for bench in length_benchmarks(summary)]
    except InputError as err:  # matplotlib missing: the page is still useful without charts
        log.warning("report: no charts: %s", err)
        return f'<p class="notes">No charts: {html.escape(str(err))}</p>'
    return _charts_html([f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;'
                         f'base64,{base64.b64encode(png_bytes(figure)).decode("ascii")}">'
                         for alt, figure in figures])


def _charts_html(images: Sequence[str]) -> str:
    return '<h2>Charts</h2><div class="plots">' + "".join(images) + "</div>"


def _tag_values(result: ResultLine, label: str) -> dict[str, str]:
    return {"run": label, "benchmark": result.benchmark, "task": result.task,
            "category": result.category or "", "scenario": result.scenario or "",
            "rule": result.rule}


def _filters_html(failures: Sequence[tuple[str, Run, ResultLine]]) -> str:
    e = html.escape
    parts = ['<div id="filters">']
    for key in FILTERS:
        values = sorted({_tag_values(result, label)[key] for label, _, result in failures} - {""})
        if not values:
            continue
        options = "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)
        parts.append(f'<label>{key} <select data-filter="{key}">'
                     f'<option value="">all</option>{options}</select></label>')
    parts.append('<span id="shown-count"></span></div>')
    return "".join(parts)


def _failure_html(label: str, run: Run, result: ResultLine, out: Path, embed: bool) -> str:
    e = html.escape
    tags = _tag_values(result, label)
    attributes = " ".join(f'data-{k}="{e(v)}"' for k, v in tags.items())
    shown = [(k, v) for k, v in tags.items() if v]
    if result.negative is not None:
        shown.append(("sample", "negative" if result.negative else "positive"))
    if result.answerable is not None:
        shown.append(("answerable", "yes" if result.answerable else "no"))
    if result.counterpart is not None:
        shown.append(("twin", result.counterpart))
    lines = [f'<article class="failure" {attributes}>',
             f"<h3><code>{e(result.id)}</code></h3>",
             '<p class="tags">' + "".join(f"<span>{e(k)}: {e(v)}</span>" for k, v in shown)
             + "</p>"]
    lines += _question_html(run, result, out, embed)
    prediction = result.prediction if result.prediction is not None else "none"
    lines.append(f'<p class="verdict">Answer: <strong class="gold">{e(result.answer)}</strong>'
                 f' &middot; predicted: <strong class="pred">{e(prediction)}</strong>'
                 f" (rule: <code>{e(result.rule)}</code>)</p>")
    if result.error:
        lines.append(f'<p class="error">Backend error: {e(result.error)}</p>')
    lines.append(f'<pre class="response">{e(result.response)}</pre></article>')
    return "\n".join(lines)


def _question_html(run: Run, result: ResultLine, out: Path, embed: bool) -> list[str]:
    """The question with its images inline, then the options; all images if they don't fit."""
    e = html.escape
    chunks = result.question.split(IMAGE_PLACEHOLDER)
    n_question = len(chunks) - 1
    n_options = sum(o == IMAGE_OPTION for o in result.options or ())
    images = [_img(run, path, out, embed, f"image {i + 1}") for i, path in
              enumerate(result.images)]
    if n_question + n_options != len(images):  # cannot place them: the text, then all images
        log.warning("report: %s: %d images for %d placeholders", result.id, len(images),
                    n_question + n_options)
        lines = [f'<div class="question">{e(result.question)}</div>']
        if images:
            lines.append('<div class="images">' + "".join(images) + "</div>")
        return [*lines, *_options_html(result, iter([]))]
    question = [e(chunks[0])]
    for image, text in zip(images, chunks[1:], strict=False):
        question += [image, e(text)]
    return [f'<div class="question">{"".join(question)}</div>',
            *_options_html(result, iter(images[n_question:]))]


def _options_html(result: ResultLine, images: Iterator[str]) -> list[str]:
    """The options with their letters; the gold outlined green, a wrong prediction red."""
    if result.options is None:
        return []
    e = html.escape
    lines = ['<ol class="options">']
    for index, option in enumerate(result.options):
        letter = chr(ord("A") + index)
        classes = ["option"] + ["gold"] * (letter == result.answer) + \
            ["predicted"] * (letter == result.prediction and letter != result.answer)
        body = next(images, "") if option == IMAGE_OPTION else f"<span>{e(option)}</span>"
        lines.append(f'<li class="{" ".join(classes)}" data-letter="{letter}">'
                     f'<span class="letter">{letter}.</span>{body}</li>')
    lines.append("</ol>")
    return lines


def _img(run: Run, image: str, out: Path, embed: bool, alt: str) -> str:
    """An ``<img>`` for one item image (as the run names it)."""
    return image_tag(run.image_path(image), out, embed=embed, alt=alt, title=image)


