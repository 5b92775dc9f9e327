"""Live calls on this process: ordering, analysis scheduling, publishing, durable end.

Per call, frames are applied strictly in arrival order while the analyses of successive
utterances still overlap (each starts on receipt; only the state update waits for the
previous one). Every task is tracked and its failure logged; nothing is orphaned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from assist.engine import AssistEngine
from assist.protocol import ProtocolError, StartFrame, UtteranceFrame
from assist.session import AGENT, CALL, SUPERVISOR, CallSession, Outbound
from server import keys
from server.bus import Bus, BusUnavailable
from server.metrics import Metrics
from server.registry import LiveRegistry
from server.settings import Settings
from server.store import CallStore

log = logging.getLogger(__name__)
RECENTLY_ENDED = 10_000
RELAY_MIN_AGE_S = 10.0


@dataclass
class LiveCall:
    session: CallSession
    owner: object | None
    close_owner: Callable[[], Awaitable[None]] | None
    chain: asyncio.Task[None] | None = None
    grace: asyncio.Task[None] | None = None
    ending: bool = False
    finished: tuple[list[Outbound], dict[str, Any]] | None = None
    utterance_count: int = 0
    final_count: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class CallManager:
    def __init__(
        self,
        engine: AssistEngine,
        bus: Bus,
        store: CallStore,
        registry: LiveRegistry,
        metrics: Metrics,
        settings: Settings,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.store = store
        self.registry = registry
        self.metrics = metrics
        self.settings = settings
        self.calls: dict[str, LiveCall] = {}
        self._recently_ended: OrderedDict[str, None] = OrderedDict()
        self._background: set[asyncio.Task[Any]] = set()
        self._announcing: set[str] = set()  # call.ended in flight; the relay leaves these alone

    # ------------------------------------------------------------------ lifecycle

    async def start(
        self,
        call_id: str,
        frame: StartFrame,
        *,
        owner: object,
        close_owner: Callable[[], Awaitable[None]] | None = None,
    ) -> tuple[CallSession, bool]:
        """Start a call, or resume it when the softphone reconnects within the grace period."""
        live = self.calls.get(call_id)
        if live is not None:
            if live.ending:
                raise ProtocolError("call_ending", f"call {call_id} is ending")
            if live.session.agent_id != frame.agent_id:
                raise ProtocolError("call_in_progress", f"call {call_id} is live with another agent")
            if live.grace is not None:
                live.grace.cancel()
                live.grace = None
            previous_close = live.close_owner if live.owner is not None and live.owner is not owner else None
            live.owner, live.close_owner = owner, close_owner
            if previous_close is not None:  # a half-open old socket: the new connection takes over
                self._spawn(previous_close(), f"supersede-{call_id}")
            return live.session, True
        if call_id in self._recently_ended or await self.store.get_call(call_id) is not None:
            raise ProtocolError("call_already_ended", f"call {call_id} has already ended and was stored")
        await self.registry.claim(call_id)  # cluster-wide: no other process runs this call
        if call_id in self.calls:  # a second 'start' for this id won the race while we awaited
            return await self.start(call_id, frame, owner=owner, close_owner=close_owner)
        session = self.engine.new_session(
            call_id, frame, started_at=frame.started_at or time.time(), process=self.settings.process_name
        )
        self.calls[call_id] = LiveCall(session, owner, close_owner)
        self.metrics.live_calls.set(len(self.calls))
        await self.registry.upsert(session.summary(), state=session.resume_state())
        await self._publish(session, session.begin())
        await self._stream(
            "call.started", {"call_id": call_id, "agent_id": session.agent_id, "call": session.summary()}
        )
        return session, False

    def utterance(self, call_id: str, frame: UtteranceFrame, received_at: float) -> None:
        """Schedule one utterance; returns at once (the socket keeps reading)."""
        live = self._live(call_id)
        if live.ending:
            raise ProtocolError("call_ending", f"call {call_id} is ending; no more utterances")
        if live.final_count >= self.settings.max_utterances_per_call:
            # The call goes on and is stored; only the extra utterances are refused.
            self.metrics.limit_rejections.labels("utterances_per_call").inc()
            raise ProtocolError(
                "call_limit", f"call {call_id} reached {self.settings.max_utterances_per_call} utterances"
            )
        live.final_count += frame.is_final
        live.utterance_count += 1
        previous = live.chain
        work = (
            self._final(live, frame, received_at, previous)
            if frame.is_final
            else self._interim(live, frame, previous)
        )
        task = asyncio.create_task(work, name=f"utterance-{call_id}-{live.utterance_count}")
        live.chain = task
        live.tasks.add(task)
        task.add_done_callback(lambda t: self._finished(live.tasks, t))

    async def end(self, call_id: str, reason: str = "completed") -> dict[str, Any]:
        """Drain the call's analyses, store it durably, then announce it. Retry-safe."""
        live = self._live(call_id)
        live.ending = True
        if live.grace is not None and live.grace is not asyncio.current_task():
            live.grace.cancel()
        if live.tasks:
            _, pending = await asyncio.wait(set(live.tasks), timeout=self.settings.end_drain_seconds)
            for task in pending:
                log.warning("call %s: analysis still running at end, cancelled", call_id)
                task.cancel()
        if live.finished is None:
            live.finished = live.session.finish(reason)
        events, record = live.finished
        self._announcing.add(call_id)  # stored and not yet announced: the relay must leave it to us
        try:
            created = await self.store.save_call(record)
        except Exception:
            self._announcing.discard(call_id)
            self.metrics.store_writes.labels("error").inc()
            live.ending = False  # the client may send 'end' again
            raise
        self.metrics.store_writes.labels("created" if created else "duplicate").inc()
        del self.calls[call_id]
        self._recently_ended[call_id] = None
        while len(self._recently_ended) > RECENTLY_ENDED:
            self._recently_ended.popitem(last=False)
        self.metrics.live_calls.set(len(self.calls))
        self.metrics.calls_ended.labels(reason).inc()
        await self._publish(live.session, events)
        await self.registry.remove(call_id)
        await self.announce_ended(record)
        return {"type": "ended", "call_id": call_id, "stored": True, "utterances": len(record["utterances"])}

    def detach(self, call_id: str, owner: object) -> None:
        """The softphone socket went away without 'end': wait for a reconnect, then end it."""
        live = self.calls.get(call_id)
        if live is None or live.owner is not owner or live.ending:
            return
        live.owner, live.close_owner = None, None
        live.grace = self._spawn(self._expire(call_id, live), f"grace-{call_id}")

    async def _expire(self, call_id: str, live: LiveCall) -> None:
        await asyncio.sleep(self.settings.reconnect_grace_seconds)
        if self.calls.get(call_id) is live and live.owner is None:
            await self.end(call_id, "disconnected")

    async def announce_ended(self, record: dict[str, Any]) -> bool:
        """call.ended onto the stream; if the bus is down the store's outbox keeps it for the relay."""
        call_id = record["call_id"]
        self._announcing.add(call_id)
        try:
            await self._stream(
                "call.ended",
                {"call_id": call_id, "agent_id": record["agent_id"], "record": record},
                raise_errors=True,
            )
            await self.store.mark_published(call_id)
        except Exception as exc:
            log.warning("call %s stored; call.ended not yet on the bus (will retry): %s", call_id, exc)
            return False
        finally:
            self._announcing.discard(call_id)
        return True

    async def relay_unpublished(self, batch: int = 100) -> int:
        """Re-announce stored calls whose call.ended never reached the bus, until none is left
        or the bus fails again. At-least-once: consumers are idempotent by call id."""
        sent = 0
        while True:
            # Younger records are most likely being announced right now (here or, with a store
            # shared by several processes, by a sibling): leave them to that announcement.
            stored_before = time.time() - RELAY_MIN_AGE_S
            unpublished = await self.store.unpublished(batch, stored_before=stored_before)
            records = [r for r in unpublished if r["call_id"] not in self._announcing]
            for record in records:
                if not await self.announce_ended(record):
                    return sent
                sent += 1
            if len(records) < batch:
                if sent:
                    log.info("outbox relay: %d stored call(s) announced on the bus", sent)
                return sent

    async def close(self) -> None:
        """Shutdown: every live call is ended and stored; nothing in flight is lost."""
        for call_id in list(self.calls):
            try:
                await self.end(call_id, "server_shutdown")
            except Exception:
                log.exception("call %s could not be stored at shutdown", call_id)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def local_session(self, call_id: str) -> CallSession | None:
        live = self.calls.get(call_id)
        return live.session if live else None

    def sessions_for_agent(self, agent_id: str) -> list[CallSession]:
        return [live.session for live in self.calls.values() if live.session.agent_id == agent_id]

    # ------------------------------------------------------------------ per utterance

    async def _interim(
        self, live: LiveCall, frame: UtteranceFrame, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        await self._publish(live.session, live.session.interim(frame))

    async def _final(
        self, live: LiveCall, frame: UtteranceFrame, received_at: float, previous: asyncio.Task[None] | None
    ) -> None:
        session = live.session
        # Analyses read redacted text; starts now, overlapping the previous utterance.
        analysis = asyncio.ensure_future(self.engine.analyze(session.redacted(frame)))
        try:
            if previous is not None:
                await asyncio.wait({previous})
            await self._publish(session, session.live_transcript(frame))
            semantic, sentiment = await analysis
        except BaseException:
            analysis.cancel()
            raise
        events = session.final(frame, semantic, sentiment)
        for event in events:
            if event.payload["type"] == "assist":
                latency = time.perf_counter() - received_at
                event.payload["latency_ms"] = round(latency * 1000, 2)
                self.metrics.assist_latency.observe(latency)
        await self._publish(session, events)
        await self.registry.upsert(session.summary(), state=session.resume_state())

    # ------------------------------------------------------------------ plumbing

    def _live(self, call_id: str) -> LiveCall:
        live = self.calls.get(call_id)
        if live is None:
            raise ProtocolError("unknown_call", f"call {call_id} is not live on this server")
        return live

    async def _publish(self, session: CallSession, events: list[Outbound]) -> None:
        routes = {
            AGENT: keys.agent_channel(session.agent_id),
            SUPERVISOR: keys.SUPERVISOR_CHANNEL,
            CALL: keys.call_channel(session.call_id),
        }
        for event in events:
            await self.bus.publish(
                [routes[t] for t in event.targets], event.payload, droppable=event.droppable
            )

    async def _stream(self, event: str, fields: dict[str, Any], *, raise_errors: bool = False) -> None:
        try:
            await self.bus.stream_add(keys.CALLS_STREAM, {"event": event, **fields})
        except Exception as exc:
            if raise_errors:
                raise
            # An outage is expected and logged by the bus; only a surprise deserves a traceback.
            expected = isinstance(exc, BusUnavailable | ConnectionError | TimeoutError)
            log.warning(
                "could not add %s to the %s stream: %s", event, keys.CALLS_STREAM, exc, exc_info=not expected
            )

    def _spawn(self, work: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(work)  # type: ignore[assignment]
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(lambda t: self._finished(self._background, t))
        return task

    @staticmethod
    def _finished(owner: set[Any], task: asyncio.Task[Any]) -> None:
        owner.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    @staticmethod
    async def cancel_quietly(task: asyncio.Task[Any]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
