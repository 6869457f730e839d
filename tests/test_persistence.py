"""Room state that outlives everyone leaving, a restart and a `kill -9`, through a real server and store.

`store_url` (tests/store_fixtures.py) runs the restart test on SQLite, PostgreSQL and DynamoDB (moto) in turn.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from shoal.bench.crash import run_crash_test
from shoal.client import ShoalClient
from shoal.protocol.messages import Ack, Error, Joined
from support.servers import serving

CRASH_ITERATIONS = 3


async def create(client: ShoalClient, entity_id: str, seq: int | None = None, **fields: Any) -> None:
    message = {"type": "entity_create", "id": entity_id, "kind": "cube", **fields}
    if seq is not None:
        message["seq"] = seq
    await client.send_raw(message)


async def acked(client: ShoalClient, seq: int) -> None:
    ack = await client.expect(Ack, timeout=10, match=lambda a: a.seq == seq)
    assert ack.seq == seq


def entities_by_id(joined: Joined) -> dict[str, Any]:
    return {entity.id: entity for entity in joined.entities}


async def test_scene_survives_everyone_leaving_and_a_restart(tmp_path: Path, store_url: str) -> None:
    data = tmp_path / "data"
    async with serving(data, store_url=store_url) as server:
        ann = await ShoalClient.connect(server.ws_url, name="Ann")
        bob = await ShoalClient.connect(server.ws_url, name="Bob")
        await ann.join("studio")
        await bob.join("studio")
        await create(ann, "table", 1, persistent=True, pos=[1, 0, 2], props={"material": "oak"})
        await create(bob, "lamp", 2, persistent=True, owned=False, props={"on": True})
        await create(bob, "scratch", 3)  # not persistent: leaves with Bob
        await acked(ann, 1)
        await acked(bob, 2)
        await acked(bob, 3)
        await bob.send_raw({"type": "entity_update", "id": "lamp", "props": {"on": False}, "seq": 4})
        await acked(bob, 4)
        await ann.close()
        await bob.close()

    async with serving(data, store_url=store_url) as server:
        carol = await ShoalClient.connect(server.ws_url, name="Carol")
        joined = await carol.join("studio")
        scene = entities_by_id(joined)
        assert sorted(scene) == ["lamp", "table"]
        assert scene["table"].pos == (1.0, 0.0, 2.0) and scene["table"].props == {"material": "oak"}
        assert scene["lamp"].props == {"on": False}
        assert all(entity.owner is None for entity in scene.values())  # nobody owns anything after a restart
        status, state = await server.get("/api/rooms/studio")
        assert status == 200 and sorted(e["id"] for e in state["entities"]) == ["lamp", "table"]
        await carol.close()


async def test_room_emptied_and_rejoined_at_once_sees_its_latest_state(tmp_path: Path) -> None:
    async with serving(tmp_path / "data") as server:
        for n in range(5):
            client = await ShoalClient.connect(server.ws_url, name=f"Visitor {n}")
            joined = await client.join("gallery")
            assert len(joined.entities) == n
            await create(client, f"piece-{n}", persistent=True)
            await client.send_raw({"type": "entity_update", "id": f"piece-{n}", "props": {"by": n}})
            await client.close()  # the room unloads; the next join loads it again


async def test_stored_room_is_served_over_rest_when_nobody_is_there(tmp_path: Path) -> None:
    async with serving(tmp_path / "data") as server:
        client = await ShoalClient.connect(server.ws_url)
        await client.join("atelier")
        await create(client, "easel", 1, persistent=True)
        await acked(client, 1)
        status, live = await server.get("/api/rooms/atelier")
        assert status == 200 and live["live"] is True and len(live["members"]) == 1
        await client.close()
        await asyncio.sleep(0.05)
        status, stored = await server.get("/api/rooms/atelier")
        assert status == 200 and stored["live"] is False and stored["members"] == []
        assert [e["id"] for e in stored["entities"]] == ["easel"]
        assert (await server.get("/api/rooms/nowhere"))[0] == 404
        status, body = await server.get("/api/rooms/..%2Fetc")
        assert status in (400, 404) and "error" in body


async def test_refused_reliable_change_reports_its_seq(tmp_path: Path) -> None:
    async with serving(tmp_path / "data", max_entities_per_member=1) as server:
        client = await ShoalClient.connect(server.ws_url)
        await client.join("quota")
        await create(client, "one", 1, persistent=True)
        await acked(client, 1)
        await create(client, "two", 2, persistent=True)
        error = await client.expect(Error, timeout=5)
        assert (error.code, error.seq) == ("quota_exceeded", 2)
        await client.close()


async def test_every_acknowledged_change_survives_kill_9(tmp_path: Path) -> None:
    report = await run_crash_test(CRASH_ITERATIONS, tmp_path / "data", seed=1234)
    assert report.lost == [], f"acknowledged changes lost after kill -9: {report.lost}"
    assert report.iterations == CRASH_ITERATIONS
    assert report.acknowledged > 10, "the writer should have had many changes acknowledged"
