"""Tokens and origins at the WebSocket handshake, against a real server: every bad token is refused before the
member joins anything (HTTP 401 before the upgrade for `?token=`, close 4001 for a `hello` token), a client never
appears under another's id or name, and browsers from foreign origins get 403.
"""

from __future__ import annotations

import time

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from shoal.auth import AuthSettings
from shoal.auth.tokens import ACCESS_AUDIENCE, ISSUER, SECRET_FILE, TICKET_AUDIENCE
from shoal.core.access import AuthMode
from support.accounts import call, register
from support.clients import greeted_peers, json_peer
from support.servers import RunningServer, StartServer


def forged(secret: bytes, **claims: object) -> str:
    now = int(time.time())
    body = {"sub": "u-whoever", "sid": "s", "aud": ACCESS_AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 600}
    return jwt.encode({**body, **claims}, secret, "HS256")


BAD_TOKENS = ["expired", "bad-signature", "wrong-audience", "malformed", "revoked", "unknown-algorithm"]


async def bad_token(kind: str, server: RunningServer, secret: bytes) -> str:
    session = await register(server, f"victim-{kind}")
    user, token = session["user"]["id"], session["access_token"]
    sid = jwt.decode(token, options={"verify_signature": False})["sid"]
    if kind == "expired":
        return forged(secret, sub=user, sid=sid, iat=int(time.time()) - 3600, exp=int(time.time()) - 1800)
    if kind == "bad-signature":
        return forged(b"x" * 48, sub=user, sid=sid)
    if kind == "wrong-audience":
        return forged(secret, sub=user, sid=sid, aud="another-app")
    if kind == "malformed":
        return "not.a.token"
    if kind == "revoked":
        await call(server, "POST", "/api/auth/logout", {"refresh_token": session["refresh_token"]})
        return token
    return jwt.encode({"sub": user, "sid": sid, "aud": ACCESS_AUDIENCE, "iss": ISSUER}, "k" * 64, "HS512")


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_a_bad_query_token_is_refused_with_401_before_the_upgrade(
    start_server: StartServer, tmp_path, kind: str
) -> None:
    server = await start_server()
    secret = (tmp_path / "data" / SECRET_FILE).read_bytes()
    token = await bad_token(kind, server, secret)
    async with greeted_peers(server.ws_url, "Witness", room="salon") as (witness,):
        with pytest.raises(InvalidStatus) as refused:
            async with json_peer(f"{server.ws_url}?token={token}"):
                pass
        assert refused.value.response.status_code == 401
        await witness.expect_silence(0.2)  # no member_joined, nothing at all
    assert len(server.engine.members) == 0


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_a_bad_hello_token_closes_4001_and_joins_nothing(start_server: StartServer, tmp_path, kind: str) -> None:
    server = await start_server()
    secret = (tmp_path / "data" / SECRET_FILE).read_bytes()
    token = await bad_token(kind, server, secret)
    async with greeted_peers(server.ws_url, "Witness", room="salon") as (witness,), json_peer(server.ws_url) as peer:
        await peer.send({"type": "hello", "v": 1, "name": "Intruder", "token": token})
        await peer.send({"type": "join", "room": "salon"})  # sent at once: must never be handled
        await peer.send({"type": "msg", "topic": "chat", "data": "hi"})
        error = await peer.expect("error")
        assert error["code"] == "auth_failed" and error["ref"] == "hello"
        assert await peer.expect_close() == 4001
        await witness.expect_silence(0.2)
    assert [message["type"] for message in peer.received] == ["error"]


async def test_a_ticket_works_once(server: RunningServer) -> None:
    session = await register(server, "ticketed")
    status, body, _ = await call(server, "POST", "/api/auth/ticket", token=session["access_token"])
    assert status == 201 and body["expires_in"] == 60
    assert jwt.decode(body["ticket"], options={"verify_signature": False})["aud"] == TICKET_AUDIENCE
    async with json_peer(f"{server.ws_url}?token={body['ticket']}") as peer:
        await peer.hello()
        assert (await peer.join("salon"))["members"][0]["user"] == session["user"]["id"]
    with pytest.raises(InvalidStatus) as replayed:
        async with json_peer(f"{server.ws_url}?token={body['ticket']}"):
            pass
    assert replayed.value.response.status_code == 401


async def test_a_client_never_appears_under_another_id_or_name(server: RunningServer) -> None:
    ada, bob = await register(server, "ada", "Ada"), await register(server, "bob", "Bob")
    async with (
        json_peer(f"{server.ws_url}?token={ada['access_token']}") as real_ada,
        json_peer(f"{server.ws_url}?token={bob['access_token']}") as mallory,
    ):
        await real_ada.hello()
        await mallory.hello("Ada", color="#000000")  # Bob's token, claiming Ada's name
        await real_ada.join("salon")
        members = (await mallory.join("salon"))["members"]
        me = next(member for member in members if member["id"] == mallory.id)
        assert (me["name"], me["user"]) == ("Bob", bob["user"]["id"])
        await mallory.send({"type": "msg", "topic": "chat", "data": "I am Ada", "from": real_ada.id})
        assert (await mallory.expect("error"))["code"] == "invalid_message"  # `from` is the server's to stamp
        await mallory.send({"type": "msg", "topic": "chat", "data": "hello"})
        relayed = await real_ada.expect("msg")
        assert relayed["from"] == mallory.id


async def test_required_mode_needs_an_account(start_server: StartServer) -> None:
    server = await start_server(auth=AuthSettings(mode=AuthMode.REQUIRED))
    async with json_peer(server.ws_url) as anonymous:
        await anonymous.send({"type": "hello", "v": 1, "name": "Anon"})
        assert (await anonymous.expect("error"))["code"] == "auth_failed"
        assert await anonymous.expect_close() == 4001
    status, _, _ = await call(server, "POST", "/api/auth/guest")
    assert status == 403
    session = await register(server, "member")
    async with json_peer(server.ws_url) as member:
        await member.hello(token=session["access_token"])
        await member.join("salon")


async def test_off_mode_has_no_accounts(start_server: StartServer) -> None:
    server = await start_server(auth=AuthSettings(mode=AuthMode.OFF))
    status, _, _ = await call(server, "POST", "/api/auth/register", {"username": "nobody", "password": "x" * 12})
    assert status == 403
    async with json_peer(f"{server.ws_url}?token=ignored") as peer:
        await peer.hello("Plain")
        assert (await peer.join("salon"))["members"][0]["name"] == "Plain"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("SELF", True),
        ("http://localhost:3000", True),
        ("http://127.0.0.1:5173", True),
        ("https://xr.example.org", True),  # on --allowed-origin
        ("https://evil.example", False),
        ("null", False),
        ("https://xr.example.org.evil.com", False),  # a look-alike
        ("https://xr.example.org:8443", False),  # another port
        ("http://xr.example.org", False),  # another scheme
    ],
)
async def test_browsers_from_foreign_origins_get_403(
    start_server: StartServer, origin: str | None, allowed: bool
) -> None:
    server = await start_server(auth=AuthSettings(allowed_origins=("https://xr.example.org",)))
    if origin == "SELF":
        origin = server.url
    opening = connect(server.ws_url, origin=origin, open_timeout=5, proxy=None)  # type: ignore[arg-type]
    if allowed:
        async with opening as ws:
            await ws.send('{"type": "hello", "v": 1}')
            assert '"welcome"' in str(await ws.recv())
    else:
        with pytest.raises(InvalidStatus) as refused:
            async with opening:
                pass
        assert refused.value.response.status_code == 403
