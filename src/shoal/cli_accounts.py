"""The account parts of the command line: `shoal serve`'s authentication options and `shoal user ...`.

    shoal serve --auth required --oidc-issuer https://cognito-idp.eu-west-1.amazonaws.com/POOL --oidc-audience CLIENT
    shoal user add ada --name "Ada L."          # asks for the password (or reads it from stdin)
    shoal user list
    shoal user set-password ada                 # ends every session of the account
    shoal user delete ada --yes

`shoal user` works on the store of `--data`/`--store` (the same options and `SHOAL_*` variables as `serve`).
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from shoal.auth.settings import AuthSettings
from shoal.core.access import AuthMode

F = TypeVar("F", bound=Callable[..., Any])

_AUTH_OPTIONS = "shoal.auth_options"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault(_AUTH_OPTIONS, {})[param.name] = value
    return value


def auth_options(command: F) -> F:
    """Add `--auth`, `--auth-secret`, `--access-token-ttl`, `--oidc-*`, `--trusted-proxy` and `--allowed-origin`
    to a command. They are not passed as arguments: read them back with `auth_settings()`."""
    hidden: dict[str, Any] = {"expose_value": False, "callback": _remember}
    options = [
        click.option(
            "--auth",
            "auth_mode",
            **hidden,
            envvar="SHOAL_AUTH",
            default=AuthMode.GUEST.value,
            type=click.Choice([mode.value for mode in AuthMode]),
            help="off: everyone is a guest; guest: tokens checked when given, others are guests; "
            "required: every connection needs an account's token.",
        ),
        click.option(
            "--auth-secret",
            "auth_secret",
            **hidden,
            envvar="SHOAL_AUTH_SECRET",
            default=None,
            help="Token signing secret, at least 32 characters (servers sharing users must share it). "
            "Default: generated into DATA/auth-secret.",
        ),
        click.option(
            "--access-token-ttl",
            "access_token_ttl",
            **hidden,
            envvar="SHOAL_ACCESS_TOKEN_TTL",
            default=900.0,
            type=click.FloatRange(30, 86400),
            help="Seconds an access token is valid.",
        ),
        click.option(
            "--oidc-issuer",
            "oidc_issuer",
            **hidden,
            envvar="SHOAL_OIDC_ISSUER",
            default=None,
            help="Accept RS256 tokens of this "
            "OpenID Connect issuer (e.g. https://cognito-idp.REGION.amazonaws.com/POOL_ID).",
        ),
        click.option(
            "--oidc-audience",
            "oidc_audience",
            **hidden,
            envvar="SHOAL_OIDC_AUDIENCE",
            default=None,
            help="The client id OIDC tokens must be issued for.",
        ),
        click.option(
            "--oidc-jwks-url",
            "oidc_jwks_url",
            **hidden,
            envvar="SHOAL_OIDC_JWKS_URL",
            default=None,
            help="The provider's JWKS (default: from its discovery document).",
        ),
        click.option(
            "--trusted-proxy",
            "trusted_proxies",
            **hidden,
            envvar="SHOAL_TRUSTED_PROXIES",
            multiple=True,
            help="Reverse proxy address or network whose X-Forwarded-For is believed (repeatable).",
        ),
        click.option(
            "--allowed-origin",
            "allowed_origins",
            **hidden,
            envvar="SHOAL_ALLOWED_ORIGINS",
            multiple=True,
            help="Browser origin allowed to open the WebSocket besides this server's and localhost (repeatable).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def auth_settings() -> AuthSettings:
    """The `AuthSettings` the current command's `auth_options` were given."""
    values = click.get_current_context().meta.get(_AUTH_OPTIONS, {})
    secret = values.get("auth_secret")
    if secret is not None and len(secret) < 32:
        raise click.BadParameter("the secret must have at least 32 characters", param_hint="--auth-secret")
    if values.get("oidc_issuer") and not values.get("oidc_audience"):
        raise click.BadParameter("--oidc-issuer needs --oidc-audience", param_hint="--oidc-audience")
    try:
        from shoal.auth.throttle import parse_networks

        parse_networks(values.get("trusted_proxies", ()))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--trusted-proxy") from None
    return AuthSettings(
        mode=AuthMode(values.get("auth_mode", AuthMode.GUEST)),
        secret=secret.encode() if secret else None,
        access_ttl=values.get("access_token_ttl", 900.0),
        oidc_issuer=values.get("oidc_issuer"),
        oidc_audience=values.get("oidc_audience"),
        oidc_jwks_url=values.get("oidc_jwks_url"),
        trusted_proxies=tuple(values.get("trusted_proxies", ())),
        allowed_origins=tuple(origin.rstrip("/") for origin in values.get("allowed_origins", ())),
    )


# ---- shoal user ---------------------------------------------------------------------------------------------


@click.group()
@click.option(
    "--data",
    "data_dir",
    envvar="SHOAL_DATA",
    default="shoal-data",
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's data directory.",
)
@click.option("--store", "store_url", envvar="SHOAL_STORE", default="", help="The server's store URL.")
@click.pass_context
def user(ctx: click.Context, data_dir: Path, store_url: str) -> None:
    """Manage accounts: add, list, set-password, delete."""
    ctx.obj = (data_dir, store_url)


def _run(ctx: click.Context, work: Callable[[Any], Any]) -> Any:
    """Run `work(accounts)` against the store named by the group's options."""
    from shoal.auth import Accounts
    from shoal.auth.tokens import Tokens
    from shoal.store import StoreError, open_store

    data_dir, store_url = ctx.obj

    async def main() -> Any:
        try:
            store = open_store(store_url, data_dir)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--store") from None
        await store.open()
        try:
            # the CLI issues no tokens: a throwaway secret keeps the server's one out of this process
            return await work(Accounts(store, Tokens(secrets.token_bytes(32))))
        finally:
            await store.close()

    from shoal.auth import AuthError

    try:
        return asyncio.run(main())
    except AuthError as exc:
        raise click.ClickException(exc.message) from None
    except StoreError as exc:
        raise click.ClickException(f"cannot use the store: {exc}") from None


def _password(ask: bool) -> str:
    """From a prompt (typed twice) on a terminal, else the first line of stdin."""
    if ask and sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@user.command("add")
@click.argument("username")
@click.option("--name", default=None, help="Display name (default: the username).")
@click.pass_context
def add(ctx: click.Context, username: str, name: str | None) -> None:
    """Create an account; the password is asked for (or read from stdin)."""
    password = _password(ask=True)
    account = _run(ctx, lambda accounts: accounts.create_user(username, password, name))
    click.echo(f"added {account.username} ({account.id})")


@user.command("list")
@click.pass_context
def list_users(ctx: click.Context) -> None:
    """Every account: id, username, display name, provider, created."""
    users = _run(ctx, lambda accounts: accounts.store.list_users())
    for account in users:
        created = datetime.fromtimestamp(account.created_at, UTC).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{account.id}\t{account.username or '-'}\t{account.display_name}\t{account.provider}\t{created}")
    if not users:
        click.echo("no accounts", err=True)


@user.command("set-password")
@click.argument("username")
@click.pass_context
def set_password(ctx: click.Context, username: str) -> None:
    """Change an account's password; every session of it ends (its tokens stop working)."""
    password = _password(ask=True)

    async def change(accounts: Any) -> None:
        account = await accounts.find(username)
        if account is None:
            raise click.ClickException(f"no account {username!r}")
        await accounts.set_password(account, password)

    _run(ctx, change)
    click.echo(f"password of {username} changed; its sessions are ended")


@user.command("delete")
@click.argument("username")
@click.confirmation_option("--yes", prompt="Delete this account, its avatar and its sessions?")
@click.pass_context
def delete(ctx: click.Context, username: str) -> None:
    """Delete an account with its avatar and sessions."""

    async def remove(accounts: Any) -> str:
        account = await accounts.find(username)
        if account is None:
            raise click.ClickException(f"no account {username!r}")
        await accounts.store.delete_user(account.id)
        return account.id

    click.echo(f"deleted {username} ({_run(ctx, remove)})")
