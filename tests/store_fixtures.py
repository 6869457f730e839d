"""Fixtures that hand each test its own, empty store URL on a real backend, and clean it up afterwards.

- `sqlite_store_url`: a file in the test's tmp_path.
- `postgres_store_url`: a fresh schema in the PostgreSQL database `SHOAL_TEST_POSTGRES_URL` (default
  postgresql://postgres@127.0.0.1:5432/test), dropped after the test; parallel runs and reruns never share one.
- `dynamodb_store_url`: fresh table prefix on a moto server process started once per session, with throwaway
  credentials; its tables are deleted after the test.
- `store_url`: each of the three in turn (the contract suite is parametrised over it).

PostgreSQL and DynamoDB fixtures skip with a reason when the service or the driver is missing, and fail under
CI=true (`support.ci.require`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from support.ci import require

POSTGRES_URL = os.environ.get("SHOAL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgres", "dynamodb")


def unique_name(kind: str) -> str:
    """A lower-case identifier no other test, run or machine will pick, e.g. `shoal_test_3f9a0c12d4e5`."""
    return f"shoal_{kind}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sqlite_store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'shoal.db'}"


async def _postgres_error(url: str) -> str | None:
    """None if PostgreSQL accepts a connection at `url`, else why not."""
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed (pip install -e '.[test]')"
    try:
        connection = await asyncpg.connect(url, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL is not reachable at {url}: {exc}"
    await connection.close()
    return None


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL the suite uses, once it has accepted a connection."""
    error = asyncio.run(_postgres_error(POSTGRES_URL))
    require(error is None, str(error))
    return POSTGRES_URL


@pytest.fixture
async def postgres_store_url(postgres_server: str) -> AsyncIterator[str]:
    import asyncpg

    schema = unique_name("test")
    yield f"{postgres_server}?schema={schema}"
    connection = await asyncpg.connect(postgres_server, timeout=5)
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server process on 127.0.0.1 (moto's in-process mock does not patch aiobotocore); its endpoint."""
    try:
        import aioboto3  # noqa: F401  (the store needs it; moto alone is not enough)
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        require(False, f"the DynamoDB tests need aioboto3 and moto[server] (pip install -e '.[test]'): {exc}")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        # moto accepts any credentials; never let a developer's real ones leave for a test
        env.setenv("AWS_ACCESS_KEY_ID", "test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "test")
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
async def dynamodb_store_url(moto_server: str) -> AsyncIterator[str]:
    import aioboto3

    prefix = unique_name("test") + "_"
    yield f"dynamodb://?region=us-east-1&endpoint={moto_server}&prefix={prefix}"
    async with aioboto3.Session(region_name="us-east-1").client("dynamodb", endpoint_url=moto_server) as client:
        tables = (await client.list_tables())["TableNames"]
        for table in tables:
            if table.startswith(prefix):
                await client.delete_table(TableName=table)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh store URL on each backend in turn."""
    return request.getfixturevalue(f"{request.param}_store_url")
