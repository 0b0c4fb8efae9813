"""The HTML contact sheet: its markup, and the page as headless Chromium renders it."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from helpers import make_dataset
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.schema import NONE_OPTION, Sample
from tpru.view import write_contact_sheet

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} not found; install it with scripts/setup-system.sh browser")


class _Page(HTMLParser):
    """Collects what the tests check: articles, images, options and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.articles: dict[str, dict[str, str | None]] = {}
        self.images: list[str] = []
        self.gold: dict[str, list[str]] = {}
        self.options: dict[str, list[str]] = {}
        self.text: list[str] = []
        self._article: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "article":
            self._article = (a.get("id") or "").removeprefix("sample-")
            self.articles[self._article] = a
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "li" and self._article is not None:
            letter = a.get("data-letter") or ""
            self.options.setdefault(self._article, []).append(letter)
            if "gold" in (a.get("class") or "").split():
                self.gold.setdefault(self._article, []).append(letter)

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self._article = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(markup: str) -> _Page:
    page = _Page()
    page.feed(markup)
    return page


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return Dataset.open(make_dataset(tmp_path / "ds"))


@pytest.fixture
def sheet(dataset: Dataset, tmp_path: Path) -> Path:
    # In a sibling folder, so that image paths must climb out with "..".
    return write_contact_sheet(dataset, tmp_path / "view" / "sheet.html")


def _samples(dataset: Dataset) -> list[Sample]:
    return list(dataset.samples())


def _check_page(page: _Page, samples: list[Sample], html_file: Path) -> None:
    """Every sample, option, gold answer and image of `samples` is on `page`."""
    text = "".join(page.text)
    assert set(page.articles) == {s.id for s in samples}
    for sample in samples:
        article = page.articles[sample.id]
        assert article["data-task"] == sample.task
        assert article["data-scenario"] == sample.scenario
        assert article["data-negative"] == ("negative" if sample.negative else "positive")
        if sample.negative:
            assert article["data-negative-kind"] == sample.meta["negative_kind"]
        assert f"Answer: {sample.answer}" in text
        if sample.options is None:
            assert sample.id not in page.options
            continue
        assert page.options[sample.id] == [chr(65 + i) for i in range(len(sample.options))]
        assert page.gold[sample.id] == [sample.answer]
        for option in sample.options:
            if option != "<image>":
                assert option in text
    assert NONE_OPTION in text
    assert len(page.images) == sum(len(s.images) for s in samples)
    for src in page.images:
        assert not src.startswith(("/", "file:", "http")), src
        assert (html_file.parent / unquote(src)).is_file(), src


def test_page_shows_every_sample(dataset: Dataset, sheet: Path) -> None:
    markup = sheet.read_text(encoding="utf-8")
    assert markup.startswith("<!DOCTYPE html>")
    _check_page(_parse(markup), _samples(dataset), sheet)
    assert "Showing 7 of 7 samples" in markup


def test_question_images_are_inline_in_order(dataset: Dataset, sheet: Path) -> None:
    page = _parse(sheet.read_text(encoding="utf-8"))
    expected = [image for sample in _samples(dataset) for image in sample.images]
    resolved = [(sheet.parent / unquote(src)).resolve() for src in page.images]
    assert resolved == [dataset.image_path(image).resolve() for image in expected]


def test_text_is_escaped(sheet: Path) -> None:
    markup = sheet.read_text(encoding="utf-8")
    assert "a red tower &amp; a &lt;blue&gt; bridge" in markup
    assert "<blue>" not in markup


def test_limit_per_split_and_seed_are_deterministic(dataset: Dataset, tmp_path: Path) -> None:
    first = write_contact_sheet(dataset, tmp_path / "a.html", limit_per_split=2, seed=3)
    second = write_contact_sheet(dataset, tmp_path / "b.html", limit_per_split=2, seed=3)
    assert first.read_bytes() == second.read_bytes()
    page = _parse(first.read_text(encoding="utf-8"))
    splits = [a["data-split"] for a in page.articles.values()]
    assert splits.count("train") == 2 and splits.count("test") == 2
    order = [s.id for s in _samples(dataset)]
    shown = list(page.articles)
    assert shown == sorted(shown, key=order.index)  # file order is kept


def test_splits_argument(dataset: Dataset, tmp_path: Path) -> None:
    out = write_contact_sheet(dataset, tmp_path / "test.html", splits=["test"])
    page = _parse(out.read_text(encoding="utf-8"))
    assert {a["data-split"] for a in page.articles.values()} == {"test"}


def test_embed_inlines_every_image(dataset: Dataset, tmp_path: Path) -> None:
    out = write_contact_sheet(dataset, tmp_path / "embedded.html", embed=True)
    page = _parse(out.read_text(encoding="utf-8"))
    assert page.images and all(src.startswith("data:image/jpeg;base64,")
                               for src in page.images)


def test_missing_image_is_reported_not_linked(dataset: Dataset, tmp_path: Path) -> None:
    first = next(dataset.samples("train"))
    dataset.image_path(first.images[0]).unlink()
    out = write_contact_sheet(dataset, tmp_path / "view.html")
    markup = out.read_text(encoding="utf-8")
    assert f"[missing image {first.images[0]}]" in markup
    for src in _parse(markup).images:
        assert (out.parent / unquote(src)).is_file()


def _chromium(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium on `page` with a fresh profile, offline-quiet flags."""
    profile.mkdir()
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *flags, page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


@pytest.mark.browser
@needs_chromium
def test_browser_renders_every_sample_and_loads_every_image(
        dataset: Dataset, sheet: Path, tmp_path: Path) -> None:
    result = _chromium(sheet, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom")
    page = _parse(result.stdout.decode("utf-8"))
    _check_page(page, _samples(dataset), sheet)
    assert page.body.get("data-loaded-images") == str(len(page.images)), page.body
    assert "7 shown" in "".join(page.text)  # the filter script ran


@pytest.mark.browser
@needs_chromium
def test_browser_loads_embedded_images(dataset: Dataset, tmp_path: Path) -> None:
    out = write_contact_sheet(dataset, tmp_path / "alone" / "embedded.html", embed=True)
    result = _chromium(out, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom")
    page = _parse(result.stdout.decode("utf-8"))
    assert len(page.images) == 36
    assert page.body.get("data-loaded-images") == "36", page.body


@pytest.mark.browser
@needs_chromium
def test_browser_screenshot_is_not_blank(sheet: Path, tmp_path: Path) -> None:
    png = tmp_path / "sheet.png"
    _chromium(sheet, tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,2000")
    with Image.open(png) as image:
        assert image.size == (1200, 2000)
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert pixels.var() > 0
    # Not just text on white: the thumbnails put saturated colour on the page.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 60).mean() > 0.01


def test_page_names_the_audit_and_links_its_report(dataset: Dataset, tmp_path: Path) -> None:
    from tpru.eval.audit import run_audit
    from tpru.eval.audit_config import AuditConfig

    before = (tmp_path / "view" / "before.html")
    assert "Audit with" not in write_contact_sheet(dataset, before).read_text()
    run_audit(dataset.root, AuditConfig(model="random", max_lift=1.0, min_samples=1),
              dataset.root / "audit", show_progress=False)
    page = write_contact_sheet(dataset, tmp_path / "view" / "after.html").read_text()
    assert "Audit with random: passed (max lift 100.0 points); blind " in page
    assert 'href="../ds/audit/audit.md"' in page
    assert (tmp_path / "view" / "../ds/audit/audit.md").is_file()


def test_view_never_writes_over_a_datasets_own_files(tmp_path: Path) -> None:
    dataset = Dataset.open(make_dataset(tmp_path / "ds"))
    samples = (dataset.root / "test.jsonl").read_text()
    for target in (dataset.root / "test.jsonl", dataset.root / "images" / "page.html"):
        with pytest.raises(InputError, match="lies inside .*choose another --out"):
            write_contact_sheet(dataset, target)
    assert (dataset.root / "test.jsonl").read_text() == samples
    assert not (dataset.root / "images" / "page.html").exists()
    page = write_contact_sheet(dataset, dataset.root / "view.html")  # its own page: allowed
    assert write_contact_sheet(dataset, page) == page  # and replaced again


def test_view_replaces_only_a_page_tpru_wrote(tmp_path: Path) -> None:
    dataset = Dataset.open(make_dataset(tmp_path / "ds"))
    mine = tmp_path / "keep.html"
    mine.write_text("<html><title>my notes</title></html>")
    with pytest.raises(InputError, match="is not a contact sheet tpru wrote"):
        write_contact_sheet(dataset, mine)
    assert mine.read_text() == "<html><title>my notes</title></html>"
    with pytest.raises(InputError, match="is a folder"):
        write_contact_sheet(dataset, tmp_path)
    page = write_contact_sheet(dataset, tmp_path / "page.html")
    write_contact_sheet(dataset, page)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "keep.html", "page.html"]


def test_page_shows_the_builds_shortcut_probes(tmp_path: Path) -> None:
    from tpru.builder.config import BuildConfig
    from tpru.builder.pipeline import build
    from tpru.config import load
    from tpru.sources.synthetic import write_synthetic_episodes

    write_synthetic_episodes(tmp_path / "episodes", episodes=3, frames=5, seed=0,
                             size=(96, 72))
    config = load(BuildConfig, {"sources": [f"frames:{tmp_path / 'episodes'}"],
                                "out": str(tmp_path / "ds")})
    built = Dataset.open(build(config, show_progress=False).path)
    markup = write_contact_sheet(built, tmp_path / "view.html").read_text(encoding="utf-8")
    assert "Shortcut probes (rules that never see an image): none above chance" in markup
    assert "<td>always_none</td>" in markup and "<td>longest_option</td>" in markup
