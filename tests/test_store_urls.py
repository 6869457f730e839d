"""Store URLs: which backend and options `--store URL` picks, and the clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from shoal.cli import main
from shoal.store import open_store
from shoal.store.dynamodb import DynamoStore
from shoal.store.postgres import PostgresStore
from shoal.store.sqlite import SqliteStore

DATA = Path("/srv/shoal-data")


@pytest.mark.parametrize(
    ("url", "path", "synchronous"),
    [
        ("", DATA / "shoal.db", "full"),
        ("sqlite://", DATA / "shoal.db", "full"),
        ("sqlite:///var/lib/shoal/rooms.db", Path("/var/lib/shoal/rooms.db"), "full"),
        ("sqlite://rooms/main.db", DATA / "rooms" / "main.db", "full"),
        ("sqlite://?synchronous=normal", DATA / "shoal.db", "normal"),
        ("sqlite:///tmp/x.db?synchronous=FULL", Path("/tmp/x.db"), "full"),
    ],
)
def test_sqlite_urls(url: str, path: Path, synchronous: str) -> None:
    store = open_store(url, DATA)
    assert isinstance(store, SqliteStore)
    assert (store.path, store.synchronous) == (path, synchronous)


def test_postgres_url_keeps_its_schema_and_hands_the_rest_to_asyncpg() -> None:
    store = open_store("postgresql://shoal:secret@db.internal:6543/rooms?schema=tenant_7&sslmode=require", DATA)
    assert isinstance(store, PostgresStore)
    assert store.schema == "tenant_7"
    assert store.dsn == "postgresql://shoal:secret@db.internal:6543/rooms?sslmode=require"
    assert "secret" not in repr(store)  # error messages name the store by its repr
    assert isinstance(open_store("postgres://localhost/db", DATA), PostgresStore)


def test_dynamodb_url_options() -> None:
    store = open_store("dynamodb://?region=eu-west-1&endpoint=http://127.0.0.1:8000&prefix=prod_", DATA)
    assert isinstance(store, DynamoStore)
    assert (store.region, store.endpoint) == ("eu-west-1", "http://127.0.0.1:8000")
    assert (store.rooms_table, store.entities_table, store.positions_table) == (
        "prod_rooms",
        "prod_entities",
        "prod_positions",
    )
    default = open_store("dynamodb://", DATA)
    assert isinstance(default, DynamoStore) and default.prefix == "shoal_" and default.region is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/shoal", "unknown store URL"),
        ("sqlite:///x.db?synchronous=off", "synchronous must be one of"),
        ("sqlite:///x.db?journal=wal", "unknown option journal"),
        ("postgresql://localhost/db?schema=Robert'); DROP TABLE rooms;--", "schema must be"),
        ("dynamodb://my-table?region=eu-west-1", "only options"),
        ("dynamodb://?region=eu-west-1&table=x", "unknown option table"),
        ("dynamodb://?prefix=no spaces", "prefix may hold only"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url, DATA)


def test_serve_refuses_a_bad_store_url_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path), "--store", "mysql://localhost/shoal"])
    assert result.exit_code == 2
    assert "Invalid value for '--store'" in result.output and "unknown store URL" in result.output
    assert not (tmp_path / "shoal.db").exists()


def test_serve_reports_an_unreachable_store_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--port", "0", "--data", str(tmp_path), "--store", "postgresql://postgres@127.0.0.1:1/test"]
    )
    assert result.exit_code == 1, result.output
    assert "cannot open the store" in result.output and "Traceback" not in result.output
