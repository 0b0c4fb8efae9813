"""``tpru demo``: a small dataset from the built-in simulators, end to end."""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from tpru.commands.build import load_build_config, print_build_summary
from tpru.commands.common import Command, int_at_least

log = logging.getLogger("tpru")

HELP = "build a small dataset from the built-in simulators"
DESCRIPTION = """\
Render episodes of the four built-in simulators (robot: PyBullet, lego: LeoCAD, gui:
Chromium, nav: MiniWorld), build a dataset from them with all three tasks and negatives,
write the HTML viewer and print a summary. A simulator whose engine is missing is left
out with a message saying what to install (scripts/setup-system.sh; pip install
'tpru[sim]'). Everything lands in --out; running the demo again replaces an earlier
demo there, and nothing else."""
EPILOG = "Example:\n  tpru demo --synthetic --out /tmp/demo   # seconds, no engines needed"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo-out", help="folder for everything (default demo-out)")
    p.add_argument("--episodes", type=int_at_least(1), default=24,
                   help="episodes per scenario (default 24)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed, 0 or more (default 0)")
    p.add_argument("--workers", type=int_at_least(1), default=1,
                   help="processes reading frames (default 1)")
    p.add_argument("--synthetic", action="store_true",
                   help="use tpru's drawn sample sequences instead of the simulators "
                        "(seconds, no engines needed)")


def demo_command(args: argparse.Namespace) -> int:
    """Run ``tpru demo`` (see `DESCRIPTION`)."""
    from tpru.builder.pipeline import build
    from tpru.dataset import BUILD_FILE, Dataset
    from tpru.diagnostics import InputError
    from tpru.files import check_output_folder, is_marked, mark_output
    from tpru.view import VIEW_FILE, write_contact_sheet

    out = Path(args.out)
    # A demo replaces only an earlier demo: marked, or (before the mark) its dataset and page.
    check_output_folder(out, kind="demo folder", overwrite=True, written_by=lambda p: (
        is_marked(p, "demo folder")
        or ((p / "dataset" / BUILD_FILE).is_file() and (p / VIEW_FILE).is_file())))
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out, "demo folder")
    data: dict[str, object] = {"out": str(out / "dataset"), "seed": args.seed,
                               "workers": args.workers,
                               "split": {"ratios": {"train": 0.8, "test": 0.2}}}
    if args.synthetic:
        from tpru.sources.synthetic import write_synthetic_episodes

        episodes_dir = out / "episodes"
        if episodes_dir.exists():  # an earlier demo's episodes would be built in too
            log.info("demo: replacing the episodes of the earlier demo in %s", episodes_dir)
            shutil.rmtree(episodes_dir)
        write_synthetic_episodes(episodes_dir, episodes=args.episodes, seed=args.seed)
        data["sources"] = [f"frames:{episodes_dir}"]
    else:
        from tpru.sources.sim import SIMULATORS, load_simulator

        sources = []
        for name in SIMULATORS:
            try:
                load_simulator(name)
            except InputError as err:
                log.warning("demo: leaving out sim:%s: %s", name, err)
                continue
            sources.append(f"sim:{name}")
        if not sources:
            raise InputError("no simulator engine is installed: run scripts/setup-system.sh "
                             "and pip install 'tpru[sim]', or use tpru demo --synthetic")
        data["sources"] = sources
        data["sim"] = {"episodes": args.episodes, "seed": args.seed, "out": str(out / "frames")}
    config, _ = load_build_config(data)  # as tpru build loads it: no audit
    result = build(config, overwrite=True, show_progress=not args.quiet)
    html = write_contact_sheet(Dataset.open(result.path), out / VIEW_FILE)
    print_build_summary(result.path, result.info)
    print(f"viewer: {html}")
    return 0


COMMAND = Command(help=HELP, description=DESCRIPTION, epilog=EPILOG, add_arguments=add_arguments,
                  run=demo_command)
