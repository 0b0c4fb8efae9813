"""Records: round trips, validation on read with file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpru.schema import (
    NONE_OPTION,
    SCHEMA_VERSION,
    Episode,
    RecordError,
    Sample,
    read_jsonl,
    write_jsonl,
)


def sample(**changes: object) -> Sample:
    base: dict[str, object] = dict(
        id="s1", task="next_frame", scenario="robot", episode_id="e1",
        question="The 1st step is <image>, followed by step 2 <image>. Select the correct "
                 "option of step 3, which can reach the final step 4 <image>.",
        options=("<image>", "<image>", NONE_OPTION, "<image>", "<image>"), answer="B",
        images=tuple(f"images/{i}.jpg" for i in range(7)), negative=False)
    base.update(changes)
    return Sample(**base)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    episode = Episode("e1", "robot", "frames", ("a.jpg", "b.jpg"), ("pick", "place"), "moving")
    path = tmp_path / "x.jsonl"
    write_jsonl(path, [sample(), sample(id="s2", answer="C", negative=True)])
    assert [s.id for s in read_jsonl(path, Sample)] == ["s1", "s2"]
    assert Episode.from_dict(json.loads(json.dumps(episode.to_dict()))) == episode
    assert json.loads(path.read_text().splitlines()[0])["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize(("changes", "field"), [
    ({"task": "sorting"}, "task"),
    ({"images": ("a.jpg",)}, "images"),
    ({"answer": "b"}, "answer"),
    ({"answer": "F"}, "answer"),
    ({"answer": "C"}, "negative"),  # gold is the None option but negative is False
])
def test_invalid_samples(changes: dict[str, object], field: str) -> None:
    with pytest.raises(RecordError) as err:
        sample(**changes)
    assert err.value.field_name == field


def test_read_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(sample().to_dict())
    wrong_type = dict(sample().to_dict(), images="images/0.jpg")
    path.write_text(good + "\n\n" + json.dumps(wrong_type) + "\n")
    with pytest.raises(RecordError) as err:
        list(read_jsonl(path, Sample))
    assert err.value.line == 3 and err.value.field_name == "images"
    assert str(err.value).startswith(f"{path}, line 3, field 'images'")
    path.write_text(good + "\n{not json\n")
    with pytest.raises(RecordError, match="line 2: not valid JSON"):
        list(read_jsonl(path, Sample))
    newer = dict(sample().to_dict(), schema_version=SCHEMA_VERSION + 1)
    path.write_text(json.dumps(newer) + "\n")
    with pytest.raises(RecordError, match="schema version"):
        list(read_jsonl(path, Sample))


@given(st.dictionaries(st.sampled_from(["id", "scenario", "frames", "steps", "description",
                                        "meta", "source"]),
                       st.one_of(st.none(), st.integers(), st.text(), st.booleans(),
                                 st.lists(st.text(max_size=3), max_size=3),
                                 st.lists(st.integers(), max_size=2))))
def test_episode_from_anything_is_valid_or_a_record_error(data: dict[str, object]) -> None:
    try:
        episode = Episode.from_dict(data)
    except RecordError:
        return
    assert isinstance(episode.id, str) and all(isinstance(f, str) for f in episode.frames)
