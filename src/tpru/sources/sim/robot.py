"""``sim:robot``: a Franka Panda arm doing table-top tasks in PyBullet, rendered on CPU.

Each episode is a fresh PyBullet world in DIRECT mode (no window, no GPU):
the floor, the table, the Panda, a tray and coloured pads, and objects from
``pybullet_data`` (cubes, lego bricks, balls, rubber ducks) in colours drawn
from the seed (`tpru.sources.sim.robot_tasks` says what the task is); the
camera, the light and the tints of floor and table are one of a few looks
all episodes share (``LOOKS``). The arm follows straight end-effector paths
solved with inverse kinematics and driven by joint motors; it grasps by
closing its fingers on the object and then holding it with a fixed
constraint, and pushes by sliding its closed fingers along the table. Every
outcome is checked (the object must end where the task wanted it), so a
slipped grasp is a `SimError`, not a wrong episode.

A move is cut into sub-actions (reach, grasp, lift, carry, set down, move
away; or reach, lower, push, move away). The frames are taken after
sub-actions have settled, spread evenly over the episode; when more frames
are asked for than there are sub-actions, the longest motions are cut in
parts so that every frame still shows the arm somewhere else. Frames are
rendered with the TinyRenderer (no shadows, no segmentation mask) and
written as JPEG; physics and rendering are deterministic, so a seed gives
byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tpru.sources.sim.common import silenced

with silenced(2):  # PyBullet prints its build time on import
    import pybullet
import pybullet_data
from pybullet_utils.bullet_client import BulletClient

from tpru.sources.sim.common import (
    EpisodeSpec,
    SimError,
    check_request,
    episode_rng,
    frame_name,
    pick_distinct,
    save_frame,
    spread,
    thumbnail,
)
from tpru.sources.sim.robot_tasks import (
    COLOURS,
    EPISODE_TASKS,
    KINDS,
    LOOKS,
    ROW_X,
    ROW_Y,
    Move,
    TaskPlan,
    plan_task,
    step_text,
)

TABLE_TOP = 0.626
"""Height of the table top in pybullet_data's table.urdf placed on the floor."""
HAND = 11
"""The Panda's grasp-target link, between the finger tips."""
ARM_JOINTS = tuple(range(7))
FINGERS = (9, 10)
REST = (0.0, -0.35, 0.0, -2.3, 0.0, 1.95, 0.785)
HOME = (0.42, 0.0, TABLE_TOP + 0.36)
CLEAR = 0.2
"""Height above the table at which the hand travels between places."""
TRAY_SCALE = 0.45
TRAY_SLOTS = ((-0.05, -0.045), (0.05, 0.045), (0.05, -0.045), (-0.05, 0.045))
PAD_SLOTS = ((-0.04, 0.0), (0.04, 0.0))
HZ = 240
CM_STEPS = 3
"""Physics steps per centimetre of hand travel (about 0.8 m/s)."""
PUSH_CM_STEPS = 8
"""The same while pushing: slowly, so that the object slides no farther than pushed."""
SETTLE_STEPS = 30
PUSH_HEIGHT = 0.022
"""Height of the hand above the table while pushing."""
TOLERANCE = 0.045
"""How far (metres) an object may end from where the task put it."""

# Motion weights: where extra frames go when more are asked than there are sub-actions.
_WEIGHTS = {"reach": 1.0, "grasp": 0.5, "lift": 0.5, "carry": 1.0, "lower": 0.5,
            "retreat": 0.4, "approach": 1.0, "descend": 0.4, "push": 1.2}
CARRY_LEGS = ("reach", "grasp", "lift", "carry", "lower", "retreat")
PUSH_LEGS = ("approach", "descend", "push", "retreat")


@dataclass(frozen=True)
class Leg:
    """One sub-action of one move, cut into `parts` equal motions (one frame each)."""

    move: int
    kind: str
    parts: int = 1


class RobotSim:
    """The ``robot`` simulator: see the module docstring."""

    name = "robot"
    tasks = EPISODE_TASKS

    def render_episode(self, task: str, seed: int, frames_dir: Path, *, frames: int,
                       size: tuple[int, int]) -> EpisodeSpec:
        """Run one `task` episode drawn from `seed` and write `frames` JPEG frames."""
        check_request(self, task, frames, size)
        plan = plan_task(task, episode_rng(self.name, task, seed))
        # Twice the frames asked as candidates, so that `pick_distinct` has a choice.
        legs = plan_legs(plan.moves, 2 * (frames - 1))
        shots = set(spread(1 + sum(leg.parts for leg in legs), 2 * frames - 1))
        world = World(plan, size)
        try:
            candidates = world.run(legs, shots)
        finally:
            world.close()
        chosen = pick_distinct([thumbnail(pixels) for pixels, _ in candidates], frames)
        for i, c in enumerate(chosen):
            save_frame(candidates[c][0], frames_dir / frame_name(i))
        steps = [candidates[c][1] for c in chosen]
        names = tuple(frame_name(i) for i in range(frames))
        meta: dict[str, Any] = {
            "engine": f"pybullet {pybullet.getAPIVersion()}", "renderer": "tiny",
            "objects": [{"kind": t.kind, "colour": t.colour, "xy": list(t.xy)}
                        for t in plan.things],
            "pads": [{"colour": p.colour, "xy": list(p.xy)} for p in plan.pads],
            "tray": None if plan.tray is None else list(plan.tray),
            "look": plan.look,
            "camera": {"yaw": plan.camera.yaw, "pitch": plan.camera.pitch,
                       "distance": plan.camera.distance, "fov": plan.camera.fov},
        }
        return EpisodeSpec(plan.description, tuple(steps), names, meta)


def plan_legs(moves: Sequence[Move], motions: int) -> list[Leg]:
    """The sub-actions of `moves`, the longest cut into parts until there are `motions`."""
    legs = [Leg(m, kind) for m, move in enumerate(moves)
            for kind in (CARRY_LEGS if move.kind == "carry" else PUSH_LEGS)]
    while sum(leg.parts for leg in legs) < motions:
        i = max(range(len(legs)), key=lambda j: (_WEIGHTS[legs[j].kind] / legs[j].parts, -j))
        legs[i] = Leg(legs[i].move, legs[i].kind, legs[i].parts + 1)
    return legs


class World:
    """One PyBullet world for one episode; `run` performs the moves and takes the frames."""

    def __init__(self, plan: TaskPlan, size: tuple[int, int]) -> None:
        self.plan = plan
        self.size = size
        with silenced():  # the engine prints its arguments when it starts
            self.sim = BulletClient(connection_mode=pybullet.DIRECT)
        try:
            self._build(plan, size)
        except BaseException:
            self.sim.disconnect()
            raise

    def _build(self, plan: TaskPlan, size: tuple[int, int]) -> None:
        sim = self.sim
        sim.setAdditionalSearchPath(pybullet_data.getDataPath())
        sim.setGravity(0, 0, -9.81)
        sim.setTimeStep(1.0 / HZ)
        look = LOOKS[plan.look]
        # No textureUniqueId: the tint multiplies the checks and the wood grain, which stay.
        sim.changeVisualShape(sim.loadURDF("plane.urdf"), -1, rgbaColor=list(look.floor))
        table = sim.loadURDF("table/table.urdf", [0.5, 0, 0], useFixedBase=True)
        sim.changeVisualShape(table, -1, rgbaColor=list(look.table))
        self.arm = sim.loadURDF("franka_panda/panda.urdf", [0, 0, TABLE_TOP],
                                useFixedBase=True)
        # A graphite arm: a white one is about as bright as the table, and grey thumbnails
        # (which the builder compares frames by) would hardly see it move.
        for link in range(-1, sim.getNumJoints(self.arm)):
            sim.changeVisualShape(self.arm, link, rgbaColor=[0.22, 0.23, 0.26, 1.0])
        for joint, angle in zip(ARM_JOINTS, REST, strict=True):
            sim.resetJointState(self.arm, joint, angle)
        for finger in FINGERS:
            sim.resetJointState(self.arm, finger, 0.04)
        limits = [sim.getJointInfo(self.arm, j)[8:10] for j in ARM_JOINTS]
        self._ik = {"lowerLimits": [lo for lo, _ in limits] + [0.0, 0.0],
                    "upperLimits": [hi for _, hi in limits] + [0.04, 0.04],
                    "jointRanges": [hi - lo for lo, hi in limits] + [0.04, 0.04],
                    "restPoses": [*REST, 0.02, 0.02]}
        if plan.tray is not None:
            sim.loadURDF("tray/traybox.urdf", [*plan.tray, TABLE_TOP], globalScaling=TRAY_SCALE,
                         useFixedBase=True)
        for pad in plan.pads:
            shape = sim.createVisualShape(pybullet.GEOM_BOX,
                                          halfExtents=[pad.side / 2, pad.side / 2, 0.001],
                                          rgbaColor=[*COLOURS[pad.colour], 1.0])
            sim.createMultiBody(0, -1, shape, [*pad.xy, TABLE_TOP + 0.001])
        self.bodies: list[int] = []
        for thing in plan.things:
            kind = KINDS[thing.kind]
            place = [*thing.xy, TABLE_TOP + 0.05]
            turn = sim.getQuaternionFromEuler([0, 0, thing.yaw])
            if kind.urdf is None:
                body = sim.createMultiBody(
                    0.05, sim.createCollisionShape(pybullet.GEOM_SPHERE, radius=kind.scale),
                    sim.createVisualShape(pybullet.GEOM_SPHERE, radius=kind.scale), place, turn)
            else:
                body = sim.loadURDF(kind.urdf, place, turn, globalScaling=kind.scale)
            # No texture: it would tint the colour (a "purple" duck would look brown).
            sim.changeVisualShape(body, -1, rgbaColor=[*COLOURS[thing.colour], 1.0],
                                  textureUniqueId=-1)
            sim.changeDynamics(body, -1, lateralFriction=0.9, spinningFriction=0.002,
                               rollingFriction=0.0005 if thing.kind == "ball" else 0.0)
            self.bodies.append(body)
        self.hand_target = np.array(HOME)
        self.hand_yaw = 0.0
        self._span = (self.hand_target, self.hand_target)
        self._push = (np.zeros(2), np.zeros(2))
        self.grip: int | None = None
        self._drive(self.hand_target, 0.04)
        self._step(SETTLE_STEPS * 3)
        cam = plan.camera
        self.view = sim.computeViewMatrixFromYawPitchRoll(
            [0.5, 0.0, TABLE_TOP + 0.1], cam.distance, cam.yaw, cam.pitch, 0, 2)
        self.projection = sim.computeProjectionMatrixFOV(cam.fov, size[0] / size[1], 0.02, 5.0)

    def close(self) -> None:
        self.sim.disconnect()

    # ------------------------------------------------------------ the episode

    def run(self, legs: Sequence[Leg], shots: set[int]) -> list[tuple[np.ndarray, str]]:
        """Do every leg; return the frame and its text after each motion numbered in `shots`."""
        taken: list[tuple[np.ndarray, str]] = []
        motion = 0

        def take(text: str) -> None:
            nonlocal motion
            if motion in shots:
                taken.append((self.render(), text))
            motion += 1

        take(self.plan.setting)
        for leg in legs:
            move = self.plan.moves[leg.move]
            for part in range(1, leg.parts + 1):
                self.leg(move, leg, part)
                take(step_text(self.plan, move, leg.kind, part == leg.parts))
            if leg.kind == "retreat":
                self.check(move)
        return taken

    def leg(self, move: Move, leg: Leg, part: int) -> None:
        """Carry out part `part` (1 to ``leg.parts``) of `leg` of `move`."""
        body = self.bodies[move.thing]
        if part == 1:
            if leg.kind == "reach":
                self.hand_yaw = self._grasp_yaw(body)
            elif leg.kind == "approach":
                self._push = self._push_line(move, body)
                self.hand_yaw = self._push_yaw()
                self._fingers(0.0)
            self._span = (self.hand_target.copy(), self._leg_end(move, leg, body))
        start, end = self._span
        self._line(start + (end - start) * ((part - 1) / leg.parts),
                   start + (end - start) * (part / leg.parts),
                   PUSH_CM_STEPS if leg.kind == "push" else CM_STEPS)
        if part == leg.parts:
            self._leg_ends(leg, body)

    def _leg_ends(self, leg: Leg, body: int) -> None:
        if leg.kind == "grasp":
            self._fingers(0.0, force=30.0)
            self._step(SETTLE_STEPS)
            gap = sum(self.sim.getJointState(self.arm, f)[0] for f in FINGERS)
            if gap < 0.01:
                raise SimError("the fingers closed on nothing: the grasp missed")
            self._attach(body)
        elif leg.kind == "lower":
            self._detach()
            self._fingers(0.04)
            self._step(SETTLE_STEPS)
        elif leg.kind == "retreat":
            self._step(SETTLE_STEPS)

    def _leg_end(self, move: Move, leg: Leg, body: int) -> np.ndarray:
        """Where the hand should be when `leg` is done (positions read from the world now)."""
        obj = self._position(body)
        low, high = self._aabb(body)
        top = TABLE_TOP + CLEAR
        if leg.kind in ("reach", "lift"):
            return np.array([obj[0], obj[1], top])
        if leg.kind == "grasp":
            return np.array([obj[0], obj[1], max((low[2] + high[2]) / 2, TABLE_TOP + 0.018)])
        if leg.kind == "carry":
            x, y, _ = self._place(move)
            return np.array([x, y, top])
        if leg.kind == "lower":
            x, y, floor = self._place(move)
            hold = self.hand_target[2] - low[2]     # hand height above the object's bottom
            return np.array([x, y, floor + hold + 0.01])
        if leg.kind in ("approach", "descend"):
            x, y = self._push[0]
            return np.array([x, y, top if leg.kind == "approach" else TABLE_TOP + PUSH_HEIGHT])
        if leg.kind == "push":
            x, y = self._push[1]
            return np.array([x, y, TABLE_TOP + PUSH_HEIGHT])
        return np.array(HOME)  # retreat: back to where the arm started

    def _place(self, move: Move) -> tuple[float, float, float]:
        """Where the held object goes: x, y and the height of the surface it lands on."""
        kind = move.target[0]
        if kind == "pad":
            pad = self.plan.pads[int(move.target[1])]
            dx, dy = PAD_SLOTS[int(move.target[2])] if pad.side > 0.11 else (0.0, 0.0)
            return pad.xy[0] + dx, pad.xy[1] + dy, TABLE_TOP
        if kind == "tray":
            assert self.plan.tray is not None
            dx, dy = TRAY_SLOTS[int(move.target[1])]
            return self.plan.tray[0] + dx, self.plan.tray[1] + dy, TABLE_TOP + 0.02
        if kind == "on":
            below = self.bodies[int(move.target[1])]
            x, y, _ = self._position(below)
            return x, y, self._aabb(below)[1][2]
        return ROW_X, ROW_Y[int(move.target[1])], TABLE_TOP

    def _push_line(self, move: Move, body: int) -> tuple[np.ndarray, np.ndarray]:
        """Where the closed fingers start behind the object, and where they stop."""
        obj = self._position(body)[:2]
        pad = np.array(self.plan.pads[int(move.target[1])].xy)
        direction = (pad - obj) / np.linalg.norm(pad - obj)
        half = 0.03
        return obj - direction * (half + 0.05), pad - direction * (half + 0.012)

    def _push_yaw(self) -> float:
        (x0, y0), (x1, y1) = self._push
        # The fingers close along the hand's y axis: face the push with their flat side.
        return _fold(math.atan2(y1 - y0, x1 - x0) + math.pi / 2, math.pi)

    def _grasp_yaw(self, body: int) -> float:
        yaw = self.sim.getEulerFromQuaternion(self.sim.getBasePositionAndOrientation(body)[1])[2]
        return _fold(yaw, math.pi / 2)

    def check(self, move: Move) -> None:
        """Raise `SimError` unless the moved object ended where `move` wanted it."""
        body = self.bodies[move.thing]
        x, y, _ = self._position(body)
        want = self._place(move)
        if move.kind == "push":
            want = (*self.plan.pads[int(move.target[1])].xy, TABLE_TOP)
        miss = math.hypot(x - want[0], y - want[1])
        low = self._aabb(body)[0][2]
        if miss > TOLERANCE or (move.target[0] == "on" and low < want[2] - 0.015):
            name = self.plan.things[move.thing].name
            raise SimError(f"the {name} ended {miss * 100:.1f} cm from where it should be "
                           f"({move.at})")

    # ------------------------------------------------------------ the engine

    def render(self) -> np.ndarray:
        """The camera's RGB frame as an (H, W, 3) uint8 array."""
        w, h = self.size
        _, _, rgba, _, _ = self.sim.getCameraImage(
            w, h, self.view, self.projection, renderer=pybullet.ER_TINY_RENDERER, shadow=0,
            lightDirection=list(LOOKS[self.plan.look].light),
            flags=pybullet.ER_NO_SEGMENTATION_MASK)
        return np.reshape(np.asarray(rgba, dtype=np.uint8), (h, w, 4))[:, :, :3]

    def _line(self, start: np.ndarray, end: np.ndarray, cm_steps: int) -> None:
        """Move the hand along a straight line, then let everything settle."""
        n = max(1, math.ceil(float(np.linalg.norm(end - start)) * 100))
        for k in range(1, n + 1):
            self._drive(start + (end - start) * (k / n), None)
            self._step(cm_steps)
        self.hand_target = end.copy()
        self._step(SETTLE_STEPS)

    def _drive(self, position: np.ndarray, fingers: float | None) -> None:
        orientation = self.sim.getQuaternionFromEuler([math.pi, 0.0, self.hand_yaw])
        angles = self.sim.calculateInverseKinematics(
            self.arm, HAND, position.tolist(), orientation, maxNumIterations=30,
            residualThreshold=1e-5, **self._ik)
        self.sim.setJointMotorControlArray(self.arm, list(ARM_JOINTS), pybullet.POSITION_CONTROL,
                                           targetPositions=list(angles[:7]),
                                           forces=[240.0] * 7)
        if fingers is not None:
            self._fingers(fingers)

    def _fingers(self, opening: float, force: float = 60.0) -> None:
        self.sim.setJointMotorControlArray(self.arm, list(FINGERS), pybullet.POSITION_CONTROL,
                                           targetPositions=[opening, opening],
                                           forces=[force, force])

    def _attach(self, body: int) -> None:
        hand_pos, hand_orn = self.sim.getLinkState(self.arm, HAND)[4:6]
        pos, orn = self.sim.getBasePositionAndOrientation(body)
        inv_pos, inv_orn = self.sim.invertTransform(hand_pos, hand_orn)
        rel_pos, rel_orn = self.sim.multiplyTransforms(inv_pos, inv_orn, pos, orn)
        self.grip = self.sim.createConstraint(self.arm, HAND, body, -1, pybullet.JOINT_FIXED,
                                              [0, 0, 0], rel_pos, [0, 0, 0], rel_orn)
        self.sim.changeConstraint(self.grip, maxForce=200.0)

    def _detach(self) -> None:
        if self.grip is not None:
            self.sim.removeConstraint(self.grip)
            self.grip = None

    def _step(self, count: int) -> None:
        for _ in range(count):
            self.sim.stepSimulation()

    def _position(self, body: int) -> np.ndarray:
        return np.array(self.sim.getBasePositionAndOrientation(body)[0])

    def _aabb(self, body: int) -> tuple[Sequence[float], Sequence[float]]:
        low, high = self.sim.getAABB(body)
        return low, high


def _fold(angle: float, period: float) -> float:
    """`angle` moved by whole periods into [-period/2, period/2)."""
    return (angle + period / 2) % period - period / 2
