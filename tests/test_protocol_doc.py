"""docs/protocol.md, executed: its JSON examples are sent as they are to a real server, and every answer
must have the documented shape.

The examples are parsed out of the document at test time, so the document and this test cannot drift.
The only substitution is the member ids: the document's ids (Ada's and Bob's, read from its `joined`
example) are replaced by the ids the server actually assigned. Clients are `JsonPeer`s built on the
independent `websockets` library, not Shoal's own client.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from shoal.core.limits import Limits
from shoal.protocol.errors import CloseCode, ErrorCode
from shoal.protocol.messages import ClientMessage, ServerMessage
from support.clients import JsonPeer, greeted_peers, json_peer, strict_json
from support.servers import StartServer

PROTOCOL_MD = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"

OPTIONAL_FIELDS = {
    "left", "right", "t", "pose", "to", "ref", "data", "entities", "removed", "full", "owner", "creator", "joints",
}  # fmt: skip
"""Fields the document says may be absent (null or absent fields are omitted); every other field of an
example must be present in the real message, and the real message may have no field the example lacks."""


def _tags(base: type) -> set[str]:
    found, pending = set(), list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if isinstance(tag := cls.__struct_config__.tag, str):
            found.add(tag)
    return found


CLIENT_TYPES, SERVER_TYPES = _tags(ClientMessage), _tags(ServerMessage)


@dataclass(frozen=True)
class Example:
    section: str
    """The `## ` heading the example appears under."""
    message: dict[str, Any]

    @property
    def direction(self) -> str:
        """`client` for what a client sends, `server` for what it receives, `object` for other JSON."""
        kind = self.message.get("type")
        if self.section.startswith("Server"):
            return "server"
        if kind in CLIENT_TYPES:
            return "client"
        return "server" if kind in SERVER_TYPES else "object"


@cache
def document_examples() -> tuple[Example, ...]:
    """Every ```json block of docs/protocol.md, strictly parsed, with the section it appears in."""
    examples, section = [], ""
    for chunk in re.split(r"^(## .*)$", PROTOCOL_MD.read_text(), flags=re.MULTILINE):
        if chunk.startswith("## "):
            section = chunk[3:].strip()
            continue
        examples += [Example(section, strict_json(block)) for block in re.findall(r"```json\n(.*?)```", chunk, re.S)]
    return tuple(examples)


def example(direction: str, kind: str, **fields: Any) -> dict[str, Any]:
    """The document's example of `kind` going in `direction` (the one with these field values)."""
    matches = [
        e.message
        for e in document_examples()
        if e.direction == direction
        and e.message.get("type") == kind
        and all(e.message.get(k) == v for k, v in fields.items())
    ]
    assert len(matches) == 1, f"expected one {direction} example of {kind!r} {fields}, found {len(matches)}"
    return matches[0]


def entity_example() -> dict[str, Any]:
    (entity,) = [e.message for e in document_examples() if e.direction == "object"]
    return entity


def document_ids() -> dict[str, int]:
    """Member name -> the id the document uses for it, from the `joined` example."""
    return {member["name"]: member["id"] for member in example("server", "joined")["members"]}


def substitute_ids(value: Any, ids: dict[int, int]) -> Any:
    """`value` with every document member id replaced by the real one."""
    if isinstance(value, dict):
        return {key: substitute_ids(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_ids(item, ids) for item in value]
    if type(value) is int:
        return ids.get(value, value)
    return value


def shape_errors(actual: Any, documented: Any, path: str = "$") -> Iterator[str]:
    """Where `actual` departs from the shape of `documented`: same fields (bar optional ones), same JSON
    types, recursively; each element of a list must have the shape of some documented element."""
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            yield f"{path}: expected an object, got {actual!r}"
            return
        missing = documented.keys() - actual.keys() - OPTIONAL_FIELDS
        undocumented = actual.keys() - documented.keys() - OPTIONAL_FIELDS
        if missing or undocumented:
            yield f"{path}: missing {sorted(missing)}, undocumented {sorted(undocumented)}"
        for key in documented.keys() & actual.keys():
            yield from shape_errors(actual[key], documented[key], f"{path}.{key}")
    elif isinstance(documented, list):
        if not isinstance(actual, list):
            yield f"{path}: expected an array, got {actual!r}"
            return
        for index, item in enumerate(actual):
            if documented and all(list(shape_errors(item, candidate)) for candidate in documented):
                yield f"{path}[{index}]: {item!r} has the shape of no documented element"
    elif isinstance(documented, bool) or documented is None or isinstance(documented, str):
        if type(actual) is not type(documented):
            yield f"{path}: expected {type(documented).__name__}, got {actual!r}"
    elif isinstance(documented, int) and type(actual) is not int:
        yield f"{path}: expected an integer, got {actual!r}"
    elif isinstance(documented, float) and type(actual) not in (int, float):
        yield f"{path}: expected a number, got {actual!r}"


def assert_documented_shape(actual: dict[str, Any], documented: dict[str, Any]) -> None:
    errors = list(shape_errors(actual, documented))
    assert not errors, f"{actual} departs from the documented\n{documented}:\n" + "\n".join(errors)


def hello_as(name: str) -> dict[str, Any]:
    """The document's `hello`, for the member the document calls `name` (with its colour when known)."""
    member = next((m for m in example("server", "joined")["members"] if m["name"] == name), {"name": name})
    hello = dict(example("client", "hello", name="Ada"), name=name)
    if "color" in member:
        hello["color"] = member["color"]
    else:
        hello.pop("color", None)
    return hello


async def greet(peer: JsonPeer, name: str) -> dict[str, Any]:
    await peer.send(hello_as(name))
    welcome = await peer.expect("welcome")
    peer.id = welcome["id"]
    return welcome


# ---- the session, start to finish ----------------------------------------------------------------

SESSION_EXAMPLES = {
    ("client", "hello"), ("client", "join"), ("client", "pose"), ("client", "ping"), ("client", "msg"),
    ("client", "leave"), ("server", "welcome"), ("server", "joined"), ("server", "member_joined"),
    ("server", "member_left"), ("server", "left"), ("server", "tick"), ("server", "pong"), ("server", "msg"),
    ("server", "error"),
}  # fmt: skip
JOINTS_EXAMPLES = {("client", "joints")}
ENTITY_EXAMPLES = {
    ("client", "entity_create"), ("client", "entity_update"), ("client", "entity_delete"),
    ("client", "entity_claim"), ("client", "entity_release"), ("server", "claim_result"), ("server", "ack"),
    ("object", None),
}  # fmt: skip


async def test_a_session_start_to_finish_speaks_the_documented_messages(start_server: StartServer) -> None:
    server = await start_server(max_members_per_room=2)  # so that the third member meets `room_full`
    async with json_peer(server.ws_url) as ada, json_peer(server.ws_url) as bob, json_peer(server.ws_url) as cyd:
        welcome = await greet(ada, "Ada")
        documented_welcome = example("server", "welcome")
        assert_documented_shape(welcome, documented_welcome)
        assert welcome["limits"] == {**documented_welcome["limits"], "max_members_per_room": 2}
        assert (welcome["v"], welcome["tick_rate"]) == (documented_welcome["v"], documented_welcome["tick_rate"])

        await ada.send(example("client", "join"))
        assert_documented_shape(await ada.expect("joined"), example("server", "joined"))
        await ada.send(example("client", "pose"))
        await ada.send(example("client", "ping"))
        pong = await ada.expect("pong")  # and no error before it: the pose was accepted
        assert_documented_shape(pong, example("server", "pong"))
        assert pong["t"] == example("client", "ping")["t"]
        assert [m["type"] for m in ada.received] == ["welcome", "joined", "pong"]

        await greet(bob, "Bob")
        ids = {document_ids()["Ada"]: ada.id, document_ids()["Bob"]: bob.id}
        await bob.send(example("client", "join"))
        joined = await bob.expect("joined")
        assert_documented_shape(joined, example("server", "joined"))
        assert next(m for m in joined["members"] if m["id"] == ada.id)["pose"]["t"] == example("client", "pose")["t"]
        assert await ada.expect("member_joined") == substitute_ids(example("server", "member_joined"), ids)

        await ada.send(example("client", "pose"))
        assert_documented_shape(await bob.expect("tick"), example("server", "tick", seq=42))

        await ada.send(substitute_ids(example("client", "msg", topic="chat"), ids))
        assert await bob.expect("msg") == substitute_ids(example("server", "msg"), ids)
        await ada.send(substitute_ids(example("client", "msg", topic="wave"), ids))
        wave = await bob.expect("msg")
        assert_documented_shape(wave, example("server", "msg"))
        assert (wave["from"], wave["to"]) == (ada.id, bob.id)

        await greet(cyd, "Cyd")
        await cyd.send(example("client", "join"))
        assert await cyd.expect("error") == example("server", "error")

        await bob.send(example("client", "leave"))
        assert await bob.expect("left") == example("server", "left")
        assert await ada.expect("member_left") == substitute_ids(example("server", "member_left"), ids)


async def test_entity_examples_get_their_documented_answers(start_server: StartServer) -> None:
    server = await start_server()
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        ids = {document_ids()["Ada"]: ada.id, document_ids()["Bob"]: bob.id}

        create = example("client", "entity_create")
        await ada.send(create)
        assert await ada.expect("ack", timeout=5.0) == {"type": "ack", "seq": create["seq"]}
        tick = await bob.expect("tick")
        (entity,) = tick["entities"]
        assert_documented_shape(entity, entity_example())
        assert (entity["id"], entity["kind"], entity["props"]) == (create["id"], create["kind"], create["props"])

        await ada.send(example("client", "entity_claim"))
        assert await ada.expect("claim_result") == substitute_ids(example("server", "claim_result"), ids)

        update = example("client", "entity_update")
        await ada.send(update)
        assert await ada.expect("ack", timeout=5.0) == example("server", "ack") == {"type": "ack", "seq": update["seq"]}
        assert (await bob.expect("tick"))["entities"][0]["props"] == update["props"]

        await ada.send(example("client", "entity_release"))
        released = (await bob.expect("tick"))["entities"][0]
        assert "owner" not in released

        delete = example("client", "entity_delete")
        await ada.send(delete)
        assert await ada.expect("ack", timeout=5.0) == {"type": "ack", "seq": delete["seq"]}
        assert (await bob.expect("tick"))["removed"] == [delete["id"]]


async def test_the_joints_example_reaches_the_others_in_a_tick_of_the_documented_shape(
    start_server: StartServer,
) -> None:
    server = await start_server()
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        ids = {document_ids()["Ada"]: ada.id, document_ids()["Bob"]: bob.id}
        sent = example("client", "joints")
        await ada.send(sent)
        tick = await bob.expect("tick")
        documented = substitute_ids(example("server", "tick", seq=44), ids)
        assert_documented_shape(tick, documented)
        assert tick["joints"] == [{"id": ada.id, "right": sent["right"]}]  # unit quaternions: relayed as sent
        assert tick["joints"][0]["right"][:2] == documented["joints"][0]["right"]  # the document's shortening
        await bob.send({"type": "joints"})  # hands no longer tracked: the others hide them
        hidden = await ada.expect("tick")
        assert hidden["joints"] == [{"id": bob.id}] == [documented["joints"][1]]
        await ada.send({"type": "ping", "t": 1.0})
        await ada.expect("pong")
        assert not [m for m in ada.received if m["type"] == "tick" and m is not hidden]  # never its own joints


def test_every_example_in_the_document_is_exercised() -> None:
    documented = {
        (e.direction, e.message.get("type") if e.direction != "object" else None) for e in document_examples()
    }
    assert documented == SESSION_EXAMPLES | JOINTS_EXAMPLES | ENTITY_EXAMPLES


# ---- tables --------------------------------------------------------------------------------------


def table_first_column(heading: str) -> list[str]:
    """The first cell of every body row of the first table after `heading`, without backquotes."""
    text = PROTOCOL_MD.read_text()
    lines = text[text.index(heading) :].splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))[2:]  # after header, rule
    return [row.split("|")[1].strip().strip("`") for row in rows]


def test_every_error_code_is_documented_and_every_documented_code_exists() -> None:
    assert set(table_first_column("### `error`")) == {code.value for code in ErrorCode}


def test_every_documented_close_code_exists() -> None:
    documented = {int(code) for code in table_first_column("## Close codes")}
    assert documented <= {code.value for code in CloseCode}
    assert {1008, 1009, 1012, 4000, 4002, 4008, 4009} <= documented


def test_the_welcome_example_advertises_the_default_limits() -> None:
    defaults = Limits()
    limits = example("server", "welcome")["limits"]
    assert limits == {name: getattr(defaults, name) for name in limits}
