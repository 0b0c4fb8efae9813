"""The one lazy loader of the name tables: when an import failure is the user's, when tpru's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import tpru
from tpru import sources
from tpru.diagnostics import InputError, Skips
from tpru.registry import check_options, install_hint, load


@pytest.fixture
def tpru_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a module that imports as ``tpru.<name>`` (from a temporary folder)."""
    monkeypatch.setattr(tpru, "__path__", [*tpru.__path__, str(tmp_path)])

    def write(name: str, body: str) -> str:
        (tmp_path / f"{name}.py").write_text(body, encoding="utf-8")
        monkeypatch.delitem(sys.modules, f"tpru.{name}", raising=False)
        return f"tpru.{name}"

    return write


def test_loads_the_attribute_or_a_bare_module() -> None:
    assert load("json:dumps", what="x")([1]) == "[1]"
    assert load("json", what="x").__name__ == "json"


def test_a_missing_third_party_module_gives_the_install_hint() -> None:
    with pytest.raises(InputError) as err:
        load("no_such_package_for_tpru:thing", what="source kind 'x'", extra="data")
    assert str(err.value) == ("source kind 'x' needs no_such_package_for_tpru; "
                              "install it with: pip install 'tpru[data]'")


def test_a_tpru_module_missing_its_dependency_names_the_dependency(tpru_module: Any) -> None:
    module = tpru_module("_needs_a_package", "import no_such_package_for_tpru\n")
    with pytest.raises(InputError, match=r"^backend 'x' needs no_such_package_for_tpru; "
                                         r"install it with: pip install 'tpru\[eval\]'$"):
        load(f"{module}:Backend", what="backend 'x'", extra="eval")


def test_no_extra_no_hint_and_needs_says_what_in_words() -> None:
    with pytest.raises(InputError, match=r"^embedding 'm:f' needs no_such_package_for_tpru$"):
        load("no_such_package_for_tpru:f", what="embedding 'm:f'")
    with pytest.raises(InputError, match=r"^simulator 's' needs a GL library "
                                         r"\(no_such_package_for_tpru is missing\); install"):
        load("no_such_package_for_tpru:f", what="simulator 's'", extra="sim",
             needs="a GL library")


@pytest.mark.parametrize("body", [
    "from tpru.diagnostics import NoSuchName\n",        # a bad import in tpru's own code
    "import tpru.no_such_module_of_tpru\n",             # a tpru module that does not exist
    "raise ImportError('broken on purpose')\n",         # an ImportError naming no module
])
def test_an_import_error_inside_tpru_is_a_bug_not_a_missing_extra(tpru_module: Any,
                                                                  body: str) -> None:
    module = tpru_module("_broken", body)
    with pytest.raises(ImportError) as err:
        load(f"{module}:Thing", what="source kind 'x'", extra="data")
    assert not isinstance(err.value, InputError)
    assert "install" not in str(err.value)


def test_open_source_reports_a_broken_tpru_module_with_its_real_message(
        tpru_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tpru_module("_broken_source", "from tpru.diagnostics import NoSuchName\n")
    monkeypatch.setitem(sources.SOURCES, "broken", f"{module}:Source")
    monkeypatch.setitem(sources.EXTRAS, "broken", "data")
    with pytest.raises(ImportError, match="NoSuchName") as err:
        sources.open_source("broken:somewhere", skips=Skips())
    assert "tpru[data]" not in str(err.value)


def test_a_missing_attribute_is_a_one_line_error() -> None:
    with pytest.raises(InputError, match=r"^embedding 'json:nope': json has no attribute 'nope'$"):
        load("json:nope", what="embedding 'json:nope'")


def test_install_hint_covers_imports_made_later() -> None:
    message = (r"^tpru train needs no_such_package_for_tpru; install it with: "
               r"pip install 'tpru\[train\]'$")
    with pytest.raises(InputError, match=message), install_hint("tpru train", extra="train"):
        import no_such_package_for_tpru  # noqa: F401


def _source(path: str, *, skips: Skips, fps: float = 1.0, mode: str = "time") -> None:
    """A source factory's shape: PATH and skips come from the caller, the rest are options."""


def test_unknown_options_are_refused_with_the_accepted_list() -> None:
    check_options(_source, {"fps": 2.0, "mode": "keyframes"}, what="source kind 'v'",
                  leading=1, fixed=["skips"])
    with pytest.raises(InputError) as err:
        check_options(_source, {"fsp": 2.0, "path": "x", "skips": None},
                      what="source kind 'v'", leading=1, fixed=["skips"])
    assert str(err.value) == ("source kind 'v' has no option 'fsp', 'path', 'skips' "
                              "(options: fps, mode)")


def test_a_callable_without_options_says_none() -> None:
    def bare(name: str) -> None: ...

    with pytest.raises(InputError, match=r"^backend 'b' has no option 'seed' \(options: none\)$"):
        check_options(bare, {"seed": 1}, what="backend 'b'", leading=1)


def test_a_callable_taking_kwargs_accepts_any_option() -> None:
    def anything(path: str, **options: Any) -> None: ...

    class Wrapper:
        def __init__(self, name: str, *, seed: int = 0, **options: Any) -> None: ...

    check_options(anything, {"whatever": 1, "path": 2}, what="x", leading=1)
    check_options(Wrapper, {"colour": "red"}, what="x", leading=1)


def test_open_source_refuses_an_unknown_option_naming_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^source kind 'gui-odyssey' has no option "
                                         r"'no_such_option' \(options: split_file, split\)$"):
        sources.open_source(f"gui-odyssey:{tmp_path}", skips=Skips(),
                            options={"gui-odyssey": {"no_such_option": 1}})
