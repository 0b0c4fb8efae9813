"""The Ray engine on a real multi-node Ray cluster on this machine (`ray.cluster_utils.Cluster`).

Every build goes through the command line; the Ray builds' files are compared
byte for byte with a local build of the same sources and seed (build.json
differs only by its ``engine`` block). One cluster (a head and a worker node,
one CPU each) serves the module: Ray starts slowly.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from episode_files import write_episodes
from gated_embedding import GATE_ENV, let_through, reset, starts

import tpru.builder.partitions as partitions
from helpers import folder_bytes
from tpru.builder.engine import shards
from tpru.builder.ray_engine import check_cpus
from tpru.cli import main
from tpru.sources import open_source, sim
from tpru.sources.base import SplitSource

ray = pytest.importorskip("ray")  # the ray extra, in dev: CI has it
from ray.cluster_utils import Cluster  # noqa: E402

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head and a worker node with one CPU each; their ``sim:robot`` is the fake simulator
    (``ray_site/sitecustomize.py``, which every Python process of the cluster runs), and
    `gated_embedding` waits at the module's gate folder."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE / "ray_site"), str(HERE), old)
                                               if p)
    os.environ[GATE_ENV] = str(tmp_path_factory.mktemp("gate"))
    head_args = {"num_cpus": 1, "include_dashboard": False,
                 # a lost node is noticed in about a second, not the default 30
                 "_system_config": {"health_check_period_ms": 500,
                                    "health_check_failure_threshold": 2}}
    nodes = Cluster(initialize_head=True, head_node_args=head_args)
    try:
        nodes.add_node(num_cpus=1)
        nodes.wait_for_nodes()
        yield nodes
    finally:
        nodes.shutdown()
        os.environ.pop(GATE_ENV, None)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def build(out: Path, source: str, *args: str) -> int:
    return main(["build", "-q", "--source", source, "--out", str(out), *args])


TASK_FRAMES = 32
"""Frames per Ray task in these builds (the default is 128): small builds spread over
every node."""


def on_ray(cluster: Cluster) -> tuple[str, ...]:
    return ("--engine", "ray", "--ray-address", cluster.address,
            f"ray.frames_per_task={TASK_FRAMES}")


def build_apart(out: Path, source: str, *args: str) -> None:
    """`build` in a process of its own, as a user runs it: a Ray driver that imports a
    simulator's rendering stack stays out of pytest's process."""
    command = [sys.executable, "-m", "tpru.cli", "build", "-q", "--source", source,
               "--out", str(out), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def assert_same_build(local: Path, other: Path) -> dict[str, Any]:
    """Every file identical, build.json but for its engine block; that block."""
    a, b = folder_bytes(local), folder_bytes(other)
    assert a.keys() == b.keys()
    for name in a:
        if name != "build.json":
            assert a[name] == b[name], name
    info = json.loads(b["build.json"])
    engine: dict[str, Any] = info.pop("engine")
    assert info == json.loads(a["build.json"])
    assert "engine" not in json.loads(a["build.json"])
    counts = info["counts"]
    assert sum(n["episodes"] for n in engine["nodes"].values()) == \
        counts["episodes_kept"] + counts["episodes_dropped"]
    assert sum(n["frames"] for n in engine["nodes"].values()) == counts["frames_read"]
    return engine


def test_a_two_node_cluster_builds_byte_identically_to_the_local_engine(
        cluster: Cluster, episodes_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = f"frames:{episodes_dir}"
    assert build(tmp_path / "local", source, "--seed", "5", "--workers", "1") == 0
    merges = []
    merged = partitions.merged

    def merging(*args: Any, **kwargs: Any) -> Any:
        merges.append(args)
        return merged(*args, **kwargs)

    monkeypatch.setattr(partitions, "merged", merging)
    assert build(tmp_path / "ray", source, "--seed", "5", *on_ray(cluster)) == 0
    assert len(merges) == 1  # pass 2's samples were made by groups on the cluster
    engine = assert_same_build(tmp_path / "local", tmp_path / "ray")
    assert engine["name"] == "ray" and engine["address"] == cluster.address
    assert engine["cpus"] == 2


def test_simulator_episodes_render_on_the_workers_and_build_identically(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sim.SIMULATORS, "robot", "fake_sim:robot")
    renders = tmp_path / "renders"
    args = ("--seed", "2", f"sim.out={renders}", "sim.episodes=8", "sim.frames=5")
    # Ray first, into an empty cache: the renders happen on the cluster's workers.
    assert build(tmp_path / "ray", "sim:robot", *args, *on_ray(cluster)) == 0
    # Seeds are rendered a few ahead of those used; only complete folders are left.
    rendered = sorted(p.name for p in (renders / "robot" / "320x240-f5").iterdir())
    assert len(rendered) >= 8 and all("tmp" not in name for name in rendered)
    assert all((renders / "robot" / "320x240-f5" / name / "episode.json").is_file()
               for name in rendered)
    assert build(tmp_path / "local", "sim:robot", *args) == 0
    assert build(tmp_path / "local2", "sim:robot", *args, "--workers", "2") == 0
    assert folder_bytes(tmp_path / "local") == folder_bytes(tmp_path / "local2")
    assert_same_build(tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_a_real_simulator_renders_on_the_workers_as_it_does_here(cluster: Cluster,
                                                                   tmp_path: Path) -> None:
    # sim:nav is MiniWorld itself in every process of the cluster (only robot is faked there).
    missing = subprocess.run([sys.executable, "-c", "from tpru.sources import sim; "
                              "sim.load_simulator('nav')"], capture_output=True, text=True,
                             check=False)
    if missing.returncode != 0:
        pytest.skip(missing.stderr.strip().splitlines()[-1])
    args = ("--seed", "1", "sim.episodes=3", "sim.frames=4", "sim.size=[160, 120]")
    ray_cache, local_cache = tmp_path / "ray-renders", tmp_path / "local-renders"
    build_apart(tmp_path / "ray", "sim:nav", *args, f"sim.out={ray_cache}", *on_ray(cluster))
    build_apart(tmp_path / "local", "sim:nav", *args, f"sim.out={local_cache}")
    # Rendered apart, on the cluster's workers and here: the same frames, byte for byte (the
    # cluster renders a few seeds ahead of those it uses).
    rendered, here = folder_bytes(ray_cache), folder_bytes(local_cache)
    assert here and {name: rendered.get(name) for name in here} == here
    a, b = folder_bytes(tmp_path / "local"), folder_bytes(tmp_path / "ray")
    assert a.keys() == b.keys()
    assert all(a[name] == b[name] for name in a if name != "build.json")
    local_info, ray_info = json.loads(a["build.json"]), json.loads(b["build.json"])
    assert ray_info.pop("engine")["name"] == "ray"
    for info in (local_info, ray_info):
        info["config"]["sim"].pop("out")  # the one difference asked for
    assert local_info == ray_info
    assert local_info["counts"]["episodes_kept"] == 3


def _records(out: Path) -> int:
    path = out.with_name(out.name + ".partial") / "work" / "episodes.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def build_losing_a_node(cluster: Cluster, gate: Path, out: Path, source: str,
                        *args: str) -> tuple[str, bool]:
    """`build` on the cluster with a node added for it and removed as soon as a task waiting
    at the shut `gate` runs there; then the gate opens. The lost node's id, and whether it
    held work when it was removed."""
    reset(gate, opened=False)
    doomed = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    doomed_id = doomed.node_id
    held: list[bool] = []

    def remove_once_it_holds_work() -> None:
        try:
            deadline = time.monotonic() + 120
            while not any(node == doomed_id for _, node in starts(gate)) \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
            held.append(any(node == doomed_id for _, node in starts(gate)))
            cluster.remove_node(doomed, allow_graceful=False)
        finally:
            (gate / "open").touch()

    remover = threading.Thread(target=remove_once_it_holds_work)
    remover.start()
    try:
        assert build(out, source, *args, *on_ray(cluster)) == 0
    finally:
        remover.join()
    return doomed_id, held == [True]


@pytest.mark.slow
def test_a_worker_node_lost_mid_build_changes_nothing(cluster: Cluster, tmp_path: Path) -> None:
    # Every measuring task waits at the gate (`gated_embedding`) until the node is gone, so
    # the node is removed while it provably holds a task: no race with the build's end.
    episodes = write_episodes(tmp_path / "episodes", 24)  # 4 shards of 6 episodes
    source = f"frames:{episodes}"
    gate = Path(os.environ[GATE_ENV])
    out = tmp_path / "ray"
    doomed_id, held = build_losing_a_node(cluster, gate, out, source,
                                          "embed.name=gated_embedding:histogram")
    assert held, "no task started on the doomed node"
    ran = starts(gate)
    lost = {work for work, node in ran if node == doomed_id}
    # The work in flight on the lost node was started again on a node that stayed.
    assert lost and lost <= {work for work, node in ran if node != doomed_id}
    assert build(tmp_path / "local", source, "embed.name=gated_embedding:histogram") == 0
    engine = assert_same_build(tmp_path / "local", out)
    # No task finished on the lost node: the surviving nodes measured every episode.
    assert not any(doomed_id[:8] in name for name in engine["nodes"])
    assert sum(n["episodes"] for n in engine["nodes"].values()) == 24


@pytest.mark.slow
def test_a_worker_node_lost_in_pass_2_changes_nothing(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same in pass 2: every group's task waits at the gate (`gated_groups`) until a
    node that holds one is gone; its group is formulated again on a node that stayed."""
    from gated_groups import formulate_gated

    episodes = write_episodes(tmp_path / "episodes", 24)
    source = f"frames:{episodes}"
    gate = Path(os.environ[GATE_ENV])
    monkeypatch.setattr(partitions, "formulate_groups", formulate_gated)
    out = tmp_path / "ray"
    doomed_id, held = build_losing_a_node(cluster, gate, out, source)
    assert held, "no pass-2 task started on the doomed node"
    ran = starts(gate)
    lost = {group for group, node in ran if node == doomed_id}
    assert lost and lost <= {group for group, node in ran if node != doomed_id}
    assert build(tmp_path / "local", source, "--workers", "1") == 0
    assert_same_build(tmp_path / "local", out)


@pytest.mark.slow
def test_a_driver_killed_mid_build_continues_with_resume(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    episodes = write_episodes(tmp_path / "episodes", 16)
    source = f"frames:{episodes}"
    gated = "embed.name=gated_embedding:histogram"
    gate = Path(os.environ[GATE_ENV])
    reset(gate, opened=True)
    assert build(tmp_path / "local", source, gated, "--workers", "1") == 0
    in_order = [work for work, _ in starts(gate)]  # one process: in episode order
    assert len(in_order) == 16
    # The first shard's episodes pass the gate and the others wait at it: the driver is
    # killed with exactly that shard recorded, whatever the timing.
    first_shard = len(next(shards(range(16), weight=lambda _: 6,  # 6 frames an episode
                                  target=TASK_FRAMES)))
    reset(gate, opened=False)
    let_through(gate, in_order[:first_shard])
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "tpru.cli", "build", "-q", "--source", source,
               "--out", str(out), gated, *on_ray(cluster)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and _records(out) < first_shard \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"the build ended (status {process.returncode}) before it could be "
                        f"killed: {process.stderr.read().decode()}")
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
        (gate / "open").touch()
        assert process.stderr is not None
        process.stderr.close()
    assert _records(out) == first_shard and not out.exists()

    assert build(out, source, gated, *on_ray(cluster), "--resume") == 0
    engine = assert_same_build(tmp_path / "local", out)
    assert sum(n["episodes"] for n in engine["nodes"].values()) == 16


@pytest.fixture
def source_writers(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    """The writers of tests/sources: `real_fixtures` (LEGO videos) and `test_segment_sources`
    (videos whose frames show their time, and segments, COIN and EPIC-KITCHENS inputs)."""
    monkeypatch.syspath_prepend(str(HERE.parent / "sources"))
    return importlib.import_module("real_fixtures"), importlib.import_module("test_segment_sources")


def test_video_sources_decode_on_the_workers_and_build_identically(
        cluster: Cluster, tmp_path: Path, source_writers: tuple[ModuleType, ModuleType]) -> None:
    lego, segments = source_writers
    root = tmp_path / "input"
    for n in range(3):
        segments.write_video(root / "clips" / f"clip{n}.mp4", changes=(1.5 + n,))
    (root / "clips" / "broken.mp4").write_bytes(b"not a video")  # counted alike on either engine
    for n in range(2):
        lego.write_lego_video(root / "lego" / f"model_{n}.mp4", bricks=4, plate=n)
    specs = [f"video:{root / 'clips'}", f"lego-video:{root / 'lego'}"]
    for kind in ("segments", "coin", "epic-kitchens"):
        (root / kind).mkdir()
        path, _ = segments._inputs(kind, root / kind)
        specs.append(f"{kind}:{path}")
    # Each lists cheap keys and leaves the decoding to the workers (`tpru.builder.worker`).
    assert all(isinstance(open_source(spec), SplitSource) for spec in specs)
    args = [arg for spec in specs for arg in ("--source", spec)]
    args += ["--seed", "3", "filter.min_side=16", "video.mode=keyframes", "video.fps=2",
             "source_options={segments: {frame: keyframe}, coin: {frame: keyframe}, "
             "epic-kitchens: {steps: 4}}"]
    local, on_cluster = tmp_path / "local", tmp_path / "ray"
    assert main(["build", "-q", "--out", str(local), *args]) == 0
    assert main(["build", "-q", "--out", str(on_cluster), *args, *on_ray(cluster)]) == 0
    assert_same_build(local, on_cluster)
    info = json.loads((local / "build.json").read_text())
    assert info["drops"]["inputs"]["unreadable_video"] == 1  # broken.mp4, replayed in order
    assert info["counts"]["episodes_kept"] >= 10


def test_robot_datasets_are_made_on_the_workers_and_build_identically(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rlds: lists record headers and lerobot: its metadata; the workers read the records
    and the videos. A damaged record and a missing video are counted alike, in order."""
    pytest.importorskip("crc32c")
    pytest.importorskip("av")
    monkeypatch.syspath_prepend(str(HERE.parent / "sources"))
    from lerobot_fixtures import write_v30
    from rlds_files import Ep, shard, write_rlds

    root = tmp_path / "input"
    texts = ["Pick up the red block", "Open the drawer", "Push the cup left", "Stack the cups"]
    rlds = write_rlds(root / "open_x", {"train": [Ep(e, 8, t) for e, t in enumerate(texts)],
                                        "val": [Ep(1, 6, "Close the lid")]},
                      shards=2, cameras=("image", "wrist_image"))
    damaged = bytearray(shard(rlds, index=1).read_bytes())
    damaged[40] ^= 0xFF  # inside the data of the shard's first record (episode 2)
    shard(rlds, index=1).write_bytes(bytes(damaged))
    lerobot = write_v30(root / "so100", [(10, "Pick up the red cube."), (9, "Stack the block"),
                                         (10, "Pick up the pen"), (8, "Open the box")],
                        video_files=[0, 0, 1, 2])
    next((lerobot / "videos").rglob("file-002.mp4")).unlink()
    specs = [f"rlds:{rlds}", f"lerobot:{lerobot}"]
    assert all(isinstance(open_source(spec), SplitSource) for spec in specs)
    args = [arg for spec in specs for arg in ("--source", spec)]
    args += ["--seed", "4", "filter.min_side=32", "source_options={rlds: {camera: all}, "
             "lerobot: {fps: 5}}"]
    local, on_cluster = tmp_path / "local", tmp_path / "ray"
    assert main(["build", "-q", "--out", str(local), *args]) == 0
    assert main(["build", "-q", "--out", str(on_cluster), *args, *on_ray(cluster)]) == 0
    assert_same_build(local, on_cluster)
    info = json.loads((local / "build.json").read_text())
    assert info["drops"]["inputs"] == {"damaged_record": 1, "missing_file": 1}
    assert info["counts"]["episodes_kept"] + info["counts"]["episodes_dropped"] == 8 + 3


def test_an_unreachable_address_fails_fast_in_one_line(
        tmp_path: Path, episodes_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build(tmp_path / "out", f"frames:{episodes_dir}", "--engine", "ray",
                 "--ray-address", "127.0.0.1:1") == 1
    err = capsys.readouterr().err.strip()
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_without_ray_the_engine_asks_for_the_extra(
        tmp_path: Path, episodes_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray imports
    assert build(tmp_path / "out", f"frames:{episodes_dir}", "--engine", "ray") == 1
    assert "pip install 'tpru[ray]'" in capsys.readouterr().err


def test_a_cluster_without_cpus_is_refused() -> None:
    assert check_cpus({"CPU": 4.0, "memory": 1e9}, "head:6379") == 4
    with pytest.raises(Exception, match="has no CPUs for the build"):
        check_cpus({"memory": 1e9, "GPU": 1.0}, "head:6379")
