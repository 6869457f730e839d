"""Tokens of an external OpenID Connect provider: a real RSA key pair, and a discovery document and JWKS served
by the test on 127.0.0.1. ID tokens (`aud`) and Cognito-style access tokens (`client_id`) are accepted; wrong
audience, wrong issuer, expired, unknown or forged keys are refused; the provider rotating its key is followed.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import InvalidStatus

from shoal.auth import AuthSettings
from support.accounts import call
from support.clients import json_peer
from support.servers import RunningServer, StartServer

AUDIENCE = "shoal-app"


@dataclass
class Provider:
    """An OIDC provider on 127.0.0.1: its issuer URL, its current signing keys, and how often its JWKS was read."""

    issuer: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    jwks_reads: int = 0

    def rotate(self, kid: str) -> None:
        """Publish only a new key from now on."""
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}

    def token(self, kid: str | None = None, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        kid = kid or next(iter(self.keys))
        now = int(time.time())
        body = {"iss": self.issuer, "sub": "cognito-sub-42", "aud": AUDIENCE, "iat": now, "exp": now + 600,
                "name": "Grace Hopper"}  # fmt: skip
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, key or self.keys[kid], "RS256", headers={"kid": kid})


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    state = Provider()
    state.rotate("key-1")

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response({"issuer": state.issuer, "jwks_uri": f"{state.issuer}/jwks.json"})

    async def jwks(request: web.Request) -> web.Response:
        state.jwks_reads += 1
        keys = [
            {
                **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())),
                "kid": kid,
                "alg": "RS256",
                "use": "sig",
            }
            for kid, key in state.keys.items()
        ]
        return web.json_response({"keys": keys})

    app = web.Application()
    app.router.add_get("/pool/.well-known/openid-configuration", discovery)
    app.router.add_get("/pool/jwks.json", jwks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.issuer = f"http://127.0.0.1:{runner.addresses[0][1]}/pool"
    yield state
    await runner.cleanup()


@pytest.fixture
async def server(start_server: StartServer, provider: Provider) -> RunningServer:
    return await start_server(auth=AuthSettings(oidc_issuer=provider.issuer, oidc_audience=AUDIENCE))


async def refused(server: RunningServer, token: str) -> int:
    with pytest.raises(InvalidStatus) as refusal:
        async with json_peer(f"{server.ws_url}?token={token}"):
            pass
    return refusal.value.response.status_code


async def test_an_id_token_joins_under_its_name_and_gets_a_profile(server: RunningServer, provider: Provider) -> None:
    token = provider.token()
    async with json_peer(f"{server.ws_url}?token={token}") as peer:
        await peer.hello("Someone Else")
        me = (await peer.join("salon"))["members"][0]
        assert me["name"] == "Grace Hopper" and me["user"].startswith("o-")
    status, profile, _ = await call(server, "GET", "/api/me", token=token)
    assert status == 200 and (profile["id"], profile["provider"], profile["username"]) == (me["user"], "oidc", None)


async def test_a_cognito_access_token_names_its_client_in_client_id(server: RunningServer, provider: Provider) -> None:
    token = provider.token(aud=None, client_id=AUDIENCE, token_use="access", name=None, **{"cognito:username": "grace"})
    async with json_peer(server.ws_url) as peer:
        await peer.hello(token=token)
        assert (await peer.join("salon"))["members"][0]["name"] == "grace"


@pytest.mark.parametrize(
    "bad",
    ["wrong-audience", "wrong-issuer", "expired", "forged-key", "unknown-kid", "access-token-of-another-client"],
)
async def test_bad_oidc_tokens_are_refused(server: RunningServer, provider: Provider, bad: str) -> None:
    now = int(time.time())
    token = {
        "wrong-audience": lambda: provider.token(aud="another-app"),
        "wrong-issuer": lambda: provider.token(iss="https://evil.example/pool"),
        "expired": lambda: provider.token(iat=now - 7200, exp=now - 3600),
        "forged-key": lambda: provider.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "unknown-kid": lambda: provider.token(kid="made-up", key=provider.keys["key-1"]),
        "access-token-of-another-client": lambda: provider.token(aud=None, client_id="other", token_use="access"),
    }[bad]()
    assert await refused(server, token) == 401
    async with json_peer(server.ws_url) as peer:
        await peer.send({"type": "hello", "v": 1, "token": token})
        assert (await peer.expect("error"))["code"] == "auth_failed"
        assert await peer.expect_close() == 4001


async def test_the_provider_rotating_its_key_is_followed(server: RunningServer, provider: Provider) -> None:
    async with json_peer(f"{server.ws_url}?token={provider.token()}") as peer:
        await peer.hello()
    reads = provider.jwks_reads
    provider.rotate("key-2")
    async with json_peer(f"{server.ws_url}?token={provider.token()}") as peer:  # signed with the new key
        await peer.hello()
    assert provider.jwks_reads == reads + 1
    # made-up key ids cannot make the server fetch the JWKS for every request
    for _ in range(10):
        assert await refused(server, provider.token(kid="made-up", key=provider.keys["key-2"])) == 401
    assert provider.jwks_reads <= reads + 3
