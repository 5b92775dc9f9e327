"""The routing decision core: pure and synchronous (no I/O, no clock of its own).

It holds a columnar copy of the agents and the waiting calls and proposes assignments:

- one call, several free agents: the best agent for the call (ties: longest idle);
- one free agent, several waiting calls: the best call for the agent;
- several of both: the jointly optimal assignment (``scipy.optimize.linear_sum_assignment``,
  maximum cardinality first, then maximum total score) rather than a greedy pass.

The score of call *i* for agent *a* is ``priority_i(t) + match_weight * match(i, a)`` where
priority is the seed's queue priority plus an aging term that grows without bound with the
wait (see ``RoutingConfig.aging_rate`` for the bound it proves). Eligibility: the agent speaks
the caller's language (hard filter); an escalated caller (IVR sentiment below the threshold)
takes only senior, high-CSAT agents; for the first seconds of its wait a call also requires
its product, then its specialization (overflow widens them), each only while some logged-in
agent could meet it.

The engine proposes; whoever owns the state (memory or Redis) commits through atomic claims
and feeds the resulting records back with ``apply_agent`` / ``apply_call``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from routing import scoring
from routing.config import RoutingConfig
from routing.model import AgentRecord, CallRecord, CallState
from routing.tables import NONE, OFFLINE, WRAP_UP, AgentTable, CallQueue

TOP_CANDIDATES = 5
RECENT_CALLS = 10_000


@dataclass(frozen=True)
class Assignment:
    call_id: str
    agent_id: str
    score: float
    priority: float
    match: float
    predicted_handle_time_s: float
    escalated: bool
    callback: bool
    explanation: dict[str, Any] = field(repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "score": round(self.score, 6),
            "predicted_handle_time_s": round(self.predicted_handle_time_s, 1),
            "escalated": self.escalated,
            "callback": self.callback,
            "explanation": self.explanation,
        }


@dataclass
class _Eligibility:
    calls: np.ndarray  # call slots (rows)
    agents: np.ndarray  # agent slots (columns)
    ok: np.ndarray  # rows x columns
    score: np.ndarray  # rows x columns
    priority: np.ndarray  # rows
    wait: np.ndarray  # rows
    held_product: np.ndarray  # rows
    held_specialization: np.ndarray  # rows
    needs_senior: np.ndarray  # rows


class RoutingEngine:
    def __init__(self, config: RoutingConfig | None = None) -> None:
        self.config = config or RoutingConfig()
        self.agents = AgentTable(self.config)
        self.queue = CallQueue()
        self.recent: OrderedDict[str, CallRecord] = OrderedDict()
        self._staffed: dict[tuple[int, int, int, bool], bool] = {}
        self._staffed_epoch = -1
        self._next_seq = 0

    # -- state fed in by the owner of the records --------------------------------------------

    def apply_agent(self, record: AgentRecord) -> None:
        current = self.agents.get(record.agent_id)
        if current is None or record.version >= current.version:
            self.agents.upsert(record)

    def apply_call(self, record: CallRecord) -> None:
        current = self.call(record.call_id)
        if current is not None and record.version < current.version:
            return
        self._next_seq = max(self._next_seq, record.seq + 1)
        if record.state is CallState.QUEUED:
            self.recent.pop(record.call_id, None)
            profile = record.profile
            agents = self.agents
            self.queue.put(
                record,
                scoring.static_priority(profile, self.config),
                agents.languages.add(profile.language),
                agents.products.add(profile.product),
                agents.specializations.add(profile.issue_category),
                agents.slot.get(profile.previous_agent_id or "", -1),
                scoring.escalated(profile, self.config),
            )
            agents._ensure_cols()
        else:
            self.queue.remove(record.call_id)
            self.recent[record.call_id] = record
            self.recent.move_to_end(record.call_id)
            while len(self.recent) > RECENT_CALLS:
                self.recent.popitem(last=False)

    def next_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def call(self, call_id: str) -> CallRecord | None:
        return self.queue.get(call_id) or self.recent.get(call_id)

    def agent(self, agent_id: str) -> AgentRecord | None:
        return self.agents.get(agent_id)

    # -- scores --------------------------------------------------------------------------------

    def _priority(self, calls: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        q, cfg = self.queue, self.config
        wait = np.maximum(now - q.wait_start[calls], 0.0)
        prio = (
            q.static[calls]
            + cfg.priority.wait * (np.minimum(wait, cfg.wait_cap_s) / cfg.wait_cap_s)
            + cfg.aging_rate * wait
        )
        return prio, wait

    def _capable(self, lang: int, product: int, special: int, senior: bool) -> np.ndarray:
        """Agents who speak the language and have the product / specialization (NONE: any)."""
        ag = self.agents
        n = len(ag)
        mask = ag.lang[:n, lang]
        if senior:
            mask = mask & ag.senior[:n]
        if product != NONE:
            mask = mask & ag.prod[:n, product]
        if special != NONE:
            mask = mask & ag.spec[:n, special]
        return mask

    def _is_staffed(self, lang: int, product: int, special: int, senior: bool) -> bool:
        """Does any logged-in agent meet this requirement? If none does, waiting for it is pointless."""
        agents = self.agents
        if self._staffed_epoch != agents.epoch:
            self._staffed.clear()
            self._staffed_epoch = agents.epoch
        key = (lang, product, special, senior)
        found = self._staffed.get(key)
        if found is None:
            found = self._staffed[key] = bool((agents.logged_in_mask() & self._capable(*key)).any())
        return found

    def _requirements(
        self, calls: np.ndarray, wait: np.ndarray, now: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per call: must it wait for a senior agent / its product / its specialization now?

        A requirement holds a call only while someone could meet it together with the
        requirements still standing: logged in (or, by default, free now or out of a timed
        wrap-up before the hold ends). Specialization is settled first because product is the
        first to be dropped."""
        q, overflow = self.queue, self.config.overflow
        senior = q.escalated[calls].copy()
        if self.config.escalation.hold_s is not None:
            senior &= wait < self.config.escalation.hold_s
        for row in np.flatnonzero(senior):
            senior[row] = self._is_staffed(int(q.lang[calls[row]]), NONE, NONE, True)
        product = (wait < overflow.product_hold_s) & (q.prod[calls] != NONE)
        special = (wait < overflow.specialization_hold_s) & (q.spec[calls] != NONE)
        if not (product.any() or special.any()):
            return senior, product, special
        due = self._due_times(now) if overflow.hold_only_if_agent_due else None
        earliest: dict[tuple[int, int, int, bool], float] = {}

        def possible(slot: int, key: tuple[int, int, int, bool], hold_s: float) -> bool:
            if due is None:
                return self._is_staffed(*key)
            if key not in earliest:
                mask = self._capable(*key)
                earliest[key] = float(due[mask].min()) if mask.any() else np.inf
            return earliest[key] <= q.wait_start[slot] + hold_s

        for row in np.flatnonzero(special):
            slot = int(calls[row])
            key = (int(q.lang[slot]), NONE, int(q.spec[slot]), bool(senior[row]))
            special[row] = possible(slot, key, overflow.specialization_hold_s)
        for row in np.flatnonzero(product):
            slot = int(calls[row])
            spec = int(q.spec[slot]) if special[row] else NONE
            key = (int(q.lang[slot]), int(q.prod[slot]), spec, bool(senior[row]))
            product[row] = possible(slot, key, overflow.product_hold_s)
        return senior, product, special

    def _due_times(self, now: float) -> np.ndarray:
        """When each agent is (or will surely be) free: now, the end of a timed wrap-up, or never."""
        ag = self.agents
        n = len(ag)
        due = np.full(n, np.inf)
        free = ag.free_mask(now)
        due[free] = now
        wrapping = (ag.status[:n] == WRAP_UP) & ~free
        due[wrapping] = ag.wrap_until[:n][wrapping]
        return due

    def _eligibility(self, calls: np.ndarray, agents: np.ndarray, now: float) -> _Eligibility:
        q, ag, cfg = self.queue, self.agents, self.config
        prio, wait = self._priority(calls, now)
        senior, held_p, held_s = self._requirements(calls, wait, now)
        ok = ag.lang[np.ix_(agents, q.lang[calls])].T
        product = ag.prod[np.ix_(agents, q.prod[calls])].T
        special = ag.spec[np.ix_(agents, q.spec[calls])].T
        if senior.any():
            ok[senior] &= ag.senior[agents]
        if held_p.any():
            ok[held_p] &= product[held_p]
        if held_s.any():
            ok[held_s] &= special[held_s]
        w = cfg.match
        per_agent = w.skill * (ag.skill[agents] / 5) + w.csat * (ag.csat[agents] / 5)
        match = w.product * product + w.specialization * special + per_agent[None, :]
        prev = q.prev[calls]
        if (prev >= 0).any():
            match = match + w.continuity * (prev[:, None] == agents[None, :])
        score = prio[:, None] + cfg.match_weight * match
        return _Eligibility(calls, agents, ok, score, prio, wait, held_p, held_s, senior)

    # -- decisions -------------------------------------------------------------------------------

    def free_agents(self, now: float) -> np.ndarray:
        return np.flatnonzero(self.agents.free_mask(now))

    def propose(self, now: float) -> list[Assignment]:
        """The assignments to make now (empty when no free agent can take any waiting call)."""
        agents = self.free_agents(now)
        calls = self.queue.active_slots()
        if agents.size == 0 or calls.size == 0:
            return []
        el = self._eligibility(calls, agents, now)
        rows = np.flatnonzero(el.ok.any(axis=1))
        cols = np.flatnonzero(el.ok.any(axis=0))
        if rows.size == 0:
            return []
        if rows.size == 1:
            return [self._best_agent_for_call(el, int(rows[0]), now)]
        if cols.size == 1:
            return [self._best_call_for_agent(el, int(cols[0]), now)]
        return self._joint(el, rows, cols, now)

    def _best_agent_for_call(self, el: _Eligibility, row: int, now: float) -> Assignment:
        ok = el.ok[row]
        scores = np.where(ok, el.score[row], -np.inf)
        best = scores.max()
        tied = np.flatnonzero(scores >= best - 1e-12)
        col = int(tied[np.argmin(self.agents.idle_from[el.agents[tied]])]) if tied.size > 1 else int(tied[0])
        ranked = self._top(scores, col)
        return self._assignment(
            el, row, col, now, "best_agent_for_call", ranked, int(ok.sum()), tied.size > 1
        )

    def _best_call_for_agent(self, el: _Eligibility, col: int, now: float) -> Assignment:
        ok = el.ok[:, col]
        scores = np.where(ok, el.score[:, col], -np.inf)
        best = scores.max()
        tied = np.flatnonzero(scores >= best - 1e-12)
        row = int(tied[np.argmin(self.queue.seq[el.calls[tied]])]) if tied.size > 1 else int(tied[0])
        ranked = self._top(scores, row)
        return self._assignment(
            el, row, col, now, "best_call_for_agent", ranked, int(ok.sum()), tied.size > 1, by_call=True
        )

    @staticmethod
    def _top(scores: np.ndarray, winner: int) -> list[int]:
        """Winner first, then the best other candidates (finite scores only)."""
        finite = np.flatnonzero(np.isfinite(scores))
        if finite.size > TOP_CANDIDATES:
            part = np.argpartition(-scores[finite], TOP_CANDIDATES)[:TOP_CANDIDATES]
            finite = finite[part]
        order = finite[np.argsort(-scores[finite], kind="stable")]
        return [winner, *[int(i) for i in order if i != winner]][:TOP_CANDIDATES]

    def _joint(self, el: _Eligibility, rows: np.ndarray, cols: np.ndarray, now: float) -> list[Assignment]:
        ok = el.ok[np.ix_(rows, cols)]
        score = el.score[np.ix_(rows, cols)]
        # Tie-breaks far below any real score difference: longest-idle agent, then earlier caller.
        idle = self.agents.idle_from[el.agents[cols]]
        seq = self.queue.seq[el.calls[rows]].astype(float)
        tie = -1e-9 * _rank01(idle)[None, :] - 1e-9 * _rank01(seq)[:, None]
        finite = np.where(ok, score, 0.0)
        spread = float(finite.max() - finite.min()) + 1.0
        big = spread * (min(ok.shape) + 1)  # an infeasible pair never buys score over a feasible one
        cost = np.where(ok, -(score + tie), big)
        r, c = linear_sum_assignment(cost)
        keep = ok[r, c]
        r, c = r[keep], c[keep]
        joint_total = float(score[r, c].sum())
        greedy_total, greedy_count = _greedy(ok, score)
        batch = {
            "calls": int(rows.size),
            "agents": int(cols.size),
            "assigned": int(r.size),
            "joint_total_score": round(joint_total, 6),
            "greedy_total_score": round(greedy_total, 6),
            "greedy_assigned": greedy_count,
        }
        out = []
        for i, j in zip(r, c, strict=True):
            row, col = int(rows[i]), int(cols[j])
            scores = np.where(el.ok[row], el.score[row], -np.inf)
            ranked = self._top(scores, col)
            out.append(
                self._assignment(
                    el, row, col, now, "joint_assignment", ranked, int(el.ok[row].sum()), False, batch=batch
                )
            )
        return out

    def _assignment(
        self,
        el: _Eligibility,
        row: int,
        col: int,
        now: float,
        strategy: str,
        ranked: list[int],
        considered: int,
        tie: bool,
        *,
        by_call: bool = False,
        batch: dict[str, Any] | None = None,
    ) -> Assignment:
        cfg = self.config
        call_slot, agent_slot = int(el.calls[row]), int(el.agents[col])
        record = self.queue.records[call_slot]
        agent = self.agents.records[agent_slot]
        assert record is not None
        caller = record.profile
        wait = float(el.wait[row])
        prio_factors = scoring.priority_factors(caller, wait, cfg)
        match_factors = scoring.match_factors(caller, agent.profile, cfg)
        prio, match = float(el.priority[row]), scoring.total(match_factors)
        is_escalated = bool(self.queue.escalated[call_slot])
        aht = agent.profile.avg_handle_time * (cfg.escalation.handle_time_factor if is_escalated else 1.0)

        def candidate(index: int) -> dict[str, Any]:
            if by_call:
                other = self.queue.records[int(el.calls[index])]
                assert other is not None
                return {
                    "call_id": other.call_id,
                    "score": round(float(el.score[index, col]), 6),
                    "priority": round(float(el.priority[index]), 6),
                    "waited_s": round(float(el.wait[index]), 3),
                }
            other_agent = self.agents.records[int(el.agents[index])]
            return {
                "agent_id": other_agent.agent_id,
                "score": round(float(el.score[row, index]), 6),
                "idle_s": round(now - float(self.agents.idle_from[int(el.agents[index])]), 3),
            }

        candidates = [candidate(i) for i in ranked]
        if by_call:
            runner = ranked[1] if len(ranked) > 1 else None
            runner_record = None if runner is None else self.queue.records[int(el.calls[runner])]
            runner_factors = (
                None
                if runner_record is None
                else {
                    **scoring.priority_factors(runner_record.profile, float(el.wait[runner]), cfg),
                    **_weighted(scoring.match_factors(runner_record.profile, agent.profile, cfg), cfg),
                }
            )
            winner_factors = {**prio_factors, **_weighted(match_factors, cfg)}
            margin = 0.0 if runner is None else float(el.score[row, col] - el.score[runner, col])
            reason = scoring.why(
                winner_factors, runner_factors, f"call {caller.call_id}",
                None if runner_record is None else f"call {runner_record.call_id}", margin,
            )  # fmt: skip
        else:
            runner = ranked[1] if len(ranked) > 1 else None
            runner_agent = None if runner is None else self.agents.records[int(el.agents[runner])]
            runner_factors = (
                None
                if runner_agent is None
                else _weighted(scoring.match_factors(caller, runner_agent.profile, cfg), cfg)
            )
            margin = 0.0 if runner is None else float(el.score[row, col] - el.score[row, runner])
            reason = scoring.why(
                _weighted(match_factors, cfg), runner_factors, f"agent {agent.agent_id}",
                None if runner_agent is None else f"agent {runner_agent.agent_id}", margin,
            )  # fmt: skip
        if tie:
            reason += " (longest idle)" if not by_call else " (earliest arrival)"
        if batch is not None:
            reason = (
                f"joint assignment of {batch['assigned']} calls to {batch['agents']} free agents "
                f"(total {batch['joint_total_score']:.3f} vs greedy {batch['greedy_total_score']:.3f}); "
                + reason
            )
        explanation: dict[str, Any] = {
            "strategy": strategy,
            "score": round(float(el.score[row, col]), 6),
            "priority": {"score": round(prio, 6), "factors": prio_factors},
            "match": {"score": round(match, 6), "weight": cfg.match_weight, "factors": match_factors},
            "requirements": self._requirement_text(el, row, caller),
            "candidates_considered": considered,
            "top_candidates": candidates,
            "why": reason,
            "predicted_handle_time_s": round(aht, 1),
        }
        if is_escalated:
            explanation["escalation"] = {
                "ivr_sentiment": caller.ivr_sentiment,
                "threshold": cfg.escalation.sentiment_below,
                "senior_required": bool(el.needs_senior[row]),
                "handle_time_factor": cfg.escalation.handle_time_factor,
            }
        if batch is not None:
            explanation["batch"] = batch
        return Assignment(
            call_id=caller.call_id,
            agent_id=agent.agent_id,
            score=float(el.score[row, col]),
            priority=prio,
            match=match,
            predicted_handle_time_s=aht,
            escalated=is_escalated,
            callback=record.callback,
            explanation=explanation,
        )

    def _requirement_text(self, el: _Eligibility, row: int, caller: Any) -> dict[str, Any]:
        return {
            "language": caller.language,
            "senior": bool(el.needs_senior[row]),
            "product": caller.product if el.held_product[row] else None,
            "specialization": caller.issue_category if el.held_specialization[row] else None,
        }

    # -- the queue as people see it ---------------------------------------------------------------

    def explain_waiting(self, call_id: str, now: float) -> dict[str, Any]:
        """Why a waiting call has no agent yet: which filters the free agents failed."""
        slot = self.queue.slot.get(call_id)
        if slot is None:
            return {}
        ag, q = self.agents, self.queue
        n = len(ag)
        calls = np.array([slot])
        prio, wait = self._priority(calls, now)
        senior, held_p, held_s = self._requirements(calls, wait, now)
        free = ag.free_mask(now)
        logged = ag.logged_in_mask()
        lang = ag.lang[:n, q.lang[slot]]
        stages = [("free", free), ("language", free & lang)]
        mask = free & lang
        if senior[0]:
            mask = mask & ag.senior[:n]
            stages.append(("senior", mask))
        if held_p[0]:
            mask = mask & ag.prod[:n, q.prod[slot]]
            stages.append(("product", mask))
        if held_s[0]:
            mask = mask & ag.spec[:n, q.spec[slot]]
            stages.append(("specialization", mask))
        record = q.records[slot]
        assert record is not None
        caller = record.profile
        if not (logged & lang).any():
            reason = f"no logged-in agent speaks '{caller.language}'"
        elif not free.any():
            reason = "every agent is busy"
        elif not (free & lang).any():
            reason = f"no free agent speaks '{caller.language}'"
        elif not mask.any():
            failed = next(name for name, m in stages if not m.any())
            reason = f"free agents lack the {failed} this call still requires"
        else:
            reason = "eligible free agents are taking higher-scoring calls"
        return {
            "strategy": "queued",
            "why": reason,
            "priority": {
                "score": round(float(prio[0]), 6),
                "factors": scoring.priority_factors(caller, float(wait[0]), self.config),
            },
            "requirements": {
                "language": caller.language,
                "senior": bool(senior[0]),
                "product": caller.product if held_p[0] else None,
                "specialization": caller.issue_category if held_s[0] else None,
            },
            "free_agents_passing": {name: int(m.sum()) for name, m in stages},
        }

    def ranked(self, now: float) -> list[tuple[int, float, float]]:
        """Waiting calls by current priority: (slot, priority, wait), highest first."""
        calls = self.queue.active_slots()
        if calls.size == 0:
            return []
        prio, wait = self._priority(calls, now)
        order = np.lexsort((self.queue.seq[calls], -prio))
        return [(int(calls[i]), float(prio[i]), float(wait[i])) for i in order]

    def position(self, call_id: str, now: float) -> int | None:
        """1 + calls ahead of this one among callers of the same language (whom it competes with)."""
        slot = self.queue.slot.get(call_id)
        if slot is None:
            return None
        q = self.queue
        calls = q.active_slots()
        calls = calls[q.lang[calls] == q.lang[slot]]
        prio, _ = self._priority(calls, now)
        mine = float(prio[np.flatnonzero(calls == slot)[0]])
        ahead = (prio > mine + 1e-12) | ((np.abs(prio - mine) <= 1e-12) & (q.seq[calls] < q.seq[slot]))
        return int(ahead.sum()) + 1

    def snapshot(self, now: float, limit: int = 1000) -> list[dict[str, Any]]:
        out = []
        positions: dict[int, int] = {}
        for slot, prio, wait in self.ranked(now)[:limit]:
            record = self.queue.records[slot]
            assert record is not None
            lang = int(self.queue.lang[slot])
            positions[lang] = positions.get(lang, 0) + 1
            out.append(
                {
                    "call_id": record.call_id,
                    "position": positions[lang],
                    "language": record.profile.language,
                    "tier": record.profile.tier,
                    "issue_category": record.profile.issue_category,
                    "priority": round(prio, 6),
                    "waited_s": round(wait, 3),
                    "escalated": bool(self.queue.escalated[slot]),
                    "stage": self.stage(wait),
                    "callback_offered": record.callback_offered,
                    "callback": record.callback,
                    "predicted_handle_time_s": _finite(self.predicted_handle_time(slot)),
                }
            )
        return out

    def stage(self, wait: float) -> str:
        o = self.config.overflow
        if o.callback_after_s is not None and wait >= o.callback_after_s:
            return "callback"
        if wait >= o.specialization_hold_s:
            return "language_only"
        if wait >= o.product_hold_s:
            return "specialization"
        return "product_and_specialization"

    def predicted_handle_time(self, slot: int) -> float:
        """Before an agent is chosen: mean handle time of the logged-in agents who speak the
        language (x the escalation factor for escalated callers). For WFM."""
        ag, q = self.agents, self.queue
        n = len(ag)
        mask = ag.logged_in_mask() & ag.lang[:n, q.lang[slot]]
        base = float(ag.aht[:n][mask].mean()) if mask.any() else float("nan")
        if q.escalated[slot]:
            base *= self.config.escalation.handle_time_factor
        return base

    def predicted_workload_s(self, now: float) -> float:
        """Predicted handle seconds of every waiting call (escalated ones raised): for WFM."""
        total = 0.0
        for slot in self.queue.active_slots():
            value = self.predicted_handle_time(int(slot))
            if math.isfinite(value):
                total += value
        return total

    # -- timers ----------------------------------------------------------------------------------

    def next_wakeup(self, now: float) -> float | None:
        """The next time something changes on its own: a wrap-up ends, a requirement widens,
        a callback becomes due."""
        times: list[float] = []
        ag = self.agents
        n = len(ag)
        wrapping = (ag.status[:n] == WRAP_UP) & (ag.wrap_until[:n] > now)
        if wrapping.any():
            times.append(float(ag.wrap_until[:n][wrapping].min()))
        calls = self.queue.active_slots()
        if calls.size:
            start = self.queue.wait_start[calls]
            o = self.config.overflow
            offsets = [o.product_hold_s, o.specialization_hold_s]
            if self.config.escalation.hold_s is not None:
                offsets.append(self.config.escalation.hold_s)
            for offset in offsets:
                due = start + offset
                due = due[due > now]
                if due.size:
                    times.append(float(due.min()))
            if o.callback_after_s is not None:
                pending = ~self.queue.offered[calls]
                due = start[pending] + o.callback_after_s
                due = due[due > now]
                if due.size:
                    times.append(float(due.min()))
        return min(times) if times else None

    def due_callback_offers(self, now: float) -> list[str]:
        after = self.config.overflow.callback_after_s
        if after is None:
            return []
        calls = self.queue.active_slots()
        due = calls[(~self.queue.offered[calls]) & (now - self.queue.wait_start[calls] >= after)]
        return [self.queue.ids[int(s)] for s in due]  # type: ignore[misc]

    def stats(self, now: float) -> dict[str, Any]:
        ranked = self.ranked(now)
        waits = [w for _, _, w in ranked]
        by_language: dict[str, int] = {}
        for slot, _, _ in ranked:
            record = self.queue.records[slot]
            assert record is not None
            by_language[record.profile.language] = by_language.get(record.profile.language, 0) + 1
        return {
            "queued": len(ranked),
            "longest_wait_s": round(max(waits), 3) if waits else 0.0,
            "queued_by_language": by_language,
            "callbacks_waiting": int(self.queue.callback[self.queue.active_slots()].sum()),
            "agents": self.agents.counts(now),
            "predicted_workload_s": round(self.predicted_workload_s(now), 1),
        }


def _weighted(match_factors: scoring.Factors, config: RoutingConfig) -> scoring.Factors:
    """Match contributions as they enter the combined score (times ``match_weight``)."""
    return {
        k: {**v, "contribution": v["contribution"] * config.match_weight} for k, v in match_factors.items()
    }


def _finite(value: float) -> float | None:
    """JSON has no NaN: 'unknown' (no logged-in agent speaks the language) is null."""
    return round(value, 1) if math.isfinite(value) else None


def _rank01(values: np.ndarray) -> np.ndarray:
    """Rank scaled to [0, 1] (0 = smallest)."""
    if values.size <= 1:
        return np.zeros(values.size)
    return np.argsort(np.argsort(values, kind="stable"), kind="stable") / (values.size - 1)


def _greedy(ok: np.ndarray, score: np.ndarray) -> tuple[float, int]:
    """What a greedy pass (highest remaining pair first) would have scored, for the explanation."""
    masked = np.where(ok, score, -np.inf)
    total, count = 0.0, 0
    for _ in range(min(ok.shape)):
        flat = int(np.argmax(masked))
        i, j = divmod(flat, masked.shape[1])
        if not np.isfinite(masked[i, j]):
            break
        total += float(masked[i, j])
        count += 1
        masked[i, :] = -np.inf
        masked[:, j] = -np.inf
    return total, count


__all__ = ["OFFLINE", "Assignment", "RoutingEngine"]
