"""A static HTML contact sheet of a dataset: what ``tpru view`` writes.

One self-contained file a person opens in a browser to check what the builder
made: each sample's question with its images inline where the ``<image>``
placeholders are, the options with their letters (image options as
thumbnails), the gold answer outlined in green, and filters by split, task,
scenario and negative kind. Images are linked by paths relative to the HTML
file, so the page works wherever the dataset and the page move together; with
``embed=True`` they are inlined as data URIs and the page stands alone.

No template engine and no external resource: the markup is built with the
standard library, and every text goes through `html.escape`.

Example:
    >>> write_contact_sheet(Dataset.open("out/demo"), Path("out/demo.html"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import json
import logging
import mimetypes
import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tpru.builder.probes import probe_rows, verdict
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.files import check_output_file, write_text_atomic
from tpru.records import AuditRecord
from tpru.schema import IMAGE_OPTION, IMAGE_PLACEHOLDER, NONE_OPTION, Sample, option_letter

log = logging.getLogger(__name__)

VIEW_FILE = "view.html"
"""The contact sheet's name inside a dataset folder (``tpru view``'s default)."""

SIGNATURE = "<title>tpru: "
"""How a contact sheet begins its title: an existing file without it is not replaced."""

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
header table { border-collapse: collapse; margin: .5rem 0; }
header td, header th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
header th:first-child, header td:first-child, header td.name { text-align: left; }
#filters { position: sticky; top: 0; background: #fff; padding: .5rem 0;
           border-bottom: 1px solid #ccc; z-index: 1; }
#filters label { margin-right: 1rem; }
.sample { border: 1px solid #ccc; border-radius: 6px; margin: 1rem 0; padding: .5rem 1rem; }
.sample h2 { font-size: 1rem; margin: .2rem 0; }
.tags span { display: inline-block; background: #eee; border-radius: 3px;
             padding: 0 6px; margin-right: 4px; font-size: 12px; }
.tags .neg { background: #fdd; }
.question { white-space: pre-wrap; margin: .5rem 0; }
img.thumb { height: 96px; vertical-align: middle; margin: 2px; border: 1px solid #999; }
ol.options { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 8px; }
ol.options li { border: 3px solid #ddd; border-radius: 6px; padding: 4px 8px; }
ol.options li.gold { border-color: #2a2; background: #efe; }
.letter { font-weight: bold; margin-right: 4px; }
.none-option { font-style: italic; }
.answer strong { color: #161; }
.missing { color: #a00; font-family: monospace; }
details pre { font-size: 12px; background: #f6f6f6; padding: 4px; }
"""

FILTERS_AND_LOAD_PROBE_JS = """
document.querySelectorAll("select[data-filter]").forEach(function (s) {
  s.addEventListener("change", applyFilters);
});
applyFilters();
window.addEventListener("load", function () {
  var loaded = 0, images = document.images;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
  }
  document.body.setAttribute("data-loaded-images", String(loaded));
  document.body.setAttribute("data-total-images", String(images.length));
});
"""
"""Runs the page's ``applyFilters()`` on every change of a ``select[data-filter]`` and
once at load, then records on ``<body>`` how many images decoded
(``data-loaded-images`` of ``data-total-images``), so a headless browser (and the tests)
can tell that every image path works. Shared by the viewer and the evaluation report."""

# Filters hide samples (a negative-kind value also matches the "negative" filter).
_JS = """
function applyFilters() {
  var selects = document.querySelectorAll("select[data-filter]");
  var shown = 0;
  document.querySelectorAll("article.sample").forEach(function (el) {
    var ok = true;
    selects.forEach(function (s) {
      var v = s.value, d = el.dataset;
      if (v && d[s.dataset.filter] !== v && !(s.dataset.filter === "negative" &&
          d.negativeKind === v)) { ok = false; }
    });
    el.hidden = !ok;
    if (ok) { shown++; }
  });
  document.getElementById("shown-count").textContent = shown + " shown";
}""" + FILTERS_AND_LOAD_PROBE_JS


def write_contact_sheet(dataset: Dataset, out: Path, *, limit_per_split: int = 50,
                        seed: int = 0, splits: Sequence[str] | None = None,
                        embed: bool = False) -> Path:
    """Write an HTML page showing up to `limit_per_split` samples of each split.

    Samples are a seeded uniform pick (reservoir sampling over one streaming
    pass, so the dataset is never held in memory), shown in file order; the
    same dataset and seed give the same page.

    Args:
        dataset: the dataset to show.
        out: path of the HTML file; its folder is created. An existing file
            is replaced only when it is a page tpru wrote, and no file but
            `VIEW_FILE` is written inside a dataset (`tpru.files.check_output_file`).
        limit_per_split: most samples shown per split.
        seed: seed of the pick.
        splits: splits to show (default: all, in build order).
        embed: inline the images as base64 data URIs instead of linking them.

    Returns:
        `out`.
    """
    out = Path(out)
    check_output_file(out, kind="contact sheet", signature=SIGNATURE,
                      owned_names=[VIEW_FILE])
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = list(splits) if splits is not None else dataset.splits
    picked: dict[str, list[Sample]] = {}
    totals: dict[str, Counter[str]] = {"split": Counter(), "task": Counter(),
                                       "scenario": Counter(), "negative": Counter()}
    for split in names:
        picked[split] = _pick(dataset.samples(split), limit_per_split, rng, totals, split)
    page = _page(dataset, out, picked, totals, embed)
    write_text_atomic(out, page)
    shown = sum(len(s) for s in picked.values())
    log.info("view: wrote %s (%d of %d samples)", out, shown, sum(totals["split"].values()))
    return out


def _pick(samples: Iterable[Sample], limit: int, rng: random.Random,
          totals: dict[str, Counter[str]], split: str) -> list[Sample]:
    """Reservoir-sample `limit` samples, counting all of them into `totals`."""
    reservoir: list[tuple[int, Sample]] = []
    for index, sample in enumerate(samples):
        totals["split"][split] += 1
        totals["task"][sample.task] += 1
        totals["scenario"][sample.scenario] += 1
        totals["negative"][_negative_label(sample)] += 1
        if len(reservoir) < limit:
            reservoir.append((index, sample))
        else:
            slot = rng.randint(0, index)
            if slot < limit:
                reservoir[slot] = (index, sample)
    return [sample for _, sample in sorted(reservoir, key=lambda pair: pair[0])]


def _negative_label(sample: Sample) -> str:
    if not sample.negative:
        return "positive"
    return str(sample.meta.get("negative_kind") or "unknown")


def _page(dataset: Dataset, out: Path, picked: dict[str, list[Sample]],
          totals: dict[str, Counter[str]], embed: bool) -> str:
    e = html.escape
    title = f"tpru: {dataset.root.name}"
    info = dataset.info
    shown = [(split, s) for split, samples in picked.items() for s in samples]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head>",
        "<body>",
        f"<header><h1>{e(title)}</h1>",
        f"<p>Dataset <code>{e(str(dataset.root))}</code>, schema version "
        f"{e(str(info.SCHEMA_VERSION))}, seed {e(str(info.seed))}."
        f" Showing {len(shown)} of {sum(totals['split'].values())} samples.</p>",
        *_build_notes(dataset, out),
        _summary(picked, totals),
        _filters(totals),
        "</header><main>",
    ]
    parts += [_sample_html(dataset, out, split, sample, embed) for split, sample in shown]
    parts += ["</main>", f"<script>{_JS}</script>", "</body></html>", ""]
    return "\n".join(parts)


def _build_notes(dataset: Dataset, out: Path) -> list[str]:
    """What the model stages decided (build.json) and the audit's verdict (audit/audit.json),
    when the dataset has them."""
    e = html.escape
    notes = []
    info = dataset.info
    stages = info.model_stages
    if stages is not None:
        for name in ("judge", "describe"):
            counts = stages.get(name)
            if isinstance(counts, dict):
                text = ", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing"
                notes.append(f"<p>Model stage {e(name)} ({e(str(stages.get('model')))}): "
                             f"{e(text)}.</p>")
    if info.probes:
        notes.append(_probes_html(dict(info.probes)))
    audit_file = dataset.root / "audit" / "audit.json"
    if not audit_file.is_file():
        return notes
    try:
        audit = AuditRecord.load(audit_file)
    except InputError as err:
        log.warning("view: the audit is not shown: %s", err)
        return notes
    verdict = "passed" if audit.passed else "failed"
    check = (f"{verdict} (max lift {100 * audit.threshold:.1f} points)"
             if audit.threshold is not None else "reported, no threshold")
    lifts = "; ".join(f"{e(g.control)} {100 * g.accuracy:.1f}% (chance {100 * g.chance:.1f}%)"
                      for g in audit.groups if g.by == "overall")
    report = _relative_url(audit_file.with_name("audit.md"), out.parent)
    notes.append(f"<p>Audit with {e(audit.model)}: {e(check)}; {lifts}. "
                 f'<a href="{e(report)}">audit.md</a></p>')
    return notes


def _probes_html(report: dict[str, Any]) -> str:
    """The build's shortcut probes (build.json ``probes``) as a table, leaks first."""
    e = html.escape
    leaks = report.get("leaks") or []
    summary = (f"<strong>{e(', '.join(leaks))} above chance</strong>" if leaks
               else "none above chance")
    head = f"<p>Shortcut probes (rules that never see an image): {summary}.</p>"
    rows = []
    for task, name, r in probe_rows(report):
        rows.append(f"<tr><td>{e(task)}</td><td>{e(name)}</td><td>{r['n']}</td>"
                    f"<td>{100 * r['accuracy']:.1f}%</td>"
                    f"<td>{100 * r['low']:.1f}-{100 * r['high']:.1f}%</td>"
                    f"<td>{100 * r['chance']:.1f}%</td><td>{e(verdict(r))}</td></tr>")
    return (head + '<details><summary>probe table</summary><table class="probes">'
            "<tr><th>task</th><th>probe</th><th>n</th><th>accuracy</th><th>95% interval</th>"
            "<th>chance</th><th>verdict</th></tr>" + "".join(rows) + "</table></details>")


def _summary(picked: dict[str, list[Sample]], totals: dict[str, Counter[str]]) -> str:
    e = html.escape
    rows = ["<table class=\"summary\"><tr><th>split</th><th>shown</th><th>samples</th></tr>"]
    for split, samples in picked.items():
        rows.append(f"<tr><td>{e(split)}</td><td>{len(samples)}</td>"
                    f"<td>{totals['split'][split]}</td></tr>")
    rows.append("</table><table class=\"summary\"><tr><th>count by</th><th>value</th>"
                "<th>samples</th></tr>")
    for key in ("task", "scenario", "negative"):
        for value, count in sorted(totals[key].items()):
            rows.append(f'<tr><td>{key}</td><td class="name">{e(value)}</td><td>{count}</td></tr>')
    rows.append("</table>")
    return "\n".join(rows)


def _filters(totals: dict[str, Counter[str]]) -> str:
    e = html.escape
    parts = ['<div id="filters">']
    for key in ("split", "task", "scenario", "negative"):
        values = sorted(totals[key])
        if key == "negative" and set(values) - {"positive"}:
            values = ["negative", *values]  # any kind, then each kind
        options = "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)
        parts.append(f'<label>{key} <select data-filter="{key}">'
                     f'<option value="">all</option>{options}</select></label>')
    parts.append('<span id="shown-count"></span></div>')
    return "".join(parts)


def _sample_html(dataset: Dataset, out: Path, split: str, sample: Sample, embed: bool) -> str:
    e = html.escape
    kind = _negative_label(sample)
    question_images = list(sample.question_images)
    option_images = iter(sample.option_images)
    chunks = sample.question.split(IMAGE_PLACEHOLDER)
    question = [e(chunks[0])]
    for number, (image, text) in enumerate(zip(question_images, chunks[1:], strict=True),
                                               start=1):
        question.append(_img(dataset, out, image, f"question image {number}", embed))
        question.append(e(text))
    lines = [
        f'<article class="sample" id="sample-{e(sample.id)}" data-split="{e(split)}" '
        f'data-task="{e(sample.task)}" data-scenario="{e(sample.scenario)}" '
        f'data-negative="{"negative" if sample.negative else "positive"}" '
        f'data-negative-kind="{e(kind)}">',
        f"<h2><code>{e(sample.id)}</code></h2>",
        '<p class="tags">' + "".join(
            f'<span{cls}>{e(label)}: {e(value)}</span>' for label, value, cls in (
                ("split", split, ""), ("task", sample.task, ""),
                ("scenario", sample.scenario, ""), ("episode", sample.episode_id, ""),
                ("negative", kind, ' class="neg"' if sample.negative else ""))) + "</p>",
        f'<div class="question">{"".join(question)}</div>',
    ]
    if sample.options is not None:
        lines.append('<ol class="options">')
        for index, option in enumerate(sample.options):
            letter = option_letter(index)
            gold = letter == sample.answer
            if option == IMAGE_OPTION:
                body = _img(dataset, out, next(option_images), f"option {letter}", embed)
            else:
                cls = ' class="none-option"' if option == NONE_OPTION else ""
                body = f"<span{cls}>{e(option)}</span>"
            lines.append(f'<li class="option{" gold" if gold else ""}" data-letter="{letter}">'
                         f'<span class="letter">{letter}.</span>{body}</li>')
        lines.append("</ol>")
    lines.append(f'<p class="answer">Answer: <strong>{e(sample.answer)}</strong></p>')
    meta = json.dumps(dict(sample.meta), ensure_ascii=False, indent=1, sort_keys=True)
    lines.append(f"<details><summary>meta</summary><pre>{e(meta)}</pre></details></article>")
    return "\n".join(lines)


def _img(dataset: Dataset, out: Path, relative: str, alt: str, embed: bool) -> str:
    """An ``<img>`` for one dataset image, or a visible note when the file is missing."""
    return image_tag(dataset.image_path(relative), out, embed=embed, alt=alt, title=relative)


def image_tag(path: Path, out: Path, *, embed: bool, alt: str, css: str = "thumb",
              title: str | None = None) -> str:
    """An ``<img>`` of a file for the page `out`: linked by a relative URL or inlined as a
    data URI, or a visible note where the file is missing. Shared with the eval report."""
    e = html.escape
    title = title if title is not None else str(path)
    if not path.is_file():
        log.warning("%s: %s: image not found", out.name, path)
        return f'<span class="missing">[missing image {e(title)}]</span>'
    if embed:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        src = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    else:
        src = _relative_url(path, out.parent)
    return f'<img class="{css}" src="{e(src)}" alt="{e(alt)}" title="{e(title)}">'


def _relative_url(path: Path, start: Path) -> str:
    """URL of `path` relative to folder `start`, or a file URI where none exists."""
    try:
        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(start))
    except ValueError:  # another drive on Windows: no relative path
        return Path(os.path.abspath(path)).as_uri()
    return quote(relative.replace(os.sep, "/"))
