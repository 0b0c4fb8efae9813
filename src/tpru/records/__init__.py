"""The files tpru writes besides samples: typed, versioned, written and read here.

`tpru.schema` holds the records that flow through the pipeline (`Episode`,
`Sample`). These are the others, one module each:

- `ResultLine` (``results_line``): one line of an evaluation run's
  ``results.jsonl``;
- `RunRecord` (``run_json``): a run's ``run.json``;
- `BuildRecord` (``build_json``): a dataset's ``build.json``;
- `AuditRecord` and its rows `AuditGroup` (``audit_json``): an audit's
  ``audit.json``.

Each is a frozen dataclass with one writer (``to_dict``, and ``dumps`` for
the file's exact text) and one reader (``from_dict``, and ``load`` for a
whole file), so the format of a file is defined in one place and a change
to it is a change here.

Versions: each record class has a ``SCHEMA_VERSION``, written as the
``schema_version`` field. A file without one is version 1: results lines and
run.json carried none before their version was named, and their version 1 is
that format, unchanged (build.json and audit.json always carried one).
build.json's version is the dataset folder's, shared with its samples
(`tpru.schema.SCHEMA_VERSION`). A reader accepts every version up to its own
and refuses a newer one with `SchemaVersionError`, a one-line `InputError`
naming the file (and line) and asking for a newer tpru: a file is never
misread.

Unknown keys are ignored, never an error: a reader takes the fields it knows,
so a file from a tpru that only added fields still reads, and an
incompatible change bumps the version instead. Nothing reads a file back to
rewrite it with keys it does not know (a resumed run rebuilds run.json from
its own settings, and keeps results lines as they were written).

Example:
    >>> line = ResultLine(id="t1", correct=True, answer="C", prediction="C")
    >>> ResultLine.from_dict(line.to_dict()) == line
    True
    >>> try:
    ...     ResultLine.from_dict({"id": "t1", "correct": True, "answer": "C",
    ...                           "schema_version": 9}, "results.jsonl, line 1")
    ... except SchemaVersionError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    results.jsonl, line 1: results line schema_version 9 is newer than this tpru reads ...
"""

from __future__ import annotations

from tpru.records._fields import SchemaVersionError
from tpru.records.audit_json import AuditGroup, AuditRecord
from tpru.records.build_json import BuildRecord
from tpru.records.results_line import ResultLine
from tpru.records.run_json import BenchmarkFingerprint, RunRecord

__all__ = ["AuditGroup", "AuditRecord", "BenchmarkFingerprint", "BuildRecord", "ResultLine",
           "RunRecord", "SchemaVersionError"]
