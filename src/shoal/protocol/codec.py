"""Codecs turn frames into client messages and server messages into frames.

A codec is chosen per connection at the handshake (`Sec-WebSocket-Protocol`). The room engine encodes
each frame once per codec in use and hands the same bytes to every member that speaks it. Protocol v1
has two codecs: JSON text (here) and compact binary (`shoal.protocol.binary`).

A tick is built from pose entries: each changed pose is encoded once per codec (`pose_entry`) and each
member's tick frame is assembled from those bytes (`tick_encoder`), so a room that sends different members
different poses (interest management) still encodes every pose once. A codec may keep a pose in the bytes
it arrived in (`shoal.protocol.binary.PackedPose`) and copy them into its entries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import msgspec

from shoal.protocol.errors import ErrorCode
from shoal.protocol.messages import ClientMessage, ClientMessages, MemberJoints, MemberPose, ServerMessage, Tick

if TYPE_CHECKING:
    from shoal.protocol.binary import PackedPose
    from shoal.protocol.joints import PackedJoints


class DecodeFailure(Exception):
    """A frame that is not a valid client message. `code` is the error code to reply with."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PoseSource(Protocol):
    """A member as a codec sees it when putting its latest pose into a tick (`shoal.core.member.Member`)."""

    @property
    def id(self) -> int: ...

    @property
    def pose(self) -> MemberPose | None:
        """The pose as floats (decoded from `packed` on first use)."""
        ...

    @property
    def packed(self) -> PackedPose | None:
        """The pose as the binary frame it arrived in, when it did."""
        ...


class Codec(Protocol):
    """What the engine needs from a wire format."""

    name: str
    binary: bool
    """True when frames are sent as binary WebSocket messages, False for text."""
    subprotocol: str
    """The `Sec-WebSocket-Protocol` value that selects this codec."""

    def decode(self, frame: bytes) -> ClientMessage | PackedPose:
        """Decode and validate one client frame; raise `DecodeFailure` if it is not a valid message.
        A codec may return a pose as a `PackedPose`: validated, kept as its bytes."""
        ...

    def encode(self, message: ServerMessage) -> bytes:
        """Encode one server message as the payload of one frame."""
        ...

    def pose_entry(self, sender: PoseSource, tick_t: float) -> bytes:
        """`sender`'s latest pose as it appears in a tick frame whose time is `tick_t` (ms). A codec may
        copy the bytes of `sender.packed` instead of encoding `sender.pose`."""
        ...

    def tick_encoder(self, tick: Tick) -> TickEncoder:
        """Encode `tick`'s header and entity changes once; the result turns a list of pose entries (from
        `pose_entry`, same `tick.t`) into a complete tick frame. `tick.poses` is not read."""
        ...

    def joints_entry(self, member_id: int, joints: MemberJoints | PackedJoints) -> bytes:
        """Member `member_id`'s hand joints as they appear in a tick's joints section. Binary copies the bytes of
        `PackedJoints`; other codecs unpack them."""
        ...

    def joints_tick_encoder(self, tick: Tick) -> JointsTickEncoder:
        """Like `tick_encoder`, for frames that also carry hand joints: the result takes the pose entries and
        the joints entries (from `joints_entry`, at least one). `tick.poses` and `tick.joints` are not read."""
        ...


TickEncoder = Callable[[Sequence[bytes]], bytes]
"""Pose entries -> one tick frame (see `Codec.tick_encoder`)."""
JointsTickEncoder = Callable[[Sequence[bytes], Sequence[bytes]], bytes]
"""Pose entries and joints entries -> one tick frame (see `Codec.joints_tick_encoder`)."""


class JsonCodec:
    """Shoal protocol v1 as JSON text frames (`Sec-WebSocket-Protocol: shoal.v1.json`, the default).

    Output is strict RFC 8259 JSON: the decoder refuses NaN, Infinity and numbers that overflow a
    double, so no non-finite number can reach a peer.
    """

    name = "json"
    binary = False
    subprotocol = "shoal.v1.json"

    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(ClientMessages)
        self._encoder = msgspec.json.Encoder()

    def decode(self, frame: bytes) -> ClientMessage:
        try:
            return self._decoder.decode(frame)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if "`$.type`" in text or "required field `type`" in text:
                raise DecodeFailure(ErrorCode.UNKNOWN_TYPE, text) from None
            raise DecodeFailure(ErrorCode.INVALID_MESSAGE, text) from None
        except msgspec.DecodeError as exc:
            raise DecodeFailure(ErrorCode.BAD_JSON, str(exc)) from None
        except UnicodeDecodeError:
            raise DecodeFailure(ErrorCode.BAD_JSON, "frame is not valid UTF-8") from None
        except RecursionError:
            raise DecodeFailure(ErrorCode.INVALID_MESSAGE, "JSON nested too deeply") from None

    def encode(self, message: ServerMessage) -> bytes:
        return self._encoder.encode(message)

    def pose_entry(self, sender: PoseSource, tick_t: float) -> bytes:
        return self._encoder.encode(sender.pose)

    def tick_encoder(self, tick: Tick) -> TickEncoder:
        head, tail = self._around_poses(tick)
        join = b",".join
        return lambda entries: b"".join((head, join(entries), tail))

    def joints_entry(self, member_id: int, joints: MemberJoints | PackedJoints) -> bytes:
        return self._encoder.encode(joints if type(joints) is MemberJoints else joints.unpack(member_id))

    def joints_tick_encoder(self, tick: Tick) -> JointsTickEncoder:
        head, tail = self._around_poses(tick)
        tail = tail[:-1] + b',"joints":['  # a tick's JSON object ends with its `}`: the joints go last
        join = b",".join
        return lambda entries, joints: b"".join((head, join(entries), tail, join(joints), b"]}"))

    def _around_poses(self, tick: Tick) -> tuple[bytes, bytes]:
        """The tick's JSON text before and after the pose entries."""
        # `poses` is the first list field of a tick, after two numbers: its empty form occurs once.
        head, _, tail = self._encoder.encode(_without_poses(tick)).partition(b'"poses":[]')
        return head + b'"poses":[', b"]" + tail


def _without_poses(tick: Tick) -> Tick:
    if not tick.poses:
        return tick
    return Tick(
        seq=tick.seq, t=tick.t, poses=[], entities=tick.entities, removed=tick.removed, full=tick.full,
        joints=tick.joints,
    )  # fmt: skip


JSON = JsonCodec()
"""The shared JSON codec instance (codecs are stateless)."""
