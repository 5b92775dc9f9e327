"""Columnar agent pool and call queue: one numpy column per attribute, so scoring 500 agents
or 1,000 waiting calls is a handful of vector operations instead of a Python loop.

Languages, products and specializations are interned in a ``Vocab``; each agent has one
boolean row per vocabulary. Index 0 of every vocabulary is reserved for "none" and is never
set, so a caller with no product simply matches no agent on product.
"""

from __future__ import annotations

import numpy as np

from routing.config import RoutingConfig
from routing.model import AgentRecord, AgentStatus, CallRecord

STATUS_CODE = {
    AgentStatus.AVAILABLE: 0,
    AgentStatus.ON_CALL: 1,
    AgentStatus.WRAP_UP: 2,
    AgentStatus.OFFLINE: 3,
}
AVAILABLE, ON_CALL, WRAP_UP, OFFLINE = 0, 1, 2, 3
NONE = 0


class Vocab:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = ["<none>"]

    def get(self, key: str | None) -> int:
        return NONE if key is None else self.index.get(key, NONE)

    def add(self, key: str | None) -> int:
        if key is None:
            return NONE
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.names)
            self.names.append(key)
        return found

    def __len__(self) -> int:
        return len(self.names)


def _grow_rows(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def _grow_cols(matrix: np.ndarray, cols: int) -> np.ndarray:
    grown = np.zeros((matrix.shape[0], cols), dtype=bool)
    grown[:, : matrix.shape[1]] = matrix
    return grown


class AgentTable:
    """Agents by slot; a slot is never reused (agents go offline, they are not deleted)."""

    def __init__(self, config: RoutingConfig, capacity: int = 64) -> None:
        self.config = config
        self.languages, self.products, self.specializations = Vocab(), Vocab(), Vocab()
        self.ids: list[str] = []
        self.slot: dict[str, int] = {}
        self.records: list[AgentRecord] = []
        self.skill = np.zeros(capacity)
        self.csat = np.zeros(capacity)
        self.aht = np.zeros(capacity)
        self.status = np.full(capacity, OFFLINE, dtype=np.int8)
        self.idle_from = np.zeros(capacity)
        self.wrap_until = np.zeros(capacity)
        self.senior = np.zeros(capacity, dtype=bool)
        self.lang = np.zeros((capacity, 8), dtype=bool)
        self.prod = np.zeros((capacity, 16), dtype=bool)
        self.spec = np.zeros((capacity, 16), dtype=bool)
        self.epoch = 0  # bumped when who is logged in or what they can do changes

    def __len__(self) -> int:
        return len(self.ids)

    def _ensure_rows(self) -> None:
        if len(self.ids) < self.skill.shape[0]:
            return
        rows = self.skill.shape[0] * 2
        for name in ("skill", "csat", "aht", "idle_from", "wrap_until", "senior", "lang", "prod", "spec"):
            setattr(self, name, _grow_rows(getattr(self, name), rows))
        status = np.full(rows, OFFLINE, dtype=np.int8)
        status[: self.status.shape[0]] = self.status
        self.status = status

    def _ensure_cols(self) -> None:
        for name, vocab in (
            ("lang", self.languages),
            ("prod", self.products),
            ("spec", self.specializations),
        ):
            matrix = getattr(self, name)
            if len(vocab) > matrix.shape[1]:
                setattr(self, name, _grow_cols(matrix, max(len(vocab), matrix.shape[1] * 2)))

    def upsert(self, record: AgentRecord) -> int:
        agent_id = record.agent_id
        slot = self.slot.get(agent_id)
        if slot is None:
            self._ensure_rows()
            slot = self.slot[agent_id] = len(self.ids)
            self.ids.append(agent_id)
            self.records.append(record)
            old = None
        else:
            old = self.records[slot]
            self.records[slot] = record
        profile = record.profile
        if old is None or old.profile != profile:
            for code in profile.languages:
                self.languages.add(code)
            for code in profile.products:
                self.products.add(code)
            for code in profile.specializations:
                self.specializations.add(code)
            self._ensure_cols()
            self.skill[slot] = profile.skill_level
            self.csat[slot] = profile.csat
            self.aht[slot] = profile.avg_handle_time
            esc = self.config.escalation
            self.senior[slot] = profile.skill_level >= esc.min_skill and profile.csat >= esc.min_csat
            for matrix, vocab, codes in (
                (self.lang, self.languages, profile.languages),
                (self.prod, self.products, profile.products),
                (self.spec, self.specializations, profile.specializations),
            ):
                matrix[slot] = False
                matrix[slot, [vocab.index[c] for c in codes]] = True
            self.epoch += 1
        was_offline = old is None or old.status is AgentStatus.OFFLINE
        if was_offline != (record.status is AgentStatus.OFFLINE):
            self.epoch += 1
        self.status[slot] = STATUS_CODE[record.status]
        self.idle_from[slot] = record.idle_from()
        self.wrap_until[slot] = record.wrap_until
        return slot

    def get(self, agent_id: str) -> AgentRecord | None:
        slot = self.slot.get(agent_id)
        return None if slot is None else self.records[slot]

    def free_mask(self, now: float) -> np.ndarray:
        n = len(self.ids)
        status = self.status[:n]
        return (status == AVAILABLE) | ((status == WRAP_UP) & (self.wrap_until[:n] <= now))

    def logged_in_mask(self) -> np.ndarray:
        return self.status[: len(self.ids)] != OFFLINE

    def counts(self, now: float) -> dict[str, int]:
        n = len(self.ids)
        free = self.free_mask(now)
        status = self.status[:n]
        return {
            "available": int(free.sum()),
            "on_call": int((status == ON_CALL).sum()),
            "wrap_up": int(((status == WRAP_UP) & ~free).sum()),
            "offline": int((status == OFFLINE).sum()),
        }


class CallQueue:
    """Waiting calls by slot; slots are reused (a free list), ``active`` marks the live ones."""

    def __init__(self, capacity: int = 256) -> None:
        self.ids: list[str | None] = []
        self.slot: dict[str, int] = {}
        self.records: list[CallRecord | None] = []
        self.free: list[int] = []
        self.active = np.zeros(capacity, dtype=bool)
        self.static = np.zeros(capacity)
        self.wait_start = np.zeros(capacity)
        self.seq = np.zeros(capacity, dtype=np.int64)
        self.lang = np.zeros(capacity, dtype=np.int64)
        self.prod = np.zeros(capacity, dtype=np.int64)
        self.spec = np.zeros(capacity, dtype=np.int64)
        self.prev = np.full(capacity, -1, dtype=np.int64)  # previous agent's slot
        self.escalated = np.zeros(capacity, dtype=bool)
        self.offered = np.zeros(capacity, dtype=bool)
        self.callback = np.zeros(capacity, dtype=bool)

    def __len__(self) -> int:
        return len(self.slot)

    def _new_slot(self) -> int:
        if self.free:
            return self.free.pop()
        slot = len(self.ids)
        if slot >= self.active.shape[0]:
            rows = self.active.shape[0] * 2
            for name in ("active", "static", "wait_start", "seq", "lang", "prod", "spec", "escalated",
                         "offered", "callback"):  # fmt: skip
                setattr(self, name, _grow_rows(getattr(self, name), rows))
            prev = np.full(rows, -1, dtype=np.int64)
            prev[: self.prev.shape[0]] = self.prev
            self.prev = prev
        self.ids.append(None)
        self.records.append(None)
        return slot

    def put(
        self, record: CallRecord, static: float, lang: int, prod: int, spec: int, prev: int, escalated: bool
    ) -> int:
        call_id = record.call_id
        slot = self.slot.get(call_id)
        if slot is None:
            slot = self.slot[call_id] = self._new_slot()
        self.ids[slot] = call_id
        self.records[slot] = record
        self.active[slot] = True
        self.static[slot] = static
        self.wait_start[slot] = record.wait_start
        self.seq[slot] = record.seq
        self.lang[slot], self.prod[slot], self.spec[slot], self.prev[slot] = lang, prod, spec, prev
        self.escalated[slot] = escalated
        self.offered[slot] = record.callback_offered
        self.callback[slot] = record.callback
        return slot

    def remove(self, call_id: str) -> CallRecord | None:
        slot = self.slot.pop(call_id, None)
        if slot is None:
            return None
        record = self.records[slot]
        self.active[slot] = False
        self.ids[slot] = None
        self.records[slot] = None
        self.free.append(slot)
        return record

    def get(self, call_id: str) -> CallRecord | None:
        slot = self.slot.get(call_id)
        return None if slot is None else self.records[slot]

    def active_slots(self) -> np.ndarray:
        return np.flatnonzero(self.active[: len(self.ids)])
