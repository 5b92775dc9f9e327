"""Server settings, read once from the environment (prefix CALLASSIST_) and CLI flags."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from assist.protocol import DEFAULT_MAX_FRAME_BYTES
from assist.thread_priority import ThreadPriority


def _process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLASSIST_", env_file=".env", extra="ignore")

    host: str = Field(
        default="127.0.0.1", description="Listen address; non-loopback needs auth (docs/security.md)."
    )
    port: int = Field(default=8000, ge=0, le=65535, description="Listen port.")
    config: Path | None = Field(default=None, description="Assist YAML config; the bundled demo when unset.")
    bus_url: str = Field(default="memory://", description="memory:// (one process) or redis://host:port/db")
    store_path: Path = Field(default=Path("var/callassist.db"), description="SQLite file for call records.")
    cache_dir: Path | None = Field(
        default=Path("var/cache"), description="Fitted models and embeddings cache."
    )
    model_path: str | None = Field(default=None, description="sentence-transformers model directory.")
    embedder: str = Field(default="onnx", description="onnx (default), onnx-int8 or torch.")
    kb_dir: Path | None = Field(
        default=Path("var/kb"), description="Knowledge-base indexes and embedding cache (None: in memory)."
    )
    process_name: str = Field(
        default_factory=_process_name,
        description="This process in the registry and stream groups (host:pid).",
    )
    registry_ttl_seconds: float = Field(
        default=15.0, ge=1, le=30, description="A dead process's live calls leave the registry after this."
    )

    max_frame_bytes: int = Field(
        default=DEFAULT_MAX_FRAME_BYTES,
        ge=1024,
        description="Client frames larger than this close with 1009.",
    )
    ws_compression: bool = Field(
        default=False, description="permessage-deflate on WebSockets (costs CPU per event; off for LAN)."
    )
    max_consecutive_errors: int = Field(
        default=10, ge=1, description="Bad frames in a row before closing 1008."
    )
    agent_queue_size: int = Field(
        default=256, ge=8, description="Events queued per agent socket (stale suggestions dropped first)."
    )
    supervisor_queue_size: int = Field(
        default=2048, ge=8, description="Events queued per supervisor socket; overflow closes it 1013."
    )
    reconnect_grace_seconds: float = Field(
        default=120.0, ge=0, description="Softphone may resume a dropped call."
    )
    analysis_timeout_ms: float = Field(
        default=1500.0,
        gt=0,
        description="An analysis slower than this is skipped (the assist is marked degraded).",
    )
    embed_batch_max: int = Field(
        default=32, ge=1, description="Utterances embedded together across live calls."
    )
    model_threads: int | None = Field(
        default=None, ge=1, description="Inference threads (default: 1 for ONNX)."
    )
    model_thread_priority: ThreadPriority | Literal["auto"] = Field(
        default="auto",
        description="CPU priority of the model threads (assist and in-process QA): idle (SCHED_IDLE: "
        "they run on what the event loop, Redis and other processes leave, so those wake up at once; "
        "halves the cross-process hop's p99 but slows assists on a host at its CPU limit), low "
        "(nice 19), normal, or auto: idle with a Redis bus, normal with memory://. Linux only; "
        "docs/operations.md.",
    )
    gc_freeze: bool = Field(
        default=True,
        description="gc.freeze() once models are loaded: full collections skip the long-lived heap.",
    )
    gc_full_after: int = Field(
        default=100,
        ge=1,
        description="A full garbage collection (it stops the event loop for ~0.3 s at 1,000 calls) "
        "waits for this many generation-1 passes (Python's default: 10) and, as always, for a "
        "quarter of the long-lived heap to be new (gc.set_threshold).",
    )
    end_drain_seconds: float = Field(
        default=10.0, gt=0, description="Wait for in-flight analyses at call end."
    )
    log_level: str = Field(default="info", description="debug, info, warning or error.")

    # -- security (docs/security.md) ----------------------------------------------------------
    auth_file: Path | None = Field(
        default=None, description="YAML with API keys (name, sha256, role, agent_id); see docs/security.md."
    )
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 secret for JWTs (>= 32 chars).")
    jwt_issuer: str | None = Field(default=None, description="Required 'iss' claim when set.")
    jwt_audience: str | None = Field(default=None, description="Required 'aud' claim when set.")
    session_ttl_seconds: float = Field(
        default=8 * 3600, ge=60, description="Browser session cookie lifetime."
    )
    token_ttl_seconds: float = Field(
        default=3600, ge=60, description="Longest lifetime POST /v1/auth/token grants."
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Extra WebSocket Origins (same-origin is always allowed)."
    )
    cors_origins: list[str] = Field(default_factory=list, description="CORS allowlist; empty: CORS closed.")
    max_connections: int = Field(
        default=5000, ge=1, description="Open WebSockets per process (a call uses two: softphone + widget)."
    )
    max_connections_per_token: int = Field(
        default=50, ge=1, description="Open WebSockets per agent/supervisor/admin credential."
    )
    frame_rate_per_second: float = Field(default=50.0, gt=0, description="Client frames per connection.")
    frame_rate_burst: int = Field(default=200, ge=1, description="Frames a connection may send at once.")
    rate_limited_close_after: int = Field(
        default=100, ge=1, description="Rate-limited frames in a row before closing 1008."
    )
    max_utterances_per_call: int = Field(
        default=10_000, ge=1, description="Further utterances get a call_limit error frame."
    )
    retention_days: float = Field(
        default=0,
        ge=0,
        description="Delete stored calls and derived rows this many days after the call (0: keep).",
    )
    retention_interval_seconds: float = Field(default=3600.0, gt=0, description="How often the purge runs.")

    def model_priority(self) -> ThreadPriority:
        """``auto`` resolved: idle where events cross processes (a Redis bus), since there Redis and
        the other processes must wake at once; normal in one process, where idle would only cost
        assist latency at the CPU limit (docs/operations.md)."""
        if self.model_thread_priority != "auto":
            return self.model_thread_priority
        return "normal" if self.bus_url.startswith("memory://") else "idle"
