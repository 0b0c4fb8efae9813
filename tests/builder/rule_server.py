"""Serve `rule_model.RuleModel` in a process of its own, the way ``python -m tpru.models.serve``
serves a model (the same `tpru.models.serve.serve`), so a test can kill a server mid-build.

``python rule_server.py [--delay SECONDS]`` listens on a free port of 127.0.0.1, writes
``Serving rule at URL`` to stderr, and answers each request after `--delay` seconds until
it is killed.
"""

from __future__ import annotations

import argparse
import sys

from rule_model import RuleModel

from tpru.models.serve import Fault, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds each request waits before it is answered")
    args = parser.parse_args()
    delay = Fault(stall=args.delay)
    server = serve(RuleModel(), model_name="rule",
                   faults=(lambda call: delay) if args.delay > 0 else None)
    print(f"Serving rule at {server.url}", file=sys.stderr, flush=True)
    server.wait()


if __name__ == "__main__":
    main()
