"""Who is calling: API keys (stored as SHA-256 hashes) and signed JWTs, each carrying a role.

Pure logic, no sockets: the ASGI guard (``server/guard.py``) finds the token on a request
and asks an ``Authenticator`` for the ``Principal`` behind it. With neither an auth file nor a
JWT secret configured the server runs in open development mode: everyone is ``dev`` (admin),
and the server refuses to listen on anything but loopback (``check_bind``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Role = Literal["integration", "agent", "supervisor", "admin", "metrics"]
ROLES: tuple[str, ...] = ("integration", "agent", "supervisor", "admin", "metrics")
JWT_ALGORITHM = "HS256"
JWT_LEEWAY_S = 30
MAX_TOKEN_TTL_S = 7 * 24 * 3600
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class AuthError(Exception):
    """The auth configuration is unusable (raised at start, never per request)."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    agent_id: str | None = None
    teams: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    token_id: str = ""  # what per-token connection limits count by (never the token itself)
    via: str = "open"  # api_key | jwt | session | open

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "agent_id": self.agent_id,
            "teams": list(self.teams),
            "queues": list(self.queues),
            "via": self.via,
        }


DEV_PRINCIPAL = Principal("dev", "admin", token_id="open-dev-mode", via="open")


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key (callassist auth hash-key)"
    )
    role: Role
    agent_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:@\-]{1,128}$")
    teams: list[str] = Field(default_factory=list)
    queues: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _scoping(self) -> ApiKey:
        _check_scoping(self.role, self.agent_id, self.teams, self.queues, where=f"api key {self.name!r}")
        return self


class AuthFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_keys: list[ApiKey] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> AuthFile:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls.model_validate(raw)
        except OSError as exc:
            raise AuthError(f"cannot read auth file {path}: {exc}") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise AuthError(f"invalid auth file {path}: {exc}") from None


def _check_scoping(role: str, agent_id: str | None, teams: Any, queues: Any, *, where: str) -> None:
    if role == "agent" and not agent_id:
        raise ValueError(f"{where}: role 'agent' needs an agent_id")
    if role != "agent" and agent_id:
        raise ValueError(f"{where}: only role 'agent' is bound to an agent_id")
    if queues:
        # Accepting a scope we do not enforce would be worse than refusing it.
        raise ValueError(f"{where}: queue scoping is not implemented (the start frame carries no queue)")
    if teams and role != "supervisor":
        raise ValueError(f"{where}: only role 'supervisor' is scoped to teams")
    if teams is not None and (
        not isinstance(teams, list | tuple) or not all(isinstance(t, str) and t for t in teams)
    ):
        raise ValueError(f"{where}: teams must be a list of team names")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return "ca_" + secrets.token_urlsafe(32)


@dataclass
class Authenticator:
    """Resolves a presented token to a Principal; None means "not a valid credential"."""

    api_keys: list[ApiKey] = field(default_factory=list)
    jwt_secret: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        if self.jwt_secret:
            self.session_secret = self.jwt_secret

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys) or bool(self.jwt_secret)

    @classmethod
    def from_settings(cls, settings: Any) -> Authenticator:
        keys = AuthFile.load(settings.auth_file).api_keys if settings.auth_file else []
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        if secret is not None and len(secret) < 32:
            raise AuthError("jwt_secret must be at least 32 characters (e.g. `openssl rand -base64 48`)")
        if settings.auth_file and not keys and not secret:
            raise AuthError(f"auth file {settings.auth_file} has no api_keys and no jwt_secret is set")
        return cls(
            api_keys=keys,
            jwt_secret=secret,
            jwt_issuer=settings.jwt_issuer,
            jwt_audience=settings.jwt_audience,
            # Sessions and minted tokens must verify on every process: the shared JWT secret
            # when there is one, else a per-process secret (documented: set jwt_secret for clusters).
            session_secret=secret or secrets.token_urlsafe(32),
        )

    def authenticate(self, token: str) -> Principal | None:
        if not token or len(token) > 8192:
            return None
        if token.count(".") == 2:
            return self._from_jwt(token)
        return self._from_api_key(token)

    def _from_api_key(self, token: str) -> Principal | None:
        presented = hash_key(token)
        found: ApiKey | None = None
        for key in self.api_keys:  # every entry compared: the time does not tell which one matched
            if hmac.compare_digest(presented, key.sha256):
                found = key
        if found is None:
            return None
        return Principal(
            found.name,
            found.role,
            found.agent_id,
            tuple(found.teams),
            tuple(found.queues),
            token_id=f"key:{found.name}",
            via="api_key",
        )

    def _from_jwt(self, token: str) -> Principal | None:
        # session_secret is the configured JWT secret when there is one (see from_settings).
        try:
            claims = jwt.decode(
                token,
                self.session_secret,
                algorithms=[JWT_ALGORITHM],
                issuer=self.jwt_issuer if self.jwt_secret else None,
                audience=self.jwt_audience if self.jwt_secret else None,
                leeway=JWT_LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "role"]},
            )
        except jwt.PyJWTError:
            return None
        return _principal_from_claims(claims, via=str(claims.get("via") or "jwt"))

    def mint(self, principal: Principal, ttl_seconds: float, *, via: str = "jwt") -> tuple[str, float]:
        """A signed token for ``principal``; returns (token, expires_at)."""
        now = int(time.time())
        expires = now + int(max(1, min(ttl_seconds, MAX_TOKEN_TTL_S)))
        claims: dict[str, Any] = {
            "sub": principal.name,
            "role": principal.role,
            "iat": now,
            "exp": expires,
            "jti": secrets.token_hex(8),
            "via": via,
        }
        if principal.agent_id:
            claims["agent_id"] = principal.agent_id
        if principal.teams:
            claims["teams"] = list(principal.teams)
        if self.jwt_secret and self.jwt_issuer:
            claims["iss"] = self.jwt_issuer
        if self.jwt_secret and self.jwt_audience:
            claims["aud"] = self.jwt_audience
        return jwt.encode(claims, self.session_secret, algorithm=JWT_ALGORITHM), float(expires)


def _principal_from_claims(claims: dict[str, Any], *, via: str) -> Principal | None:
    role, name, agent_id = claims.get("role"), claims.get("sub"), claims.get("agent_id")
    if role not in ROLES or not isinstance(name, str):
        return None
    try:
        _check_scoping(role, agent_id, claims.get("teams"), claims.get("queues"), where="token")
    except ValueError:
        return None
    if agent_id is not None and not isinstance(agent_id, str):
        return None
    teams = tuple(claims.get("teams") or ())
    return Principal(name, role, agent_id, teams, token_id=f"sub:{role}:{name}:{agent_id or ''}", via=via)


def is_loopback(host: str) -> bool:
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth_enabled: bool) -> None:
    """Protected mode: without credentials the server only listens on loopback."""
    if not auth_enabled and not is_loopback(host):
        raise AuthError(
            f"refusing to listen on {host}: no credentials are configured (open development mode is "
            "loopback only). Set CALLASSIST_AUTH_FILE and/or CALLASSIST_JWT_SECRET (see docs/security.md), "
            "or bind 127.0.0.1."
        )


OPEN_MODE_BANNER = """
************************************************************************
*  OPEN DEVELOPMENT MODE: no credentials configured.                    *
*  Anyone who can reach this port can read calls and change the KB.     *
*  Listening on loopback only. For anything else set                    *
*  CALLASSIST_AUTH_FILE / CALLASSIST_JWT_SECRET (docs/security.md).      *
************************************************************************"""
