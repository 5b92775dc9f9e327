"""Customer profiles (CLV, tier, renewal date, ...) in table ``customers``: validated one by one
(``PUT /v1/customers/{id}``) or imported from CSV / JSON, all-or-nothing with every bad row named.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from analytics.errors import InvalidInput

MAX_IMPORT_ROWS = 2_000_000
MAX_REPORTED_ERRORS = 20
PROFILE_FIELDS = ("name", "tier", "clv", "renewal_date", "product", "language", "phone")


class CustomerProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    customer_id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)
    tier: str | None = Field(default=None, max_length=32)
    clv: float | None = Field(default=None, ge=0, le=1e12, description="Customer lifetime value.")
    renewal_date: date | None = Field(default=None, description="Contract renewal (ISO 8601 date).")
    product: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=35)
    phone: str | None = Field(default=None, max_length=64, description="Call-back number for outreach.")

    @field_validator("renewal_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            try:
                return date.fromisoformat(text[:10]) if len(text) > 10 else date.fromisoformat(text)
            except ValueError:
                try:
                    return datetime.fromisoformat(text).date()
                except ValueError:
                    raise ValueError("must be an ISO 8601 date such as 2025-07-31") from None
        return value

    @field_validator("tier", "product", "language")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        return value.lower() if value else None

    def public(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if v is not None}


def _first_error(exc: ValidationError) -> tuple[str | None, str]:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    return field, first["msg"]


def validate(data: Any, customer_id: str | None = None) -> CustomerProfile:
    """One profile from JSON; ``customer_id`` (from the path) must match the body's if it has one."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a customer profile must be a JSON object")
    body = dict(data)
    if "id" in body and "customer_id" not in body:
        body["customer_id"] = body.pop("id")
    if customer_id is not None:
        if body.get("customer_id", customer_id) != customer_id:
            raise InvalidInput("customer_id in the body differs from the path", field="customer_id")
        body["customer_id"] = customer_id
    try:
        return CustomerProfile.model_validate(body)
    except ValidationError as exc:
        field, message = _first_error(exc)
        raise InvalidInput(f"{field}: {message}" if field else message, field=field) from None


def _rows_from_csv(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "customer_id" not in fields and "id" not in fields:
        raise InvalidInput(f"CSV needs a customer_id (or id) column; it has {fields}", field="customer_id")
    known = {"customer_id", "id", *PROFILE_FIELDS}
    ignored = [f for f in fields if f not in known]
    rows = []
    for raw in reader:
        rows.append({k.strip(): (v if v != "" else None) for k, v in raw.items() if k and k.strip() in known})
        if len(rows) > MAX_IMPORT_ROWS:
            raise InvalidInput(f"more than {MAX_IMPORT_ROWS} rows: split the file")
    return rows, ignored


def _rows_from_json(text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc.msg} (line {exc.lineno})") from None
    if isinstance(data, Mapping) and isinstance(data.get("customers"), list):
        data = data["customers"]
    if not isinstance(data, list):
        raise InvalidInput('JSON import must be a list of profiles or {"customers": [...]}')
    if len(data) > MAX_IMPORT_ROWS:
        raise InvalidInput(f"more than {MAX_IMPORT_ROWS} rows: split the file")
    return data


def parse_import(text: str, fmt: str) -> tuple[list[CustomerProfile], list[str]]:
    """Profiles from a CSV or JSON document, or ``InvalidInput`` listing the bad rows (nothing
    is imported then). Returns the profiles and the CSV columns that were ignored."""
    if fmt not in ("csv", "json"):
        raise InvalidInput("format must be csv or json", field="format")
    ignored: list[str] = []
    if fmt == "csv":
        rows, ignored = _rows_from_csv(text)
        first_line = 2  # the header is line 1
    else:
        rows = _rows_from_json(text)
        first_line = 0
    profiles: list[CustomerProfile] = []
    errors: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        try:
            profiles.append(validate(row))
        except InvalidInput as exc:
            where = {"line": first_line + index} if fmt == "csv" else {"index": index}
            errors.append({**where, "field": exc.field, "message": exc.message})
    if errors:
        raise InvalidInput(
            f"{len(errors)} of {len(rows)} rows are invalid; nothing was imported",
            rows=errors[:MAX_REPORTED_ERRORS],
        )
    return profiles, ignored


# ------------------------------------------------------------------------------------------ storage


def _row(profile: CustomerProfile, now: float) -> tuple[Any, ...]:
    return (
        profile.customer_id,
        profile.name,
        profile.tier,
        profile.clv,
        profile.renewal_date.isoformat() if profile.renewal_date else None,
        profile.product,
        profile.language,
        profile.phone,
        None,
        now,
    )


def upsert(conn: sqlite3.Connection, profiles: Sequence[CustomerProfile], *, merge: bool = True) -> int:
    """Write profiles in one transaction. ``merge``: fields a profile leaves unset keep their value."""
    now = time.time()
    columns = ("name", "tier", "clv", "renewal_date", "product", "language", "phone")
    if merge:
        update = ", ".join(f"{c} = COALESCE(excluded.{c}, customers.{c})" for c in columns)
    else:
        update = ", ".join(f"{c} = excluded.{c}" for c in columns)
    sql = (
        "INSERT INTO customers (customer_id, name, tier, clv, renewal_date, product, language, phone, extra,"
        f" updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(customer_id) DO UPDATE SET {update},"
        " updated_at = excluded.updated_at"
    )
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        for start in range(0, len(profiles), 5000):
            conn.executemany(sql, [_row(p, now) for p in profiles[start : start + 5000]])
    return len(profiles)


def get(conn: sqlite3.Connection, customer_id: str) -> CustomerProfile | None:
    row = conn.execute(
        "SELECT customer_id, name, tier, clv, renewal_date, product, language, phone FROM customers"
        " WHERE customer_id = ?",
        (customer_id,),
    ).fetchone()
    if row is None:
        return None
    return CustomerProfile.model_validate(
        dict(zip(("customer_id", *PROFILE_FIELDS), tuple(row), strict=True))
    )


def get_many(conn: sqlite3.Connection, customer_ids: Iterable[str]) -> dict[str, CustomerProfile]:
    wanted = list(dict.fromkeys(customer_ids))
    out: dict[str, CustomerProfile] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            "SELECT customer_id, name, tier, clv, renewal_date, product, language, phone FROM customers"
            f" WHERE customer_id IN ({marks})",
            chunk,
        ):
            profile = CustomerProfile.model_validate(
                dict(zip(("customer_id", *PROFILE_FIELDS), tuple(row), strict=True))
            )
            out[profile.customer_id] = profile
    return out


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0])


def profile_columns(conn: sqlite3.Connection, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CLV and renewal date (unix seconds, NaN if unknown) aligned with customer ``keys``
    (``analytics_names`` keys): one join, no per-customer Python work beyond the rows returned."""
    clv = np.full(keys.size, np.nan)
    renewal = np.full(keys.size, np.nan)
    if keys.size == 0:
        return clv, renewal
    order = np.argsort(keys)
    sorted_keys = keys[order]
    found_keys, found_clv, found_renewal = [], [], []
    for key, value, renewal_date in conn.execute(
        "SELECT n.key, c.clv, c.renewal_date FROM customers c"
        " JOIN analytics_names n ON n.kind = 'customer' AND n.name = c.customer_id"
    ):
        found_keys.append(key)
        found_clv.append(np.nan if value is None else float(value))
        found_renewal.append(
            np.nan
            if not renewal_date
            else datetime.combine(date.fromisoformat(renewal_date), datetime.min.time()).timestamp()
        )
    if not found_keys:
        return clv, renewal
    fk = np.asarray(found_keys, dtype=np.int64)
    at = np.searchsorted(sorted_keys, fk)
    ok = (at < sorted_keys.size) & (sorted_keys[np.minimum(at, sorted_keys.size - 1)] == fk)
    clv[order[at[ok]]] = np.asarray(found_clv)[ok]
    renewal[order[at[ok]]] = np.asarray(found_renewal)[ok]
    return clv, renewal
