"""A dropped member comes back with its resume token: same id, name, colour and room, no duplicate avatar."""

from __future__ import annotations

from shoal.client import ShoalClient
from shoal.protocol.messages import Joined, MemberJoined, MemberLeft
from support.core import CoreDriver, inbox
from support.servers import RunningServer


def test_resume_token_restores_identity_and_room() -> None:
    driver = CoreDriver()
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    token, old_id = ann.resume_token, ann.id
    driver.engine.disconnect(ann, driver.now)
    again = driver.connect()
    messages = inbox(driver.send(again, {"type": "hello", "resume": token}), again)
    assert [m["type"] for m in messages] == ["welcome", "joined"]
    assert messages[0]["resumed"] is True and messages[0]["id"] == old_id
    assert messages[0]["resume_token"] != token  # a new secret for the new session
    assert [(m["id"], m["name"]) for m in messages[1]["members"]] == [(bob.id, "Bob"), (old_id, "Ann")]


def test_resume_token_works_once_and_expires() -> None:
    driver = CoreDriver(resume_window=10)
    (ann,) = driver.in_room("lobby", "Ann")
    token = ann.resume_token
    driver.engine.disconnect(ann, driver.now)
    first = driver.connect()
    assert inbox(driver.send(first, {"type": "hello", "resume": token}), first)[0]["resumed"] is True
    second = driver.connect()
    assert inbox(driver.send(second, {"type": "hello", "resume": token}), second)[0]["resumed"] is False

    (carol,) = driver.in_room("lobby", "Carol")
    token = carol.resume_token
    driver.engine.disconnect(carol, driver.now)
    driver.advance(11)
    driver.engine.tick(driver.now)
    late = driver.connect()
    welcome = inbox(driver.send(late, {"type": "hello", "resume": token}), late)[0]
    assert welcome["resumed"] is False and welcome["id"] != carol.id


def test_unknown_resume_token_starts_a_fresh_session() -> None:
    driver = CoreDriver()
    member = driver.connect()
    welcome = inbox(driver.send(member, {"type": "hello", "name": "Dee", "resume": "not-a-token"}), member)[0]
    assert welcome["resumed"] is False and welcome["id"] == member.id


async def test_dropped_client_resumes_over_the_wire_without_a_duplicate_avatar(server: RunningServer) -> None:
    watcher = await ShoalClient.connect(server.ws_url, name="Watcher")
    await watcher.join("plaza")
    walker = await ShoalClient.connect(server.ws_url, name="Walker")
    await walker.join("plaza")
    await watcher.expect(MemberJoined)
    assert walker.welcome is not None
    token, old_id = walker.welcome.resume_token, walker.id
    await walker.close(code=4009)
    assert (await watcher.expect(MemberLeft)).id == old_id

    back = await ShoalClient.connect(server.ws_url, resume=token)
    assert back.welcome is not None and back.welcome.resumed and back.id == old_id
    joined = await back.expect(Joined)
    assert sorted(m.name for m in joined.members) == ["Walker", "Watcher"]
    rejoined = await watcher.expect(MemberJoined)
    assert (rejoined.member.id, rejoined.member.name) == (old_id, "Walker")
    assert len(server.engine.rooms["plaza"].members) == 2
    await back.close()
    await watcher.close()
