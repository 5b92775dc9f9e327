"""WebSocket endpoints. They only move bytes: parse, hand to the call manager, drain outboxes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from assist.protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    EndFrame,
    ProtocolError,
    StartFrame,
    UtteranceFrame,
    parse_client_frame,
)
from server import keys
from server.bus import encode
from server.guard import principal_of
from server.limits import RateLimit
from server.outbox import Outbox
from server.scoping import ScopedOutbox, TeamFilter
from server.services import Services

log = logging.getLogger(__name__)
_connection_ids = itertools.count(1)
_ID = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")


class ConnectionLog(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['conn']}] {msg}", kwargs  # type: ignore[index]


def _services(websocket: WebSocket) -> Services:
    return websocket.app.state.services  # type: ignore[no-any-return]


async def _send(websocket: WebSocket, payload: dict[str, Any]) -> None:
    await websocket.send_text(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError, OSError):  # the peer went away first
            await websocket.close(code=code, reason=reason[:120])


async def _refuse_until_ready(websocket: WebSocket, services: Services, endpoint: str) -> bool:
    if services.ready.is_set() and services.calls is not None:
        return False
    await websocket.close(code=CLOSE_TRY_AGAIN_LATER, reason="models loading")
    services.metrics.closes.labels(endpoint, str(CLOSE_TRY_AGAIN_LATER)).inc()
    return True


def _rate_limit(settings: Any) -> RateLimit:
    return RateLimit(
        settings.frame_rate_per_second, settings.frame_rate_burst, settings.rate_limited_close_after
    )


async def _within_rate(
    websocket: WebSocket,
    services: Services,
    endpoint: str,
    rate: RateLimit,
    answer: Callable[[WebSocket, dict[str, Any]], Awaitable[None]],
) -> bool:
    """False when this frame is over the connection's rate: it is answered ``rate_limited`` and
    not processed; persistent abuse closes the socket 1008."""
    verdict = rate.check()
    if verdict == "ok":
        return True
    services.metrics.limit_rejections.labels("frame_rate").inc()
    if verdict == "close":
        services.metrics.closes.labels(endpoint, str(CLOSE_POLICY_VIOLATION)).inc()
        await _close(websocket, CLOSE_POLICY_VIOLATION, "frame rate limit exceeded")
    else:
        limit = services.settings.frame_rate_per_second
        await answer(
            websocket, {"type": "error", "code": "rate_limited", "message": f"over {limit:g} frames/s"}
        )
    return False


# ---------------------------------------------------------------------- softphone


async def call_socket(websocket: WebSocket) -> None:
    """``/v1/calls/{call_id}``: start, utterances, end from the softphone or CCaaS integration."""
    services = _services(websocket)
    call_id = websocket.path_params["call_id"]
    if not _ID.match(call_id):
        await websocket.close(code=CLOSE_POLICY_VIOLATION, reason="invalid call id")
        return
    if await _refuse_until_ready(websocket, services, "call"):
        return
    assert services.calls is not None
    calls = services.calls
    conn = ConnectionLog(log, {"conn": f"call:{call_id}#{next(_connection_ids)}"})
    metrics, settings = services.metrics, services.settings
    await websocket.accept()
    metrics.connections.labels("call").inc()
    metrics.connections_total.labels("call").inc()
    owner = object()
    started = False
    ended = False
    errors_in_a_row = 0
    rate = _rate_limit(settings)

    async def close_superseded() -> None:
        await _close(websocket, CLOSE_POLICY_VIOLATION, "superseded by a newer connection for this call")

    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            received_at = time.perf_counter()
            if not await _within_rate(websocket, services, "call", rate, _send):
                if rate.refused_in_a_row >= rate.close_after:
                    break
                continue
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            utterance_id = None
            try:
                frame = parse_client_frame(data, max_bytes=settings.max_frame_bytes)
                metrics.frames.labels(frame.type).inc()
                if isinstance(frame, UtteranceFrame):
                    utterance_id = frame.utterance_id
                    if not started:
                        raise ProtocolError("not_started", "send a 'start' frame before utterances")
                    calls.utterance(call_id, frame, received_at)
                elif isinstance(frame, StartFrame):
                    if started:
                        raise ProtocolError("already_started", "this connection already started the call")
                    _, resumed = await calls.start(call_id, frame, owner=owner, close_owner=close_superseded)
                    started = True
                    await _send(websocket, {"type": "started", "call_id": call_id, "resumed": resumed})
                elif isinstance(frame, EndFrame):
                    if not started:
                        raise ProtocolError("not_started", "send a 'start' frame before 'end'")
                    try:
                        ack = await calls.end(call_id, frame.reason or "completed")
                    except ProtocolError:
                        raise
                    except Exception:
                        conn.exception("storing the call failed")
                        raise ProtocolError(
                            "store_unavailable", "the call could not be stored; send 'end' again"
                        ) from None
                    ended = True
                    await _send(websocket, ack)
                    await _close(websocket, CLOSE_NORMAL, "call ended")
                    break
                errors_in_a_row = 0
            except ProtocolError as error:
                metrics.protocol_errors.labels(error.code).inc()
                if error.close_code == CLOSE_MESSAGE_TOO_BIG:
                    metrics.limit_rejections.labels("frame_size").inc()
                if error.close_code is not None:
                    metrics.closes.labels("call", str(error.close_code)).inc()
                    await _close(websocket, error.close_code, error.message)
                    break
                await _send(websocket, error.to_frame(utterance_id))
                errors_in_a_row += 1
                if errors_in_a_row >= settings.max_consecutive_errors:
                    metrics.closes.labels("call", str(CLOSE_POLICY_VIOLATION)).inc()
                    await _close(websocket, CLOSE_POLICY_VIOLATION, "too many invalid frames")
                    break
    except WebSocketDisconnect:
        pass
    except Exception:
        conn.exception("unexpected error")
        metrics.closes.labels("call", str(CLOSE_INTERNAL_ERROR)).inc()
        await _close(websocket, CLOSE_INTERNAL_ERROR, "internal error")
    finally:
        metrics.connections.labels("call").dec()
        if started and not ended:
            calls.detach(call_id, owner)


# ---------------------------------------------------------------------- listeners


async def _pump(
    websocket: WebSocket,
    services: Services,
    endpoint: str,
    outbox: Outbox,
    channels: list[str],
    greet: Callable[[], Awaitable[list[dict[str, Any]]]],
    on_client: Callable[[dict[str, Any], Callable[[dict[str, Any]], None]], Awaitable[None]],
) -> None:
    """Reader and writer of a listening socket in one task group: when one ends, both end.

    Only the writer sends, so replies to client frames go through the outbox too."""

    def reply(payload: dict[str, Any]) -> None:
        outbox.put_direct(encode(payload, droppable=False))

    metrics = services.metrics
    await websocket.accept()
    metrics.connections.labels(endpoint).inc()
    metrics.connections_total.labels(endpoint).inc()
    for channel in channels:
        await services.bus.subscribe(channel, outbox)  # subscribe before the snapshot: no gap
    try:
        for payload in await greet():
            await _send(websocket, payload)

        async def writer() -> None:
            while True:
                message = await outbox.get()
                if message is None:
                    metrics.closes.labels(endpoint, str(CLOSE_TRY_AGAIN_LATER)).inc()
                    await _close(websocket, CLOSE_TRY_AGAIN_LATER, "client too slow; reconnect")
                    return
                await websocket.send_text(message.text)

        async def reader() -> None:
            errors_in_a_row = 0
            rate = _rate_limit(services.settings)

            async def refuse(_ws: WebSocket, payload: dict[str, Any]) -> None:
                reply(payload)

            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if not await _within_rate(websocket, services, endpoint, rate, refuse):
                    if rate.refused_in_a_row >= rate.close_after:
                        return
                    continue
                try:
                    text = message.get("text")
                    if text is None:
                        raise ProtocolError("binary_not_supported", "frames must be JSON text")
                    if len(text) > services.settings.max_frame_bytes:
                        metrics.limit_rejections.labels("frame_size").inc()
                        await _close(websocket, CLOSE_MESSAGE_TOO_BIG, "frame too large")
                        return
                    try:
                        frame = json.loads(text)
                    except (ValueError, RecursionError):  # deep nesting: a RuntimeError, not ValueError
                        raise ProtocolError("invalid_json", "frame is not valid JSON") from None
                    if not isinstance(frame, dict):
                        raise ProtocolError("not_an_object", "frame must be a JSON object")
                    if frame.get("type") == "ping":
                        reply({"type": "pong"})
                    else:
                        await on_client(frame, reply)
                    errors_in_a_row = 0
                except ProtocolError as error:
                    metrics.protocol_errors.labels(error.code).inc()
                    reply(error.to_frame())
                    errors_in_a_row += 1
                    if errors_in_a_row >= services.settings.max_consecutive_errors:
                        await _close(websocket, CLOSE_POLICY_VIOLATION, "too many invalid frames")
                        return

        async with asyncio.TaskGroup() as group:
            tasks = {group.create_task(reader()), group.create_task(writer())}
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
    except* (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the peer went away mid-send
    finally:
        for channel in list(channels):
            await services.bus.unsubscribe(channel, outbox)
        metrics.connections.labels(endpoint).dec()


async def agent_socket(websocket: WebSocket) -> None:
    """``/v1/agents/{agent_id}``: assist events and lifecycle of this agent's calls only."""
    services = _services(websocket)
    agent_id = websocket.path_params["agent_id"]
    if not _ID.match(agent_id):
        await websocket.close(code=CLOSE_POLICY_VIOLATION, reason="invalid agent id")
        return
    if await _refuse_until_ready(websocket, services, "agent"):
        return
    outbox = Outbox(
        services.settings.agent_queue_size,
        on_drop=lambda _m: services.metrics.outbox_dropped.labels("agent").inc(),
    )

    async def greet() -> list[dict[str, Any]]:
        calls = await services.registry.snapshot(agent_id=agent_id)
        frames: list[dict[str, Any]] = [{"type": "snapshot", "calls": calls}]
        assert services.calls is not None
        local = services.calls.sessions_for_agent(agent_id)
        frames += [session.resume_state() for session in local]
        here = {session.call_id for session in local}
        for call in calls:  # calls live on other processes (a cluster-wide registry knows them)
            if call["call_id"] not in here and (state := await services.registry.call_state(call["call_id"])):
                frames.append(state)
        return frames

    async def on_client(frame: dict[str, Any], reply: Callable[[dict[str, Any]], None]) -> None:
        for extension in services.extensions.values():  # e.g. the widget's suggestion feedback
            handle = getattr(extension, "on_agent_frame", None)
            if handle is not None and (answer := await handle(agent_id, frame)) is not None:
                reply(answer)
                return
        raise ProtocolError("unknown_type", f"unknown frame type {frame.get('type')!r} on the agent socket")

    await _pump(websocket, services, "agent", outbox, [keys.agent_channel(agent_id)], greet, on_client)


async def supervisor_socket(websocket: WebSocket) -> None:
    """``/v1/supervisor``: snapshot of live calls, then updates and alerts.

    Client frames: ``{"type": "watch", "call_id": ...}`` streams one call's transcript and
    suggestions (drill-down); ``{"type": "unwatch", "call_id": ...}`` stops it.
    """
    services = _services(websocket)
    if await _refuse_until_ready(websocket, services, "supervisor"):
        return
    principal = principal_of(websocket)
    scope = TeamFilter(principal.teams) if principal.teams else None
    on_drop = lambda _m: services.metrics.outbox_dropped.labels("supervisor").inc()  # noqa: E731
    size = services.settings.supervisor_queue_size
    outbox = ScopedOutbox(size, scope, on_drop=on_drop) if scope else Outbox(size, on_drop=on_drop)
    channels = [keys.SUPERVISOR_CHANNEL]

    async def greet() -> list[dict[str, Any]]:
        calls = await services.registry.snapshot()
        if scope is not None:  # a team-scoped supervisor: only its teams' calls
            calls = [call for call in calls if scope.show(call)]
        return [{"type": "snapshot", "calls": calls}]

    async def on_client(frame: dict[str, Any], reply: Callable[[dict[str, Any]], None]) -> None:
        kind, call_id = frame.get("type"), frame.get("call_id")
        if kind not in ("watch", "unwatch"):
            raise ProtocolError("unknown_type", f"unknown frame type {kind!r} on the supervisor socket")
        if not isinstance(call_id, str) or not _ID.match(call_id):
            raise ProtocolError("missing_field", "watch/unwatch needs a valid 'call_id'", field="call_id")
        channel = keys.call_channel(call_id)
        if kind == "watch" and scope is not None and call_id not in scope.visible:
            raise ProtocolError("forbidden", f"call {call_id} is not in your teams", field="call_id")
        if kind == "watch" and channel not in channels:
            channels.append(channel)
            await services.bus.subscribe(channel, outbox)
            assert services.calls is not None
            session = services.calls.local_session(call_id)
            state = (
                session.resume_state() if session is not None else await services.registry.call_state(call_id)
            )
            if state is not None:
                reply(state)
        elif kind == "unwatch" and channel in channels:
            channels.remove(channel)
            await services.bus.unsubscribe(channel, outbox)

    await _pump(websocket, services, "supervisor", outbox, channels, greet, on_client)
