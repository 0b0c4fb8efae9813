"""Check `tpru.sources.text.process_phrase` on real instructions (not part of the test suite).

    .venv/bin/python scripts/check_instructions.py PATH [PATH ...] [--show N]

PATH is a VLN-CE split file (``val_seen.json.gz``: R2R or RxR episodes with
``instruction.instruction_text``), a GUI Odyssey annotation (``*.json`` with
``task_info.instruction``) or a folder of those. Each instruction becomes a
phrase and is checked, by rules independent of how the phrase was made:

- no raw imperative: no verb that opens a sentence somewhere in the input
  (the instructions' own imperative verbs: "walk", "turn", "stop", ...) stands
  at the head of a clause of the phrase (its start, or after a comma, "and",
  "or", "then");
- articles agree: no "a" before a vowel sound, no "an" before a consonant
  sound (inflect's reading);
- not all capitals, no final full stop, and short: at most 2x MAX_WORDS words
  (longer ones are listed for review, only a clause that long fails).

Exits 1 when any phrase fails a check, listing the failures.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

from lemminflect import getAllLemmas

from tpru.sources.text import MAX_WORDS, indefinite_article, is_base_verb, process_phrase

_CLAUSE_HEAD = re.compile(r"(?:^|[,;:]\s+|\b(?:and|or|then)\s+)"
                          r"(?:(?:and|or|then|now|next|finally|first|also|please)\s+)*"
                          r"([A-Za-z]+)\b")
_ARTICLE = re.compile(r"\b(a|an)\s+([A-Za-z0-9][\w'-]*)", re.IGNORECASE)


def instructions(path: Path) -> Iterator[str]:
    """The instruction texts in `path` (a file or a folder of files)."""
    if path.is_dir():
        for child in sorted(path.rglob("*.json*")):
            yield from instructions(child)
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    if isinstance(data, dict) and isinstance(data.get("episodes"), list):
        for episode in data["episodes"]:
            text = episode.get("instruction", {}).get("instruction_text")
            if isinstance(text, str) and text.strip():
                yield text
    elif isinstance(data, dict) and isinstance(data.get("task_info"), dict):
        text = data["task_info"].get("instruction") or data["task_info"].get("task")
        if isinstance(text, str) and text.strip():
            yield text


def opening_verbs(texts: list[str]) -> set[str]:
    """Verbs (base forms) that open a sentence of two words or more: the imperatives in use
    ("Table." alone is a fragment cut off by a stray full stop, not an instruction)."""
    verbs = set()
    for text in texts:
        for sentence in re.split(r"(?<=[.!?;])\s+", text.strip()):
            match = re.match(r"\W*([A-Za-z]+)\s+\w", sentence)
            word = match[1].lower() if match else ""
            # "Down the hall", "Near the sofa": direction words the dictionary also calls verbs
            if word and is_base_verb(word) and "ADV" not in getAllLemmas(word):
                verbs.add(word)
    return verbs


def problems(phrase: str, verbs: set[str]) -> list[str]:
    """What is wrong with `phrase`, by the rules in the module docstring."""
    found = []
    for match in _CLAUSE_HEAD.finditer(phrase):
        if match[1].lower() in verbs:
            found.append(f"raw imperative {match[1]!r} at a clause's head")
    for match in _ARTICLE.finditer(phrase):
        wanted = indefinite_article(match[2])
        if match[1].lower() != wanted and match[2].lower() not in {"or", "and"}:
            found.append(f"{match[0]!r} should be {wanted!r}")
    letters = [c for c in phrase if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.8 * len(letters):
        found.append("all capitals")
    if phrase.endswith("."):
        found.append("ends with a full stop")
    if len(phrase.split()) > 2 * MAX_WORDS and "," in phrase:
        found.append(f"{len(phrase.split())} words though it could be cut at a comma")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--show", type=int, default=10, help="example phrases to print")
    args = parser.parse_args(argv)
    texts = [text for path in args.paths for text in instructions(path)]
    if not texts:
        print("no instructions found", file=sys.stderr)
        return 2
    verbs = opening_verbs(texts)
    phrases = [process_phrase(text) for text in texts]
    failed = [(text, phrase, p) for text, phrase in zip(texts, phrases, strict=True)
              if (p := problems(phrase, verbs))]
    lengths = [len(p.split()) for p in phrases]
    multi = sum(len(re.split(r"(?<=[.!?])\s+", t.strip())) > 1 for t in texts)
    capitals = sum(t.upper() == t for t in texts)
    gerunds = collections.Counter(w for p in phrases for w in re.findall(r"\b\w+ing\b", p))
    print(f"{len(texts)} instructions ({multi} of several sentences, {capitals} all capitals), "
          f"{len(verbs)} opening verbs in use")
    print(f"phrase words: median {statistics.median(lengths)}, mean "
          f"{statistics.mean(lengths):.1f}, max {max(lengths)}; over {MAX_WORDS}: "
          f"{sum(n > MAX_WORDS for n in lengths)}; instruction words: mean "
          f"{statistics.mean(len(t.split()) for t in texts):.1f}")
    second = sum(len(re.findall(r"[a-z]ing\b", p)) > 1 for p in phrases)
    common = ", ".join(w for w, _ in gerunds.most_common(8))
    print(f"phrases with a second gerund: {second}; most common: {common}")
    for text, phrase in list(zip(texts, phrases, strict=True))[:args.show]:
        print(f"  {text.strip()[:90]!r}\n    -> {phrase}")
    for text, phrase, found in failed:
        print(f"FAIL {text.strip()[:90]!r}\n    -> {phrase}\n    {'; '.join(found)}")
    print(f"{len(texts) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
