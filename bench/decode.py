"""The receive path per incoming pose, and the tick's encoding per pose entry, without sockets.

    python bench/decode.py                 # prints one JSON object of microseconds per pose
    python bench/decode.py --number 50000

For each codec (JSON text, binary `shoal.v1.bin`) it times, per pose:

- `decode`: the codec's decode and validation of a head-and-hands pose frame (what `Codec.decode` does;
  binary keeps the pose packed: it validates and decodes no floats);
- `receive`: `Engine.receive` for a member in a room of 25, the whole sans-I/O receive path (decode,
  validation, rate budget, quaternion check, `Room.set_pose`); the transport adds aiohttp's frame parsing;
- `entry`: one pose entry of a tick (`Codec.pose_entry`), encoded from floats, and for binary also the
  relay of the sender's own bytes (`entry_relayed`, what the server does for binary senders).

`joints` times a message with both hands' 25 joints: `receive` (as above) and its tick entry, from numbers
(`entry`) and from what the codec decoded (`entry_from_received`: binary relays the sender's bytes).

Each figure is the best of `--repeat` runs of `--number` calls (timeit), so it is the cost on a quiet
core; run it with the load average low.
"""

from __future__ import annotations

import json
import math
import os
import sys
import timeit
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import click  # after the path is set, like the imports below
import msgspec

from shoal.core.engine import Engine
from shoal.core.joints import member_joints
from shoal.core.limits import Limits
from shoal.logs import configure_logging
from shoal.protocol import binary as wire
from shoal.protocol.binary import BINARY
from shoal.protocol.codec import JSON
from shoal.protocol.joints import encode_joints
from shoal.protocol.messages import Joints, MemberPose, Pose, Transform

T = 1_795_262_169_485.0
HALF_SQRT2 = 0.7071067811865476
POSE = Pose(
    head=Transform((1.234, 1.6, -0.5), (0.0, 0.0, 0.0, 1.0)),
    left=Transform((0.934, 1.1, -0.8), (0.0, 0.0, 0.0, 1.0)),
    right=Transform((1.534, 1.1, -0.8), (0.0, HALF_SQRT2, 0.0, HALF_SQRT2)),
    t=T,
)
FRAMES = {
    "json": (
        b'{"type":"pose","head":{"pos":[1.234,1.6,-0.5],"rot":[0.0,0.0,0.0,1.0]},'
        b'"left":{"pos":[0.934,1.1,-0.8],"rot":[0.0,0.0,0.0,1.0]},'
        b'"right":{"pos":[1.534,1.1,-0.8],"rot":[0.0,0.7071067811865476,0.0,0.7071067811865476]},'
        b'"t":1795262169485.0}'
    ),
    "binary": wire.encode_pose(POSE),
}
CODECS = {"json": JSON, "binary": BINARY}
_HAND = [(0.01 * i, 1.2 + 0.004 * i, -0.3 - 0.002 * i, 0.0, math.sin(i / 9), 0.0, math.cos(i / 9)) for i in range(25)]
JOINTS = Joints(left=_HAND, right=[(-x, y, z, *rotation) for x, y, z, *rotation in _HAND])  # type: ignore[arg-type]
JOINTS_FRAMES = {"json": msgspec.json.encode(JOINTS), "binary": encode_joints(JOINTS)}


def best_us(statement: object, number: int, repeat: int) -> float:
    return round(min(timeit.repeat(statement, number=number, repeat=repeat)) / number * 1e6, 3)  # type: ignore[arg-type]


def engine_with_a_room(codec_name: str) -> tuple[Engine, object]:
    """An engine with 25 members of `codec_name` in one room, and the member whose poses are timed.
    Rate limits are lifted so that every timed pose takes the whole path."""
    codec = CODECS[codec_name]
    engine = Engine(Limits(pose_rate=1e12, pose_burst=10**12, joints_rate=1e12, joints_burst=10**12))
    members = []
    for index in range(25):
        member = engine.connect(codec, 0.0)
        hello = b'{"type":"hello","name":"M%d"}' % index
        join = b'{"type":"join","room":"bench"}'
        if codec.binary:
            hello, join = b"\x00" + hello, b"\x00" + join
        engine.receive(member, hello, 0.0, codec.binary)
        engine.receive(member, join, 0.0, codec.binary)
        members.append(member)
    return engine, members[0]


def joints_figures(number: int, repeat: int) -> dict[str, dict[str, float]]:
    """Per message of both hands' joints (25 each): `Engine.receive`, and the tick entry (binary: relayed)."""
    figures = {}
    numbers = member_joints(7, JOINTS)
    for name, codec in CODECS.items():
        engine, member = engine_with_a_room(name)
        frame = JOINTS_FRAMES[name]
        received = codec.decode(frame)
        if isinstance(received, Joints):  # JSON: as the engine keeps them
            received = member_joints(7, received)
        figures[name] = {
            "frame_bytes": len(frame),
            "receive_us": best_us(
                lambda e=engine, m=member, f=frame, b=codec.binary: e.receive(m, f, 1.0, b), number, repeat
            ),
            "entry_us": best_us(lambda c=codec, n=numbers: c.joints_entry(7, n), number, repeat),
            "entry_from_received_us": best_us(lambda c=codec, r=received: c.joints_entry(7, r), number, repeat),
        }
    return figures


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--number", default=20_000, type=click.IntRange(100, 10_000_000), help="Calls per timing run.")
@click.option("--repeat", default=5, type=click.IntRange(1, 100), help="Timing runs; the best is reported.")
def main(number: int, repeat: int) -> None:
    """Microseconds per pose on the receive path and per tick entry, JSON and binary; one JSON line."""
    configure_logging("warning", "json")  # the rooms' info logs would mix with the JSON line
    report: dict[str, object] = {"bench": "decode", "number": number, "repeat": repeat}
    member_pose = MemberPose(id=123456789, head=POSE.head, left=POSE.left, right=POSE.right, t=POSE.t)
    from_floats = SimpleNamespace(id=member_pose.id, pose=member_pose, packed=None)  # a sender as codecs see it
    for name, codec in CODECS.items():
        frame = FRAMES[name]
        engine, member = engine_with_a_room(name)
        receive = engine.receive
        figures = {
            "frame_bytes": len(frame),
            "decode_us": best_us(lambda codec=codec, frame=frame: codec.decode(frame), number, repeat),
            "receive_us": best_us(
                lambda receive=receive, member=member, frame=frame, binary=codec.binary: receive(
                    member, frame, 1.0, binary
                ),
                number,
                repeat,
            ),
            "entry_us": best_us(lambda codec=codec: codec.pose_entry(from_floats, T + 20.0), number, repeat),
            "entry_bytes": len(codec.pose_entry(from_floats, T + 20.0)),
        }
        if codec.binary:
            relayed = SimpleNamespace(id=member_pose.id, pose=None, packed=BINARY.decode(frame))
            figures["entry_relayed_us"] = best_us(lambda r=relayed: BINARY.pose_entry(r, T + 20.0), number, repeat)
        report[name] = figures
    report["joints"] = joints_figures(max(number // 20, 100), repeat)
    report["loadavg"] = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
