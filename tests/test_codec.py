"""The JSON codec: which error code each kind of bad frame gets, and what server frames look like."""

from __future__ import annotations

import gc

import pytest

from shoal.core.pose import member_pose
from shoal.protocol.codec import JSON, DecodeFailure
from shoal.protocol.messages import AppMessage, Hello, MemberPose, Pose, Relay, Tick, Transform
from support.clients import strict_json

HEAD = b'"head":{"pos":[0,1.6,0],"rot":[0,0,0,1]}'


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"{", "bad_json"),
        (b"", "bad_json"),
        (b'{"type":"msg","topic":"x","data":"\xff\xfe"}', "bad_json"),
        (b'{"type":"ping","t":NaN}', "bad_json"),
        (b'{"type":"ping","t":Infinity}', "bad_json"),
        (b'{"v":1}', "unknown_type"),
        (b'{"type":"teleport"}', "unknown_type"),
        (b'{"type":7}', "unknown_type"),
        (b"[1,2]", "invalid_message"),
        (b'{"type":"join"}', "invalid_message"),
        (b'{"type":"join","room":5}', "invalid_message"),
        (b'{"type":"join","room":"a","extra":1}', "invalid_message"),
        (b'{"type":"msg","topic":"x","from":1}', "invalid_message"),
        (b'{"type":"msg","topic":""}', "invalid_message"),
        (b'{"type":"msg","topic":"x","to":0}', "invalid_message"),
        (b'{"type":"hello","color":"red"}', "invalid_message"),
        (b'{"type":"ping","t":1e400}', "invalid_message"),
        (b'{"type":"pose",' + HEAD[:-1] + b',"scale":2}}', "invalid_message"),
        (b'{"type":"pose","head":{"pos":[0,1],"rot":[0,0,0,1]}}', "invalid_message"),
        (b'{"type":"msg","topic":"x","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid_message"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_kind_of_bad_frame_gets_its_documented_code(frame: bytes, code: str) -> None:
    with pytest.raises(DecodeFailure) as failure:
        JSON.decode(frame)
    assert failure.value.code == code
    assert failure.value.message


def test_valid_frames_decode_to_their_messages() -> None:
    assert JSON.decode(b'{"type":"hello"}') == Hello()
    assert JSON.decode(b'{"type":"msg","topic":"chat","data":{"a":[1,null]}}') == AppMessage(
        topic="chat", data={"a": [1, None]}
    )
    pose = JSON.decode(b'{"type":"pose",' + HEAD + b',"t":5}')
    assert isinstance(pose, Pose) and pose.head.pos == (0.0, 1.6, 0.0) and pose.t == 5.0


def test_poses_are_left_out_of_the_cycle_collector() -> None:
    """A pose is made and dropped 20 times a second per member: it must not cost the collector's bookkeeping
    (which is safe only while the pose structs cannot hold a reference cycle: see protocol/messages.py)."""
    pose = JSON.decode(b'{"type":"pose",' + HEAD + b',"left":{"pos":[0,1,0],"rot":[0,0,0,1]},"t":5}')
    assert isinstance(pose, Pose) and pose.left is not None
    stored = member_pose(7, pose)
    for struct in (pose, pose.head, pose.left, stored):
        assert not gc.is_tracked(struct), struct


def test_server_frames_omit_absent_fields_and_rename_sender_to_from() -> None:
    head = Transform((0.0, 1.6, 0.0), (0.0, 0.0, 0.0, 1.0))
    tick = strict_json(JSON.encode(Tick(seq=3, t=1.5, poses=[MemberPose(id=9, head=head)])))
    assert tick == {"type": "tick", "seq": 3, "t": 1.5, "poses": [{"id": 9, "head": head_json(head)}]}

    relay = strict_json(JSON.encode(Relay(topic="chat", sender=9, data=None)))
    assert relay == {"type": "msg", "topic": "chat", "from": 9}


def head_json(transform: Transform) -> dict[str, list[float]]:
    return {"pos": list(transform.pos), "rot": list(transform.rot)}
