"""The `Store` contract and the group-commit `StoreWriter`, run against every backend.

Each test gets a fresh store URL on a real backend (`store_url`, from tests/store_fixtures.py): SQLite in
tmp_path, a new schema on the PostgreSQL server, new tables on a moto DynamoDB server process. "Readable
from a fresh store" always means a second `Store` opened on the same URL, never the one that wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from shoal.store import (
    Batch,
    EntityRecord,
    PositionRecord,
    RoomRecord,
    Store,
    StoreConflict,
    StoreError,
    StoreWriter,
    open_store,
)
from shoal.store import sqlite as sqlite_store
from shoal.store.accounts import AvatarRecord, BanRecord, RoomAccessRecord, SessionRecord, UserRecord
from support.waiting import wait_until


@contextlib.asynccontextmanager
async def opened(url: str, data_dir: Path) -> AsyncIterator[Store]:
    store = open_store(url, data_dir)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(store_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with opened(store_url, tmp_path) as store:
        yield store


async def fresh_load(url: str, data_dir: Path, room: str) -> RoomRecord | None:
    async with opened(url, data_dir) as store:
        return await store.load_room(room)


def entity(room: str, entity_id: str, version: int = 1, **fields: object) -> EntityRecord:
    """An entity whose data is `fields` as compact JSON."""
    return EntityRecord(room, entity_id, version, msgspec.json.encode(fields))


def batch_of(*records: EntityRecord) -> Batch:
    batch = Batch()
    for record in records:
        batch.put_entity(record)
    return batch


NOT_JSON = EntityRecord("studio", "broken", 1, b"{not json")


async def let_the_loop_run(turns: int = 5) -> None:
    """Give every ready task (the writer's included) a few turns, without waiting any real time."""
    for _ in range(turns):
        await asyncio.sleep(0)


# ---- the store ---------------------------------------------------------------------------------------


async def test_empty_store_knows_no_rooms(store: Store) -> None:
    assert await store.list_rooms() == []
    assert await store.load_room("studio") is None
    assert await store.load_positions("studio") == []
    await store.commit(Batch())  # an empty batch is a no-op, not an error
    assert await store.list_rooms() == []


async def test_committed_batch_loads_back_exactly(store: Store) -> None:
    batch = Batch()
    batch.put_room("studio", b'{"title":"Studio"}')
    batch.put_entity(EntityRecord("studio", "table", 3, b'{"kind":"table","pos":[1,0,2]}'))
    batch.put_entity(EntityRecord("studio", "caf\u00e9-lamp", 7, '{"label":"caf\u00e9 \u2615"}'.encode()))
    batch.put_entity(EntityRecord("studio", "Zebra", 1, b"[]"))
    batch.put_entity(EntityRecord("gallery", "frame", 1, b'{"kind":"frame"}'))
    batch.put_position(PositionRecord("studio", "ann", b"\x00\x01pose", 1_700_000_000.25))
    await store.commit(batch)

    room = await store.load_room("studio")
    assert room == RoomRecord(
        "studio",
        b'{"title":"Studio"}',
        [  # by id, in code point order on every backend
            EntityRecord("studio", "Zebra", 1, b"[]"),
            EntityRecord("studio", "caf\u00e9-lamp", 7, '{"label":"caf\u00e9 \u2615"}'.encode()),
            EntityRecord("studio", "table", 3, b'{"kind":"table","pos":[1,0,2]}'),
        ],
    )
    # a room that only ever received entities exists, with empty metadata
    assert await store.load_room("gallery") == RoomRecord("gallery", b"", [entity("gallery", "frame", kind="frame")])
    assert await store.load_positions("studio") == [PositionRecord("studio", "ann", b"\x00\x01pose", 1_700_000_000.25)]


async def test_later_write_to_the_same_key_wins_within_a_batch(store: Store) -> None:
    await store.commit(batch_of(entity("studio", "deleted-then-put"), entity("studio", "put-then-deleted")))
    batch = Batch()
    batch.put_room("studio", b"first")
    batch.put_room("studio", b"second")
    batch.put_entity(entity("studio", "twice", 1, n=1))
    batch.put_entity(entity("studio", "twice", 2, n=2))
    batch.delete_entity("studio", "deleted-then-put")
    batch.put_entity(entity("studio", "deleted-then-put", 5))
    batch.put_entity(entity("studio", "put-then-deleted", 9))
    batch.delete_entity("studio", "put-then-deleted")
    batch.put_position(PositionRecord("studio", "ann", b"old", 1.0))
    batch.put_position(PositionRecord("studio", "ann", b"new", 2.0))
    assert len(batch) == 5
    await store.commit(batch)

    room = await store.load_room("studio")
    assert room is not None and room.meta == b"second"
    assert {e.id: e.version for e in room.entities} == {"deleted-then-put": 5, "twice": 2}
    assert room.entities[1].data == b'{"n":2}'
    assert await store.load_positions("studio") == [PositionRecord("studio", "ann", b"new", 2.0)]


async def test_delete_removes_the_entity_and_keeps_the_room(store: Store) -> None:
    await store.commit(batch_of(entity("studio", "a"), entity("studio", "b")))
    batch = Batch()
    batch.delete_entity("studio", "a")
    batch.delete_entity("studio", "never-existed")  # deleting what is not there is not an error
    await store.commit(batch)
    room = await store.load_room("studio")
    assert room is not None and [e.id for e in room.entities] == ["b"]

    batch = Batch()
    batch.delete_entity("studio", "b")
    await store.commit(batch)
    assert await store.load_room("studio") == RoomRecord("studio", b"", [])
    assert await store.list_rooms() == ["studio"]


async def test_put_replaces_a_stored_entity(store: Store) -> None:
    await store.commit(batch_of(entity("studio", "lamp", 1, on=True)))
    await store.commit(batch_of(entity("studio", "lamp", 2, on=False)))
    assert await store.load_room("studio") == RoomRecord("studio", b"", [entity("studio", "lamp", 2, on=False)])


@pytest.mark.parametrize(
    "invalid",
    [NOT_JSON, EntityRecord("studio", "negative", -1, b"{}"), EntityRecord("studio", "not-utf8", 1, b'"\xff"')],
    ids=["data-not-json", "negative-version", "data-not-utf8"],
)
async def test_failing_batch_writes_nothing(store_url: str, tmp_path: Path, invalid: EntityRecord) -> None:
    async with opened(store_url, tmp_path) as store:
        await store.commit(batch_of(entity("studio", "kept", 1, v=1)))
        batch = Batch()
        batch.put_room("studio", b"new meta")
        batch.put_room("attic", b"a new room")
        batch.put_entity(entity("studio", "kept", 2, v=2))
        batch.put_entity(entity("studio", "added"))
        batch.put_position(PositionRecord("studio", "ann", b"pose", 5.0))
        batch.put_entity(invalid)  # last, so the rows before it are written first, then rolled back
        with pytest.raises(StoreError):
            await store.commit(batch)

        expected = RoomRecord("studio", b"", [entity("studio", "kept", 1, v=1)])
        assert await store.load_room("studio") == expected
        assert await store.list_rooms() == ["studio"]
        assert await store.load_positions("studio") == []
        await store.commit(batch_of(entity("studio", "after")))  # the store still works
    assert await fresh_load(store_url, tmp_path, "attic") is None


async def test_reopened_store_keeps_everything(store_url: str, tmp_path: Path) -> None:
    async with opened(store_url, tmp_path) as store:
        batch = batch_of(*(entity("studio", f"e{n:03}", n, n=n) for n in range(150)))
        batch.put_room("studio", b"meta")
        batch.put_position(PositionRecord("studio", "bob", b"pose", 3.5))
        await store.commit(batch)
    async with opened(store_url, tmp_path) as store:
        room = await store.load_room("studio")
        assert room is not None and room.meta == b"meta"
        assert room.entities == [entity("studio", f"e{n:03}", n, n=n) for n in range(150)]
        assert await store.load_positions("studio") == [PositionRecord("studio", "bob", b"pose", 3.5)]
        assert await store.list_rooms() == ["studio"]


async def test_migrations_are_idempotent_even_when_two_stores_open_at_once(store_url: str, tmp_path: Path) -> None:
    first, second = open_store(store_url, tmp_path), open_store(store_url, tmp_path)
    await asyncio.gather(first.open(), second.open())  # both find an empty database and migrate it
    try:
        await first.commit(batch_of(entity("studio", "a")))
        assert await second.load_room("studio") == RoomRecord("studio", b"", [entity("studio", "a")])
        await first.open()  # opening an open store is a no-op
    finally:
        await asyncio.gather(first.close(), second.close())
    async with opened(store_url, tmp_path) as third:  # a third open finds the schema current
        assert await third.list_rooms() == ["studio"]


async def test_two_sqlite_stores_opening_a_fresh_database_at_once_both_open(tmp_path: Path) -> None:
    # SQLite refuses the switch to WAL at once ("database is locked", no busy wait) when another connection
    # is making the same switch; this raced in about one start in four before the switch was retried.
    for attempt in range(20):
        path = tmp_path / f"fresh-{attempt}.sqlite3"
        first, second = sqlite_store.SqliteStore(path), sqlite_store.SqliteStore(path)
        try:
            await asyncio.gather(first.open(), second.open())
            assert await second.list_rooms() == []
        finally:
            await asyncio.gather(first.close(), second.close())


async def test_list_rooms_names_every_room_with_stored_state(store: Store) -> None:
    batch = batch_of(entity("b-room", "x"), entity("A-room", "y"))
    batch.put_room("c-room", b"")
    batch.put_position(PositionRecord("only-positions", "ann", b"pose", 1.0))  # positions alone are not a room
    await store.commit(batch)
    assert await store.list_rooms() == ["A-room", "b-room", "c-room"]


async def test_positions_are_kept_per_room_and_user(store: Store) -> None:
    batch = Batch()
    for room in ("studio", "gallery"):
        for user in ("bob", "ann"):
            batch.put_position(PositionRecord(room, user, f"{room}:{user}".encode(), 10.0))
    await store.commit(batch)
    batch = Batch()
    batch.put_position(PositionRecord("studio", "ann", b"moved", 11.5))
    await store.commit(batch)
    assert await store.load_positions("studio") == [
        PositionRecord("studio", "ann", b"moved", 11.5),
        PositionRecord("studio", "bob", b"studio:bob", 10.0),
    ]
    assert [p.data for p in await store.load_positions("gallery")] == [b"gallery:ann", b"gallery:bob"]


async def test_using_a_closed_store_is_a_store_error(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url, tmp_path)
    with pytest.raises(StoreError, match="not open"):
        await store.load_room("studio")
    await store.open()
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="not open"):
        await store.commit(batch_of(entity("studio", "a")))


# ---- the group-commit writer -------------------------------------------------------------------------


async def test_writer_groups_many_changes_into_few_commits(store: Store, store_url: str, tmp_path: Path) -> None:
    writer = StoreWriter(store, interval=0.02)
    await writer.start()
    acked: list[str] = []

    async def client(n: int) -> None:
        for k in range(10):
            entity_id = f"c{n:02}-{k}"
            writer.put_entity(entity("studio", entity_id, k))
            committed = writer.committed()
            assert not committed.done()  # never resolved before its batch is committed
            await committed
            acked.append(entity_id)

    await asyncio.gather(*(client(n) for n in range(20)))
    await writer.stop()

    assert len(acked) == 200 and writer.stats.changes == 200 and writer.stats.committed_rows == 200
    # one commit per round of the 20 clients at most, never one per change
    assert 1 <= writer.stats.commits <= 12, writer.stats
    assert writer.stats.failed_commits == 0
    room = await fresh_load(store_url, tmp_path, "studio")
    assert room is not None and sorted(e.id for e in room.entities) == sorted(acked)


async def test_committed_resolves_only_once_a_fresh_store_can_read_the_change(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    writer = StoreWriter(store, interval=0.05)
    await writer.start()
    try:
        assert writer.committed().done()  # nothing queued: nothing to wait for
        writer.put_room("studio", b"meta")
        writer.put_entity(entity("studio", "lamp", 1, on=True))
        committed = writer.committed()
        assert writer.committed() is committed  # every caller of one batch shares its future
        await let_the_loop_run()
        assert not committed.done() and writer.stats.commits == 0  # still inside the 50 ms window
        await asyncio.wait_for(committed, 5)
        assert writer.stats.commits == 1 and writer.stats.last_batch == 2
        assert await fresh_load(store_url, tmp_path, "studio") == RoomRecord(
            "studio", b"meta", [entity("studio", "lamp", 1, on=True)]
        )

        # a change queued once the writer has taken a batch goes into the next one, which commits after it
        writer.put_entity(entity("studio", "lamp", 2, on=False))
        first = writer.committed()
        await wait_until(lambda: writer.pending == 0, timeout=5, what="the writer taking the batch")
        writer.put_entity(entity("studio", "lamp", 3, on=True))
        second = writer.committed()
        assert second is not first
        await asyncio.wait_for(second, 5)
        assert first.done() and first.exception() is None
        room = await fresh_load(store_url, tmp_path, "studio")
        assert room is not None and room.entities == [entity("studio", "lamp", 3, on=True)]
    finally:
        await writer.stop()


async def test_writer_stop_flushes_what_is_pending(store: Store, store_url: str, tmp_path: Path) -> None:
    writer = StoreWriter(store, interval=0.05)
    await writer.start()
    for n in range(30):
        writer.put_entity(entity("studio", f"e{n:02}"))
    writer.put_position(PositionRecord("studio", "ann", b"last pose", 9.0))
    committed = writer.committed()
    await writer.stop()  # at once: well inside the 50 ms window
    assert committed.done() and committed.exception() is None
    with pytest.raises(StoreError, match="stopped"):
        writer.put_entity(entity("studio", "too-late"))
    async with opened(store_url, tmp_path) as fresh:
        room = await fresh.load_room("studio")
        assert room is not None and [e.id for e in room.entities] == [f"e{n:02}" for n in range(30)]
        assert await fresh.load_positions("studio") == [PositionRecord("studio", "ann", b"last pose", 9.0)]


async def test_positions_ride_along_or_commit_on_their_own_once_per_position_interval(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    writer = StoreWriter(store, interval=0.01, position_interval=0.3)
    await writer.start()
    try:
        # members crossing their one-second mark at different moments: one transaction, not one per window
        for n in range(10):
            writer.put_position(PositionRecord("studio", f"user{n}", b"first", float(n)))
            await asyncio.sleep(0.02)
        assert writer.stats.commits == 0 and writer.pending == 10
        await wait_until(lambda: writer.stats.commits == 1, timeout=5, what="the positions' own commit")
        assert writer.stats.last_batch == 10 and writer.pending == 0

        # a position queued before an entity change is committed with it, well before position_interval
        writer.put_position(PositionRecord("studio", "user0", b"second", 20.0))
        writer.put_entity(entity("studio", "lamp"))
        await asyncio.wait_for(writer.committed(), 0.25)
        assert writer.stats.commits == 2 and writer.stats.last_batch == 2
        positions = await writer.store.load_positions("studio")
        assert [p.data for p in positions if p.user == "user0"] == [b"second"]
    finally:
        await writer.stop()
    with pytest.raises(StoreError, match="stopped"):
        writer.put_position(PositionRecord("studio", "ann", b"too late", 1.0))


async def test_commit_failure_fails_the_batch_futures_and_the_writer_goes_on(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    writer = StoreWriter(store, interval=0.01)
    await writer.start()
    try:
        writer.put_entity(entity("studio", "innocent"))
        one_caller = writer.committed()
        writer.put_entity(NOT_JSON)
        another_caller = writer.committed()
        for committed in (one_caller, another_caller):
            with pytest.raises(StoreError):
                await asyncio.wait_for(committed, 5)
        assert writer.stats.failed_commits == 1 and writer.stats.commits == 0
        assert await fresh_load(store_url, tmp_path, "studio") is None  # the whole batch, not a part

        writer.put_entity(entity("studio", "later"))
        await asyncio.wait_for(writer.committed(), 5)
        assert writer.stats.commits == 1
        room = await fresh_load(store_url, tmp_path, "studio")
        assert room is not None and [e.id for e in room.entities] == ["later"]
    finally:
        await writer.stop()


# ---- backend specifics ----------------------------------------------------------------------------------


async def test_writer_commits_early_when_max_batch_changes_are_pending(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'early.db'}?synchronous=normal"  # no fsync: the time measured is the writer's
    async with opened(url, tmp_path) as store:
        writer = StoreWriter(store, interval=0.05, max_batch=5)
        await writer.start()
        started = time.perf_counter()
        for n in range(4):
            writer.put_entity(entity("studio", f"e{n}"))
        await let_the_loop_run()
        assert writer.stats.commits == 0 and writer.pending == 4  # below max_batch: waiting for the interval
        writer.put_entity(entity("studio", "e4"))
        await asyncio.wait_for(writer.committed(), 5)
        assert time.perf_counter() - started < 0.045, "a full batch must not wait for the interval"
        assert writer.stats.commits == 1 and writer.stats.last_batch == 5
        await writer.stop()


async def test_changes_to_one_entity_faster_than_the_interval_still_commit_every_interval(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hot.db'}?synchronous=normal"
    async with opened(url, tmp_path) as store:
        writer = StoreWriter(store, interval=0.02)
        await writer.start()
        started = time.perf_counter()
        for version in range(1, 31):  # one hot entity, changed every 5 ms for 150 ms
            writer.put_entity(entity("studio", "hot", version))
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        await writer.stop()
        assert writer.stats.commits >= 3, (elapsed, writer.stats)  # each 20 ms window closes on time
        room = await store.load_room("studio")
        assert room is not None and room.entities == [entity("studio", "hot", 30)]


def test_writer_refuses_an_interval_beyond_the_durability_contract(tmp_path: Path) -> None:
    store = open_store("", tmp_path)
    with pytest.raises(ValueError, match="interval"):
        StoreWriter(store, interval=0.2)
    with pytest.raises(ValueError, match="max_batch"):
        StoreWriter(store, max_batch=0)


async def test_sqlite_file_is_wal_with_the_schema_version_recorded(tmp_path: Path) -> None:
    path = tmp_path / "shoal.db"
    async with opened("", tmp_path) as store:
        await store.commit(batch_of(entity("studio", "a")))
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert db.execute("PRAGMA user_version").fetchone() == (len(sqlite_store.MIGRATIONS),)
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_sqlite_refuses_a_schema_newer_than_it_knows(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 99")
    store = open_store(f"sqlite:///{path}", tmp_path)
    with pytest.raises(StoreError, match="version 99"):
        await store.open()


async def test_sqlite_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = open_store(f"sqlite:///{blocker / 'shoal.db'}", tmp_path)
    with pytest.raises(StoreError, match="cannot open"):
        await store.open()


async def test_postgres_records_each_migration_once(postgres_store_url: str, tmp_path: Path) -> None:
    import asyncpg

    from shoal.store import postgres

    for _ in range(2):
        async with opened(postgres_store_url, tmp_path):
            pass
    base_url, _, schema = postgres_store_url.partition("?schema=")
    connection = await asyncpg.connect(base_url)
    try:
        versions = await connection.fetch(f"SELECT version FROM {schema}.shoal_migrations ORDER BY version")
    finally:
        await connection.close()
    assert [row["version"] for row in versions] == list(range(1, len(postgres.MIGRATIONS) + 1))


async def test_postgres_unreachable_server_is_a_store_error(tmp_path: Path) -> None:
    store = open_store("postgresql://postgres@127.0.0.1:1/test", tmp_path)  # nothing listens on port 1
    with pytest.raises(StoreError, match="cannot open"):
        await store.open()


async def test_dynamodb_transaction_refused_by_the_server_writes_nothing(
    dynamodb_store_url: str, tmp_path: Path
) -> None:
    oversized = EntityRecord("studio", "huge", 1, b'"' + b"x" * 410_000 + b'"')  # DynamoDB items stop at 400 KB
    async with opened(dynamodb_store_url, tmp_path) as store:
        batch = batch_of(*(entity("studio", f"e{n:02}") for n in range(50)), oversized)
        batch.put_room("studio", b"meta")
        with pytest.raises(StoreError, match="size"):
            await store.commit(batch)
        assert await store.load_room("studio") is None


async def test_dynamodb_batches_over_100_items_are_atomic_per_100(dynamodb_store_url: str, tmp_path: Path) -> None:
    """The documented limit: a failure in a later chunk leaves the earlier chunks written."""
    oversized = EntityRecord("studio", "zz-huge", 1, b'"' + b"x" * 410_000 + b'"')
    async with opened(dynamodb_store_url, tmp_path) as store:
        batch = batch_of(*(entity("studio", f"e{n:03}") for n in range(120)), oversized)
        with pytest.raises(StoreError, match="first 100 of 122 items were written"):
            await store.commit(batch)
        room = await store.load_room("studio")
        assert room is not None and len(room.entities) == 99  # the room row, then e000..e098


# ---- accounts and room access (shoal.store.accounts) ---------------------------------------------------


def user(user_id: str, username: str | None, **fields: object) -> UserRecord:
    defaults: dict[str, object] = {"display_name": user_id.title(), "color": "#3cb44b", "created_at": 1_700_000_000.5}
    return UserRecord(id=user_id, username=username, **{**defaults, **fields})  # type: ignore[arg-type]


async def test_users_round_trip_and_usernames_stay_unique(store_url: str, tmp_path: Path) -> None:
    ada = user("u-ada", "ada", password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
    oidc = user("o-9f", None, provider="oidc")  # accounts from an OIDC provider have no username
    async with opened(store_url, tmp_path) as store:
        await store.create_user(ada)
        await store.create_user(oidc)
        with pytest.raises(StoreConflict):
            await store.create_user(user("u-other", "ada"))  # the name is taken
        with pytest.raises(StoreConflict):
            await store.create_user(user("u-ada", "someone-else"))  # the id is taken
        with pytest.raises(StoreError, match="no user"):
            await store.update_user(user("u-ghost", "ghost"))
        renamed = msgspec.structs.replace(ada, display_name="Ada L.", color="#4363d8", avatar_version=2)
        await store.update_user(renamed)

    async with opened(store_url, tmp_path) as store:  # a fresh store reads what the first one wrote
        assert await store.load_user("u-ada") == renamed
        assert await store.find_user("ada") == renamed
        assert await store.find_user("nobody") is None
        assert await store.list_users() == [oidc, renamed]  # sorted by id; the refused ones are not there
        await store.put_session(SessionRecord("u-ada", "s1", "hash", 2e9, 1e9))
        await store.put_avatar(AvatarRecord("u-ada", "image/png", b"\x89PNG...", 2))
        assert await store.delete_user("u-ada") is True
        assert await store.delete_user("u-ada") is False
        assert await store.load_user("u-ada") is None
        assert await store.load_session("u-ada", "s1") is None
        assert await store.load_avatar("u-ada") is None
        await store.create_user(user("u-new", "ada"))  # the name is free again
        assert (await store.find_user("ada")) == user("u-new", "ada")


async def test_avatar_of_a_mebibyte_round_trips_and_a_smaller_one_replaces_it(store: Store) -> None:
    import os

    big = os.urandom(1024 * 1024)  # incompressible, larger than one DynamoDB item
    await store.put_avatar(AvatarRecord("u-ada", "image/webp", big, 1))
    assert await store.load_avatar("u-ada") == AvatarRecord("u-ada", "image/webp", big, 1)
    await store.put_avatar(AvatarRecord("u-ada", "image/png", b"small", 2))
    assert await store.load_avatar("u-ada") == AvatarRecord("u-ada", "image/png", b"small", 2)
    assert await store.load_avatar("u-bob") is None


async def test_sessions_rotate_and_end_one_or_all(store: Store) -> None:
    await store.put_session(SessionRecord("u-ada", "phone", "h1", 2e9, 1e9))
    await store.put_session(SessionRecord("u-ada", "laptop", "h2", 2e9, 1e9))
    await store.put_session(SessionRecord("u-bob", "phone", "h3", 2e9, 1e9))
    await store.put_session(SessionRecord("u-ada", "phone", "h1-rotated", 2.5e9, 1e9))
    assert await store.load_session("u-ada", "phone") == SessionRecord("u-ada", "phone", "h1-rotated", 2.5e9, 1e9)
    await store.delete_session("u-ada", "phone")
    assert await store.load_session("u-ada", "phone") is None
    await store.put_session(SessionRecord("u-ada", "tablet", "h4", 2e9, 1e9))
    assert await store.delete_sessions("u-ada") == 2
    assert await store.load_session("u-ada", "laptop") is None
    assert await store.load_session("u-bob", "phone") == SessionRecord("u-bob", "phone", "h3", 2e9, 1e9)


async def test_room_access_keeps_settings_roles_and_bans_per_room(store_url: str, tmp_path: Path) -> None:
    async with opened(store_url, tmp_path) as store:
        assert await store.load_room_access("studio") == RoomAccessRecord("studio", None, {}, [])
        await store.put_room_settings("studio", b'{"private":true,"max_members":8}')
        await store.put_room_role("studio", "u-ada", "owner")
        await store.put_room_role("studio", "u-bob", "viewer")
        await store.put_room_role("studio", "u-bob", "moderator")
        await store.put_room_role("studio", "u-cy", "member")
        await store.put_room_role("studio", "u-cy", None)
        await store.put_room_role("attic", "u-cy", "owner")
        await store.put_room_ban(BanRecord("studio", "u-eve", 1_800_000_000.5, "spam", "u-bob"))
        await store.put_room_ban(BanRecord("studio", "addr:10.1.2.3", None, "", "u-ada"))
        await store.put_room_ban(BanRecord("studio", "u-mal", None))
        await store.delete_room_ban("studio", "u-mal")
        with pytest.raises(StoreError):
            await store.put_room_settings("studio", b"{not json")
        assert await store.load_room_access("studio") == RoomAccessRecord(
            "studio",
            b'{"private":true,"max_members":8}',
            {"u-ada": "owner", "u-bob": "moderator"},
            [
                BanRecord("studio", "addr:10.1.2.3", None, "", "u-ada"),
                BanRecord("studio", "u-eve", 1.8e9 + 0.5, "spam", "u-bob"),
            ],
        )
    async with opened(store_url, tmp_path) as store:
        assert (await store.load_room_access("attic")).roles == {"u-cy": "owner"}
        assert await store.list_rooms() == []  # access records alone do not make a stored room


async def test_sqlite_upgrade_to_accounts_keeps_the_rooms(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with contextlib.closing(sqlite3.connect(path)) as db:  # a database made by the first schema only
        for statement in sqlite_store.MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO entities VALUES ('studio', 'lamp', 1, '{}')")
        db.execute("INSERT INTO rooms VALUES ('studio', x'')")
        db.execute("PRAGMA user_version = 1")
        db.commit()
    async with opened(f"sqlite:///{path}", tmp_path) as store:
        assert await store.load_room("studio") == RoomRecord("studio", b"", [EntityRecord("studio", "lamp", 1, b"{}")])
        await store.create_user(user("u-ada", "ada"))
        assert await store.find_user("ada") == user("u-ada", "ada")
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(sqlite_store.MIGRATIONS),)
