"""``callassist auth``: API key hashes for the auth file and short-lived signed tokens."""

from __future__ import annotations

import sys

import typer

auth_app = typer.Typer(
    help="Credentials: hash API keys, mint tokens (docs/security.md).", no_args_is_help=True
)


@auth_app.command("hash-key")
def hash_key_command(
    key: str | None = typer.Option(None, help="Hash this key (default: read one line from stdin, or --new)."),
    new: bool = typer.Option(False, "--new", help="Generate a new random key and print it with its hash."),
    name: str = typer.Option("my-key", help="Name for the printed auth-file entry."),
    role: str = typer.Option("integration", help="Role for the printed auth-file entry."),
) -> None:
    """Print the SHA-256 of an API key as an auth-file entry (the file never holds the key)."""
    from server.auth import ROLES, hash_key, new_key

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    if new:
        key = new_key()
        typer.echo(f"# the key (give it to the client; it is not stored anywhere): {key}", err=True)
    elif key is None:
        key = sys.stdin.readline().strip()
    if not key:
        raise typer.BadParameter("no key given", param_hint="--key")
    typer.echo(f"- name: {name}\n  role: {role}\n  sha256: {hash_key(key)}")


@auth_app.command("mint-token")
def mint_token_command(
    role: str = typer.Option("agent", help="integration, agent, supervisor, admin or metrics."),
    agent_id: str | None = typer.Option(None, help="The agent an agent token is bound to."),
    name: str = typer.Option("cli", help="Token subject (shown in logs and /v1/auth/whoami)."),
    ttl: float = typer.Option(3600, min=1, help="Lifetime in seconds (at most 7 days)."),
    team: list[str] = typer.Option([], help="Scope a supervisor token to these teams (repeat)."),
) -> None:
    """Mint a JWT signed with CALLASSIST_JWT_SECRET (the server must share that secret)."""
    from server.auth import Authenticator, Principal, _check_scoping
    from server.settings import Settings

    settings = Settings()
    if settings.jwt_secret is None:
        raise typer.BadParameter("set CALLASSIST_JWT_SECRET (the same secret the server uses)")
    try:
        _check_scoping(role, agent_id, team or None, None, where="token")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    auth = Authenticator(
        jwt_secret=settings.jwt_secret.get_secret_value(),
        jwt_issuer=settings.jwt_issuer,
        jwt_audience=settings.jwt_audience,
    )
    token, _ = auth.mint(Principal(name, role, agent_id, tuple(team)), ttl)
    typer.echo(token)


@auth_app.command("policy")
def policy_command() -> None:
    """Print who may call what (server/policy.py) as the Markdown table in docs/security.md."""
    from server.policy import markdown_table

    typer.echo(markdown_table())
