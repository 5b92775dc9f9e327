"""The live router: validates input, keeps the engine in step with the state backend, makes
the engine's proposals real through atomic claims, and tells people what happened.

This is also the in-process API other extensions use (``services.extensions["routing"].router``):
``await router.route_call({...})``, ``await router.put_agent(agent_id, {...})``,
``await router.abandon(call_id)``, ``router.queue()``. Inputs are plain dicts (as in the HTTP
API) or profiles; bad input raises ``routing.errors.InvalidInput`` naming the field.

A background task wakes when something changes on its own (a wrap-up ends, a requirement
widens, a callback falls due) or another router changed the shared state, and dispatches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from routing import validation
from routing.config import RoutingConfig
from routing.engine import Assignment, RoutingEngine
from routing.errors import InvalidInput, NotFound, QueueFull, StateUnavailable
from routing.model import AgentRecord, CallerProfile, CallRecord, CallState
from routing.state import ClaimResult, RoutingState
from server import keys

log = logging.getLogger(__name__)

Publish = Callable[..., Awaitable[None]]
MAX_ROUNDS = 8
STATS_INTERVAL_S = 0.5


class ServiceLevelWindow:
    """Rolling service level of the calls this router answered or lost: the share answered
    within ``threshold_s`` among calls answered or abandoned in the last ``window_s``
    (abandons count as misses, the conservative convention)."""

    def __init__(self, threshold_s: float = 20.0, window_s: float = 1800.0) -> None:
        self.threshold_s = threshold_s
        self.window_s = window_s
        self._events: deque[tuple[float, bool]] = deque()

    def record(self, now: float, *, waited_s: float, answered: bool) -> None:
        self._events.append((now, answered and waited_s <= self.threshold_s))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._events and now - self._events[0][0] > self.window_s:
            self._events.popleft()

    def stats(self, now: float) -> dict[str, Any]:
        self._trim(now)
        within = sum(ok for _, ok in self._events)
        return {
            "service_level": round(within / len(self._events), 4) if self._events else None,
            "service_level_calls": len(self._events),
            "service_level_threshold_s": self.threshold_s,
            "service_level_window_s": self.window_s,
        }


class Router:
    def __init__(
        self,
        state: RoutingState,
        config: RoutingConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        publish: Publish | None = None,
        observe_decision: Callable[[str, float], None] | None = None,
    ) -> None:
        self.config = config or RoutingConfig()
        self.state = state
        self.engine = RoutingEngine(self.config)
        self.clock = clock
        self._publish = publish
        self._observe = observe_decision
        self.counters: Counter[str] = Counter()
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stats_dirty = True
        self._stats_sent = 0.0
        self.service_level = ServiceLevelWindow()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        await self.state.start()
        agents, calls = await self.state.load()
        for agent in agents:
            self.engine.apply_agent(agent)
        for call in calls:
            self.engine.apply_call(call)
        if background:
            self._task = asyncio.create_task(self._run(), name="routing-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.state.close()

    async def _run(self) -> None:
        state_outage = False
        while True:
            try:
                now = self.clock()
                wake = self.engine.next_wakeup(now)
                timeout = (
                    self.config.tick_s if wake is None else min(self.config.tick_s, max(0.005, wake - now))
                )
                kicked = asyncio.create_task(self._kick.wait(), name="routing-kick")
                changed = asyncio.create_task(self.state.wait_for_changes(timeout), name="routing-changes")
                try:
                    await asyncio.wait(
                        {kicked, changed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for task in (kicked, changed):
                        task.cancel()
                    await asyncio.gather(kicked, changed, return_exceptions=True)
                self._kick.clear()
                await self.dispatch()
                await self._maybe_publish_stats()
                if state_outage:
                    log.info("routing dispatcher: state store reachable again")
                    state_outage = False
            except asyncio.CancelledError:
                raise
            except StateUnavailable as exc:  # Redis down or loading: expected, log once per outage
                if not state_outage:
                    log.warning("routing dispatcher: state store unavailable (%s); retrying", exc)
                    state_outage = True
                await asyncio.sleep(self.config.tick_s)
            except Exception:
                log.warning("routing dispatcher: retrying after an error", exc_info=True)
                await asyncio.sleep(self.config.tick_s)

    # -- keeping the engine in step ---------------------------------------------------------------

    def _apply(self, record: AgentRecord | CallRecord | None) -> None:
        if record is None:
            return
        if isinstance(record, AgentRecord):
            self.engine.apply_agent(record)
        else:
            self.engine.apply_call(record)
        self._stats_dirty = True
        self._kick.set()  # the dispatcher recomputes its next wake-up

    async def sync(self) -> None:
        for record in await self.state.changes():
            self._apply(record)

    # -- the in-process API ------------------------------------------------------------------------

    async def put_agent(self, agent_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Create or update an agent's profile and/or status (see docs/routing.md)."""
        await self.sync()
        current = self.engine.agent(agent_id) or await self.state.get_agent(agent_id)
        profile, status, call_id, wrap = validation.agent_update(
            agent_id, data, None if current is None else current.profile, self.config
        )
        if profile is None and status is None and current is not None:
            return current.public(self.clock())
        record = await self.state.put_agent(agent_id, profile, status, call_id, self.clock(), wrap)
        self._apply(record)
        self.counters["agent_updates"] += 1
        await self.dispatch()
        latest = self.engine.agent(agent_id) or record
        return latest.public(self.clock())

    async def route_call(
        self, data: dict[str, Any] | CallerProfile, *, callback_number: str | None = None
    ) -> dict[str, Any]:
        """Route a caller: the assignment with its explanation, or the place in the queue.

        With ``callback_number`` the call is a callback from the start (e.g. a retention case
        opened by analytics): nobody is on the line, so it never abandons, and its assignment
        says ``callback: true``."""
        await self.sync()
        now = self.clock()
        raw = data.model_dump() if isinstance(data, CallerProfile) else data
        profile = validation.caller(raw, self.config, lambda a: self.engine.agent(a) is not None, now)
        if len(self.engine.queue) >= self.config.max_queued:
            raise QueueFull(f"{len(self.engine.queue)} calls are already waiting (max_queued)")
        wait_start = min(profile.wait_start if profile.wait_start is not None else now, now)
        record = await self.state.add_call(
            CallRecord(profile=profile, state=CallState.QUEUED, enqueued_at=now, wait_start=wait_start)
        )
        self._apply(record)
        self.counters["calls"] += 1
        if callback_number is not None:
            record = await self.state.update_callback(
                record.call_id, offered=True, accepted=True, number=callback_number
            )
            self._apply(record)
        made = await self.dispatch()
        mine = next((a for a in made if a.call_id == profile.call_id), None)
        if mine is not None:
            return {"status": "assigned", **mine.public()}
        return await self.get_call(profile.call_id)

    async def abandon(self, call_id: str) -> dict[str, Any]:
        """The caller hung up while waiting."""
        now = self.clock()
        record = await self.state.abandon(call_id, now)
        self._apply(record)
        self.counters["abandoned"] += 1
        self.service_level.record(now, waited_s=now - record.wait_start, answered=False)
        return {"status": "abandoned", **record.public(self.clock())}

    async def accept_callback(self, call_id: str, number: str | None = None) -> dict[str, Any]:
        """The caller took the callback offer and hung up; the call keeps its place."""
        record = await self.state.update_callback(call_id, offered=True, accepted=True, number=number)
        self._apply(record)
        self.counters["callbacks_accepted"] += 1
        return await self.get_call(call_id)

    async def get_call(self, call_id: str) -> dict[str, Any]:
        await self.sync()
        now = self.clock()
        record = self.engine.call(call_id)
        if record is None or record.state is not CallState.QUEUED:
            record = await self.state.get_call(call_id) or record
        if record is None:
            raise NotFound(f"unknown call {call_id}")
        out = {"status": record.state.value, **record.public(now)}
        if record.state is CallState.QUEUED and self.engine.queue.get(call_id) is not None:
            out["position"] = self.engine.position(call_id, now)
            out["queue_length"] = len(self.engine.queue)
            out["explanation"] = self.engine.explain_waiting(call_id, now)
        return out

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        await self.sync()
        record = self.engine.agent(agent_id) or await self.state.get_agent(agent_id)
        if record is None:
            raise NotFound(f"unknown agent {agent_id}")
        return record.public(self.clock())

    async def agents(self) -> list[dict[str, Any]]:
        await self.sync()
        now = self.clock()
        return [r.public(now) for r in self.engine.agents.records]

    async def queue(self, limit: int = 1000) -> dict[str, Any]:
        await self.sync()
        now = self.clock()
        return {
            **self.engine.stats(now),
            **self.service_level.stats(now),
            "calls": self.engine.snapshot(now, limit),
        }

    def predicted_workload_s(self) -> float:
        """Predicted handle seconds of every waiting call (escalated calls x1.4): for WFM."""
        return self.engine.predicted_workload_s(self.clock())

    async def call_ended(self, agent_id: str, call_id: str) -> bool:
        """The agent's call ended (from the ``calls`` stream): start the timed wrap-up."""
        await self.sync()
        record = self.engine.agent(agent_id)
        if record is None or record.call_id != call_id:
            return False
        try:
            await self.put_agent(agent_id, {"status": "wrap_up", "call_id": call_id})
        except InvalidInput:
            return False
        return True

    # -- dispatch ------------------------------------------------------------------------------------

    async def dispatch(self) -> list[Assignment]:
        """Make every assignment possible now. Returns the ones this router made."""
        async with self._lock:
            made: list[Assignment] = []
            for _ in range(MAX_ROUNDS):
                await self.sync()
                now = self.clock()
                await self._offer_callbacks(now)
                started = time.perf_counter()
                proposals = self.engine.propose(now)
                if proposals and self._observe is not None:
                    self._observe(proposals[0].explanation["strategy"], time.perf_counter() - started)
                if not proposals:
                    break
                lost = False
                for proposal in proposals:
                    result = await self.state.claim(
                        proposal.call_id, proposal.agent_id, now, proposal.explanation
                    )
                    self._apply(result.agent)
                    self._apply(result.call)
                    if result.ok:
                        made.append(proposal)
                        self.counters["assigned"] += 1
                        if result.call is not None:
                            self.service_level.record(
                                now, waited_s=now - result.call.wait_start, answered=True
                            )
                        await self._announce(proposal, result)
                    else:
                        lost = True
                        self.counters[f"claim_lost_{result.reason}"] += 1
                if not lost:
                    # Proposals are a maximum matching: once all went through, no free agent can
                    # take any waiting call. Lost claims mean another router moved: look again.
                    break
            return made

    async def _offer_callbacks(self, now: float) -> None:
        for call_id in self.engine.due_callback_offers(now):
            try:
                record = await self.state.update_callback(call_id, offered=True, accepted=False, number=None)
            except Exception:
                continue  # assigned or abandoned meanwhile
            self._apply(record)
            self.counters["callbacks_offered"] += 1
            payload = {
                "type": "routing.callback_offer",
                "call_id": call_id,
                "waited_s": round(now - record.wait_start, 3),
                "position": self.engine.position(call_id, now),
            }
            await self._send([keys.call_channel(call_id), keys.SUPERVISOR_CHANNEL], payload)

    async def _announce(self, assignment: Assignment, result: ClaimResult) -> None:
        call = result.call
        assert call is not None
        payload = {
            "type": "call.routed",
            **assignment.public(),
            "caller": call.profile.model_dump(),
            "waited_s": round((call.assigned_at or 0.0) - call.wait_start, 3),
            "why": assignment.explanation["why"],
        }
        await self._send(
            [keys.agent_channel(assignment.agent_id), keys.call_channel(assignment.call_id)], payload
        )

    async def _send(
        self, channels: Sequence[str], payload: dict[str, Any], *, droppable: bool = False
    ) -> None:
        if self._publish is None:
            return
        try:
            await self._publish(channels, payload, droppable=droppable)
        except Exception:
            log.warning("routing: publishing %s failed", payload.get("type"), exc_info=True)

    async def _maybe_publish_stats(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and (not self._stats_dirty or now - self._stats_sent < STATS_INTERVAL_S):
            return
        self._stats_dirty = False
        self._stats_sent = now
        await self._send(
            [keys.SUPERVISOR_CHANNEL],
            {"type": "routing.queue", **self.engine.stats(now), **self.service_level.stats(now)},
            droppable=True,
        )
