"""`fan_out`: a tick frame written to every member's socket, backed-up sockets left to the caller."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shoal.transport.frames import fan_out


@dataclass
class FakeSocket:
    buffered: int = 0
    closing: bool = False
    written: list[bytes] = field(default_factory=list)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        self.written.append(data)


@dataclass
class FakeLink:
    transport: FakeSocket
    closing: bool = False
    congested_since: float | None = None


@dataclass
class FakeMember:
    link: FakeLink | None


def test_fan_out_writes_to_healthy_sockets_and_leaves_backed_up_ones_to_the_caller() -> None:
    members = [
        FakeMember(None),
        FakeMember(FakeLink(FakeSocket(), closing=True)),
        FakeMember(FakeLink(FakeSocket(closing=True))),  # the peer is gone; its handler has not cleaned up yet
        FakeMember(FakeLink(FakeSocket(buffered=70_000), congested_since=5.0)),
        FakeMember(FakeLink(FakeSocket(buffered=64_000), congested_since=3.0)),  # at the limit: written, relieved
        FakeMember(FakeLink(FakeSocket())),
        FakeMember(FakeLink(FakeSocket(buffered=90_000))),
    ]
    written, backed_up = fan_out(members, b"tick", 64_000)
    assert written == 2
    assert backed_up == [members[3].link, members[6].link]
    sockets = [member.link.transport for member in members if member.link is not None]
    assert [socket.written for socket in sockets] == [[], [], [], [b"tick"], [b"tick"], []]
    assert [member.link.congested_since for member in members[3:]] == [5.0, None, None, None]
    assert fan_out([], b"tick", 0) == (0, None)


def test_fan_out_passes_a_sockets_error_on() -> None:
    class BrokenSocket(FakeSocket):
        def write(self, data: bytes) -> None:
            raise RuntimeError("socket is gone")

    with pytest.raises(RuntimeError, match="socket is gone"):
        fan_out([FakeMember(FakeLink(BrokenSocket()))], b"tick", 64_000)
