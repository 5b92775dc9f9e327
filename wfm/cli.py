"""``callassist wfm forecast|staff|schedule|backtest``."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from wfm.errors import WfmInputError

wfm_app = typer.Typer(help="Workforce management: forecast, staff, schedule, backtest.", no_args_is_help=True)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Bad input ends the command with one clear line on stderr and exit code 2."""
    try:
        yield
    except WfmInputError as exc:
        where = f" ({exc.field})" if exc.field else ""
        typer.echo(f"error{where}: {exc.message}", err=True)
        raise typer.Exit(2) from None


def _load_structured(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _emit(rows: Sequence[dict[str, Any]], payload: Any, fmt: str, out: Path | None) -> None:
    if fmt == "csv":
        buffer = io.StringIO()
        columns = list(dict.fromkeys(k for row in rows for k in row if not isinstance(row[k], (list, dict))))
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        text = json.dumps(payload, indent=2) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
    else:
        sys.stdout.write(text)


def _format_option() -> Any:
    return typer.Option("json", "--format", help="json or csv.", case_sensitive=False)


def _check_format(fmt: str, allowed: tuple[str, ...] = ("json", "csv")) -> str:
    fmt = fmt.lower()
    if fmt not in allowed:
        raise typer.BadParameter(f"choose one of {', '.join(allowed)}", param_hint="--format")
    return fmt


def _target(
    service_level: float | None,
    answer_seconds: float,
    asa: float | None,
    max_occupancy: float | None,
    max_abandon: float | None,
) -> Any:
    from wfm.plan import parse_target

    spec: dict[str, Any] = {"answer_seconds": answer_seconds}
    if service_level is not None:
        spec["service_level"] = service_level
    for key, value in (("asa_seconds", asa), ("max_occupancy", max_occupancy), ("max_abandon", max_abandon)):
        if value is not None:
            spec[key] = value
    return parse_target(spec)


def read_store_calls(path: Path) -> list[tuple[float, float]]:
    """(started_at, duration) of every stored call, read-only, from the server's SQLite file."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise WfmInputError(f"cannot open call store {path}: {exc}", field="store") from None
    try:
        return [(float(a), float(b)) for a, b in conn.execute("SELECT started_at, duration FROM calls")]
    except sqlite3.Error as exc:
        raise WfmInputError(f"cannot read calls from {path}: {exc}", field="store") from None
    finally:
        conn.close()


def _zone(name: str | None) -> Any:
    if not name:
        return datetime.now().astimezone().tzinfo
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WfmInputError(f"unknown time zone {name!r}", field="tz") from None


@wfm_app.command()
def forecast(
    history: Path | None = typer.Option(
        None, dir_okay=False, help="CSV: timestamp,calls[,aht] at any resolution."
    ),
    store: Path | None = typer.Option(
        None, dir_okay=False, help="Server SQLite file: history from its calls table."
    ),
    tz: str | None = typer.Option(None, help="Time zone for --store history (default: this machine's)."),
    day: str | None = typer.Option(None, "--date", help="First day to forecast (default: next open day)."),
    days: int = typer.Option(1, min=1, max=62, help="Number of open days to forecast."),
    interval: int = typer.Option(30, help="Planning interval, minutes."),
    method: str = typer.Option("calendar_regression", help="calendar_regression, seed or seasonal_naive."),
    aht: float = typer.Option(300.0, help="Default AHT seconds when the history has none."),
    service_level: float | None = typer.Option(
        None, help="Target fraction answered in --answer-seconds (0.8)."
    ),
    answer_seconds: float = typer.Option(20.0, help="Service-level answer time, seconds."),
    asa: float | None = typer.Option(None, help="Target average speed of answer, seconds."),
    max_occupancy: float | None = typer.Option(None, help="Cap on agent occupancy, e.g. 0.85."),
    patience: float | None = typer.Option(None, help="Mean caller patience, seconds: use Erlang A."),
    max_abandon: float | None = typer.Option(None, help="Abandonment cap (Erlang A), e.g. 0.05."),
    shrinkage: float = typer.Option(0.30, help="Base shrinkage (Mon/Fri +3%, mid-week training +5%)."),
    events: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="JSON/YAML campaigns and outages."
    ),
    fill_missing: bool = typer.Option(False, help="Treat intervals missing from the CSV as zero calls."),
    fmt: str = _format_option(),
    out: Path | None = typer.Option(None, help="Write here instead of stdout."),
    chart: Path | None = typer.Option(None, help="Also write a PNG chart of forecast vs agents."),
) -> None:
    """Interval forecast for the next day(s), with required and scheduled agents per interval."""
    fmt = _check_format(fmt)
    with _clear_errors():
        from wfm.forecast import AhtProfile, Forecaster, ShrinkagePolicy
        from wfm.history import history_from_calls, next_days, read_history_csv
        from wfm.methods import OpenCalendar
        from wfm.methods import method as get_method
        from wfm.plan import parse_events

        if (history is None) == (store is None):
            raise WfmInputError("give exactly one of --history CSV or --store DB", field="history")
        if history is not None:
            data = read_history_csv(history, interval, fill_missing=fill_missing)
        else:
            assert store is not None
            data = history_from_calls(read_store_calls(store), tz=_zone(tz), interval_minutes=interval)
        campaigns, outages = parse_events(_load_structured(events)) if events else ([], [])
        forecaster = Forecaster(
            method=get_method(method),
            target=_target(service_level, answer_seconds, asa, max_occupancy, max_abandon),
            shrinkage=ShrinkagePolicy(base=shrinkage),
            aht=AhtProfile(default_seconds=aht),
            patience_seconds=patience,
            campaigns=campaigns,
            outages=outages,
        )
        if day:
            try:
                first = date.fromisoformat(day)
            except ValueError:
                raise WfmInputError(f"--date must be YYYY-MM-DD, got {day!r}", field="date") from None
            calendar = OpenCalendar.build(data, until=first)
            targets = [d for d in calendar.open_days if d >= first][:days] or [first]
            if len(targets) < days:
                extended = OpenCalendar.build(data, until=date.fromordinal(first.toordinal() + days * 3))
                targets = [d for d in extended.open_days if d >= first][:days]
        else:
            targets = next_days(data, days)
        rows = forecaster.forecast_days(data, targets)
        records = [r.as_dict() for r in rows]
        _emit(records, {"method": method, "interval_minutes": interval, "intervals": records}, fmt, out)
        if chart:
            from wfm.chart import render_png

            chart.write_bytes(
                render_png(
                    [r.interval_start for r in rows],
                    [r.predicted_volume for r in rows],
                    [r.required_agents for r in rows],
                    scheduled=[r.scheduled_agents for r in rows],
                    low=[r.confidence_low for r in rows],
                    high=[r.confidence_high for r in rows],
                    title=f"Forecast {targets[0]}"
                    + (f" .. {targets[-1]}" if len(targets) > 1 else "")
                    + f" ({method})",
                )
            )
            typer.echo(f"wrote {chart}", err=True)


def _read_volumes(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise WfmInputError(f"cannot read {path}: {exc.strerror}", field="volumes") from None


@wfm_app.command()
def staff(
    volumes: Path | None = typer.Option(
        None, dir_okay=False, help="CSV: interval_start,calls[,aht_seconds]."
    ),
    calls: float | None = typer.Option(None, help="Or one interval: calls offered."),
    aht: float | None = typer.Option(None, help="AHT seconds (default for rows without one)."),
    interval: int = typer.Option(30, help="Interval length, minutes."),
    service_level: float | None = typer.Option(
        None, help="Target fraction answered in --answer-seconds (0.8)."
    ),
    answer_seconds: float = typer.Option(20.0),
    asa: float | None = typer.Option(None, help="Target average speed of answer, seconds."),
    max_occupancy: float | None = typer.Option(None),
    shrinkage: float = typer.Option(0.0, help="Fraction of paid time off the phones, e.g. 0.3."),
    patience: float | None = typer.Option(None, help="Mean caller patience, seconds: use Erlang A."),
    max_abandon: float | None = typer.Option(None, help="Abandonment cap (Erlang A)."),
    fmt: str = _format_option(),
    out: Path | None = typer.Option(None),
    chart: Path | None = typer.Option(None, help="Also write a PNG chart."),
) -> None:
    """Agents (Erlang C, or Erlang A with --patience) and scheduled headcount per interval."""
    fmt = _check_format(fmt)
    with _clear_errors():
        from wfm.plan import check_spacing, parse_demand, plan_staffing, totals

        target = _target(service_level, answer_seconds, asa, max_occupancy, max_abandon)
        if (volumes is None) == (calls is None):
            raise WfmInputError("give --volumes CSV or --calls (one interval)", field="volumes")
        if volumes is not None:
            demand = parse_demand(_read_volumes(volumes), default_aht=aht)
            check_spacing([d.interval_start for d in demand], interval)
        else:
            demand = parse_demand(
                [
                    {
                        "interval_start": datetime.now().replace(second=0, microsecond=0).isoformat(),
                        "calls": calls,
                    }
                ],
                default_aht=aht,
            )
        rows = plan_staffing(
            demand, target, interval_minutes=interval, shrinkage=shrinkage, patience_seconds=patience
        )
        _emit(
            rows,
            {"interval_minutes": interval, "totals": totals(rows, interval), "intervals": rows},
            fmt,
            out,
        )
        if chart:
            from wfm.chart import render_png

            chart.write_bytes(
                render_png(
                    [d.interval_start for d in demand],
                    [d.calls for d in demand],
                    [r["agents"] for r in rows],
                    scheduled=[r["scheduled"] for r in rows],
                    title="Volume vs required agents",
                )
            )
            typer.echo(f"wrote {chart}", err=True)


@wfm_app.command()
def schedule(
    requirements: Path = typer.Option(
        ..., dir_okay=False, help="CSV with interval_start and a requirement column."
    ),
    column: str = typer.Option("scheduled", help="Requirement column (staff output: scheduled or agents)."),
    rules: Path | None = typer.Option(None, exists=True, dir_okay=False, help="JSON/YAML shift rules."),
    start_step: int | None = typer.Option(None, help="Shift start granularity, minutes (default 30)."),
    max_agents: int | None = typer.Option(None, help="Agents available; shortfall is reported, not fatal."),
    time_limit: float | None = typer.Option(None, help="Solver time limit, seconds (default 20)."),
    fmt: str = _format_option(),
    out: Path | None = typer.Option(None),
) -> None:
    """Shifts with breaks and lunches covering the requirement at least paid hours (MILP)."""
    fmt = _check_format(fmt)
    with _clear_errors():
        from dataclasses import replace

        from wfm.schedule import build_schedule, parse_shift_rules

        spec = _load_structured(rules) if rules else {}
        shift_rules = parse_shift_rules(spec or {})
        if start_step is not None:
            shift_rules = replace(shift_rules, start_step_minutes=start_step)
        if max_agents is not None:
            shift_rules = replace(shift_rules, max_agents=max_agents)
        if time_limit is not None:
            shift_rules = replace(shift_rules, time_limit_seconds=time_limit)
        rows = _read_volumes(requirements)
        if not rows or column not in rows[0]:
            raise WfmInputError(
                f"{requirements}: needs columns interval_start,{column}", field="requirements"
            )
        try:
            starts = [datetime.fromisoformat(r.get("interval_start") or r["timestamp"]) for r in rows]
            required = [float(r[column]) for r in rows]
        except (KeyError, ValueError) as exc:
            raise WfmInputError(f"{requirements}: unreadable row ({exc})", field="requirements") from None
        result = build_schedule(starts, required, shift_rules)
        payload = result.as_dict()
        if fmt == "csv":
            _emit(payload["coverage"], payload, fmt, out)
        else:
            _emit([], payload, fmt, out)
        if not result.feasible:
            typer.echo(f"warning: {len(result.unmet)} interval(s) not covered", err=True)


@wfm_app.command()
def backtest(
    history: Path = typer.Option(
        ..., dir_okay=False, help="CSV: timestamp,calls[,aht] (or date,start_time,calls)."
    ),
    interval: int = typer.Option(30, help="Planning interval, minutes (data is aggregated to it)."),
    horizon: int = typer.Option(5, min=1, help="Open days forecast from each origin."),
    min_train: int = typer.Option(40, min=5, help="Days of history before the first origin."),
    step: int = typer.Option(1, min=1, help="Days between origins."),
    methods: str = typer.Option("calendar_regression,seed,seasonal_naive", help="Comma-separated methods."),
    fill_missing: bool = typer.Option(False, help="Treat intervals missing from the CSV as zero calls."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv (WAPE per interval of day)."),
    out: Path | None = typer.Option(None),
) -> None:
    """Rolling-origin backtest: WAPE and bias per interval and per day for each method."""
    fmt = _check_format(fmt, ("table", "json", "csv"))
    with _clear_errors():
        from wfm.backtest import format_table, rolling_origin
        from wfm.history import read_history_csv
        from wfm.methods import method as get_method

        data = read_history_csv(history, interval, fill_missing=fill_missing)
        chosen = [get_method(name.strip()) for name in methods.split(",") if name.strip()]
        result = rolling_origin(data, chosen, horizon_days=horizon, min_train_days=min_train, step_days=step)
        if fmt == "table":
            text = format_table(result) + "\n"
            if out:
                out.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
            return
        payload = result.as_dict()
        by_slot = payload["wape_by_slot"]
        rows = [{"interval": slot, **{m: by_slot[m][slot] for m in by_slot}} for slot in result.slots]  # type: ignore[index]
        _emit(rows, payload, fmt, out)
