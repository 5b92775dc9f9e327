"""``callassist analytics ...`` and ``callassist roi``."""

from __future__ import annotations

import inspect
import json
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer

analytics_app = typer.Typer(
    help="Customer analytics: synthetic history, customer import, offline runs, clustering evaluation.",
    no_args_is_help=True,
)
StoreOption = typer.Option(Path("var/callassist.db"), help="The server's SQLite store.")
ConfigOption = typer.Option(None, exists=True, dir_okay=False, help="Analytics YAML (default: built-in).")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def _embedder() -> Any:
    from assist.embedding import create_embedder
    from server.settings import Settings

    settings = Settings()  # the server's embedder (CALLASSIST_EMBEDDER etc.)
    return create_embedder(
        settings.embedder, settings.model_path, cache_dir=settings.cache_dir, threads=settings.model_threads
    )


def _outage(spec: str) -> Any:
    from analytics.synthetic import Outage

    parts = spec.split(":")
    try:
        values = [float(p) for p in parts[:4]]
    except ValueError:
        raise typer.BadParameter(f"{spec!r}: use DAY[:HOUR[:HOURS[:SHARE]]]", param_hint="--outage") from None
    keys = ("day", "hour", "hours", "share")
    data: dict[str, Any] = dict(zip(keys, values, strict=False))
    data["day"] = int(data["day"])
    if len(parts) > 4:
        data["issue"] = parts[4]
    return Outage(**data)


@analytics_app.command("generate")
def generate_command(
    days: int = typer.Option(30, min=1, max=730, help="Days of history."),
    calls_per_day: int = typer.Option(500, "--calls-per-day", min=1, max=200_000),
    seed: int = typer.Option(0, help="Same seed, same history."),
    customers: int | None = typer.Option(None, min=1, help="Customers (default: about calls / 3.5)."),
    end: str | None = typer.Option(None, help="Last day of the history, YYYY-MM-DD (default: yesterday)."),
    outage: list[str] = typer.Option([], help="Inject an outage: DAY[:HOUR[:HOURS[:SHARE[:ARTICLE]]]]."),
    store: Path = StoreOption,
    mode: str = typer.Option(
        "records",
        help="records: full call records into the calls table (the server ingests them); "
        "facts: straight into the analytics tables, embedded here (fast, for big histories).",
    ),
    customers_csv: Path | None = typer.Option(None, help="Also write the customer profiles to this CSV."),
) -> None:
    """Write a realistic, seeded synthetic call history and its customer profiles."""
    import csv

    from analytics import customers as profiles_mod
    from analytics.offline import connect, ingest_facts, write_records
    from analytics.synthetic import embed_texts, generate

    if mode not in ("records", "facts"):
        raise _fail("--mode must be records or facts")
    start = None
    if end is not None:
        try:
            last = date.fromisoformat(end)
        except ValueError:
            raise _fail("--end must be YYYY-MM-DD") from None
        start = date.fromordinal(last.toordinal() - days + 1)
    started = time.perf_counter()
    try:
        history = generate(
            days=days,
            calls_per_day=calls_per_day,
            seed=seed,
            customers=customers,
            start=start,
            outages=[_outage(o) for o in outage],
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"generated {history.meta} in {time.perf_counter() - started:.1f} s")
    conn = connect(store)
    profiles = history.profiles()
    profiles_mod.upsert(conn, profiles)
    if customers_csv is not None:
        with customers_csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["customer_id", *profiles_mod.PROFILE_FIELDS])
            for p in profiles:
                data = p.model_dump(mode="json")
                writer.writerow([p.customer_id, *(data.get(f) or "" for f in profiles_mod.PROFILE_FIELDS)])
    if mode == "records":
        written = write_records(conn, history.records())
        typer.echo(f"{written} call records written to {store} ({len(profiles)} customer profiles)")
    else:
        from analytics.engine import Analytics

        index, texts = history.summary_index()
        embedder = _embedder()
        vectors = embed_texts(embedder, texts, Path("var/cache"))
        engine = Analytics()
        added = ingest_facts(conn, engine, ((f, vectors[i]) for f, i in history.facts()))
        typer.echo(
            f"{added} calls written to the analytics tables of {store} ({len(texts)} distinct summaries)"
        )
    conn.close()


@analytics_app.command("import-customers")
def import_customers_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV (header row) or JSON file."),
    store: Path = StoreOption,
    fmt: str | None = typer.Option(None, "--format", help="csv or json (default: from the file name)."),
) -> None:
    """Import customer profiles (CLV, tier, renewal date, ...): all rows or none."""
    from analytics import customers
    from analytics.errors import InvalidInput
    from analytics.offline import connect

    kind = fmt or ("csv" if path.suffix.lower() == ".csv" else "json")
    try:
        profiles, ignored = customers.parse_import(path.read_text(encoding="utf-8-sig"), kind)
    except InvalidInput as exc:
        for row in exc.extra.get("rows", []):
            typer.echo(f"  {row}", err=True)
        raise _fail(exc.message) from None
    conn = connect(store)
    customers.upsert(conn, profiles)
    conn.close()
    typer.echo(
        f"imported {len(profiles)} profiles into {store}"
        + (f" (ignored columns {ignored})" if ignored else "")
    )


@analytics_app.command("run")
def run_command(
    store: Path = StoreOption,
    config: Path | None = ConfigOption,
    now: str | None = typer.Option(None, help="Analyse as of this ISO time (default: now)."),
    refit: bool = typer.Option(False, help="Refit the clusters even if they are fresh."),
    top: int = typer.Option(5, min=1, max=100, help="Rows per section."),
    json_out: bool = typer.Option(False, "--json", help="Print everything as JSON."),
) -> None:
    """Ingest new stored calls, run the analysis once and print KPIs, clusters, repeats and churn."""
    from analytics.config import AnalyticsConfig, AnalyticsConfigError
    from analytics.engine import Analytics
    from analytics.offline import connect, ingest_store

    try:
        engine = Analytics(AnalyticsConfig.load(config))
    except AnalyticsConfigError as exc:
        raise _fail(str(exc)) from None
    at = datetime.fromisoformat(now).timestamp() if now else None
    conn = connect(store)
    started = time.perf_counter()
    has_calls = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'calls'").fetchone() is not None
    ingested = ingest_store(conn, engine, _embedder()) if has_calls else 0
    snapshot = engine.run(conn, at, refit=True if refit else None)
    out = {
        "ingested": ingested,
        "seconds": round(time.perf_counter() - started, 2),
        "timings": snapshot.timings,
        "kpis": engine.kpis(snapshot),
        "clusters": engine.clusters(snapshot, limit=top),
        "repeats": engine.repeats(conn, snapshot, limit=top),
        "churn": engine.churn(conn, snapshot, limit=top),
        "emerging": [e.payload() for e in snapshot.emerging],
    }
    conn.close()
    if json_out:
        typer.echo(json.dumps(out, indent=2, default=_default))
        return
    k = out["kpis"]
    typer.echo(
        f"{k['calls']} calls in {k['period']['days']:g} days; AHT {_fmt(k['aht_s'], '.0f')} s; "
        f"FCR {_pct(k['fcr'])}; repeat rate {_pct(k['repeat_rate'])}; service level {_pct(k['service_level'])}; "
        f"QA {'n/a' if k['qa'] is None else k['qa']['mean']}"
    )
    typer.echo(
        f"\nTop clusters ({out['clusters']['clusters']} clusters, {_pct(out['clusters']['unclustered_share'])} unclustered):"
    )
    for c in out["clusters"]["top"]:
        typer.echo(
            f"  {c['share']:6.1%}  {c['label'][:50]:50s}  AHT {c['aht_s']:.0f} s  sentiment {c['avg_sentiment']:+.2f}"
        )
    r = out["repeats"]
    typer.echo(
        f"\nRepeat callers: {r['groups']} groups ({r['seed_category_groups']} by category label alone, "
        f"{r['category_groups_mixing_issues']} of those mixing issues)"
    )
    for g in r["repeat_callers"]:
        typer.echo(
            f"  {g['customer_id']}  {g['calls']} calls  CLV {g['clv']:,.0f}  {g['issue'].get('label')}"
        )
    ch = out["churn"]
    typer.echo(f"\nChurn: {ch['high']} high, {ch['medium']} medium of {ch['customers_scored']} customers")
    for c in ch["customers"]:
        factors = ", ".join(f"{f['factor']}={f['value']}" for f in c["factors"] if f["strength"] > 0)
        typer.echo(f"  {c['customer_id']}  {c['score']:.2f} {c['urgency']:6s}  {factors}")
    if out["emerging"]:
        typer.echo(f"\nEmerging issues: {out['emerging']}")
    typer.echo(f"\n({out['ingested']} calls ingested; {out['seconds']} s; {out['timings']})")


@analytics_app.command("evaluate-clustering")
def evaluate_clustering_command(
    data: Path = typer.Option(Path("/work/shared/data/banking77"), exists=True, file_okay=False),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Embedding clustering vs the seed's TF-IDF + DBSCAN on BANKING77 (intents as clusters): ARI, NMI."""
    from analytics.evaluate import evaluate_banking77

    result = evaluate_banking77(data, _embedder())
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"{result['texts']} test texts, {result['intents']} intents (parameters chosen on a train split)"
    )
    for row in result["methods"]:
        typer.echo(
            f"  {row['method']:34s} ARI {row['ari']:.3f}  NMI {row['nmi']:.3f}  clusters {row['clusters']:4d}  "
            f"clustered {row['clustered']:.0%}  {row['seconds']:.1f} s"
        )


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return str(value)


# ------------------------------------------------------------------------------------------ roi


def _roi(**kwargs: Any) -> None:
    from analytics.errors import InvalidInput
    from analytics.roi import RoiInputs, compute, seed_check

    json_out = kwargs.pop("json_out")
    store = kwargs.pop("from_store")
    measured: dict[str, Any] = {}
    if store is not None:
        measured = _measured(store)
        for key, value in measured.items():
            if kwargs.get(key) == RoiInputs.model_fields[key].default:
                kwargs[key] = value
    try:
        result = compute(RoiInputs.parse(kwargs))
    except InvalidInput as exc:
        raise _fail(exc.message) from None
    result["measured_inputs"] = measured
    result["seed"] = seed_check()
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    s = result["savings"]
    typer.echo(
        f"calls/year {result['calls_per_year']:,.0f}; agent hours saved {result['agent_hours_saved']:,.0f}"
    )
    for name, value in s.items():
        typer.echo(f"  {name:12s} ${value:>14,.0f}")
    typer.echo(f"  {'savings':12s} ${result['total_savings']:>14,.0f}")
    typer.echo(f"  {'retention':12s} ${result['retention_revenue']:>14,.0f}")
    typer.echo(f"  {'cost (yr 1)':12s} ${result['first_year_cost']:>14,.0f}")
    roi = result["roi_percent"]
    payback = result["payback_months"]
    typer.echo(
        f"ROI {'n/a' if roi is None else f'{roi:,.0f}%'}; payback {'n/a' if payback is None else f'{payback:.2f} months'}"
    )
    if measured:
        typer.echo(f"measured in {store}: {measured}")
    seed = result["seed"]
    typer.echo(
        f"(the seed printed ${seed['printed']['total_savings']:,.0f} savings, {seed['printed']['roi_percent']:.0f}% ROI, "
        f"{seed['printed']['payback_months']} months; see docs/analytics.md)"
    )


def _measured(store: Path) -> dict[str, Any]:
    import numpy as np

    from analytics.config import DAY_S
    from analytics.engine import Analytics
    from analytics.offline import connect

    engine = Analytics()
    conn = connect(store)
    snapshot = engine.run(conn, refit=False)
    conn.close()
    frame = snapshot.frame
    inside = frame.ended_at >= snapshot.now - engine.config.kpis.period_days * DAY_S
    if not inside.any():
        raise _fail(f"no calls in the last {engine.config.kpis.period_days:g} days of {store}")
    agents = int(np.unique(frame.agent[inside]).size)
    days = int(np.unique(np.floor(frame.ended_at[inside] / DAY_S)).size)
    levels = snapshot.churn.urgency(engine.config.churn)
    return {
        "seats": agents,
        "calls_per_agent_per_day": round(float(inside.sum()) / agents / max(days, 1), 2),
        "aht_after_min": round(float(frame.duration[inside].mean()) / 60, 3),
        "at_risk_customers": float(((levels == "high") | (levels == "medium")).sum()),
    }


def _roi_command() -> Any:
    """Build ``callassist roi`` with one option per ROI input (the model is the one source)."""
    from analytics.roi import RoiInputs

    params = []
    for name, field in RoiInputs.model_fields.items():
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(
                    field.default, f"--{name.replace('_', '-')}", help=field.description or ""
                ),
                annotation=type(field.default),
            )
        )
    params.append(
        inspect.Parameter(
            "from_store",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                None,
                "--from-store",
                help="Measure seats, calls/agent/day, AHT after, at-risk customers here.",
            ),
            annotation=Path | None,
        )
    )
    params.append(
        inspect.Parameter(
            "json_out",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(False, "--json", help="Print the figures as JSON."),
            annotation=bool,
        )
    )

    def roi(**kwargs: Any) -> None:
        """ROI of callassist for a center: every input of the seed's model is an option."""
        _roi(**kwargs)

    roi.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return roi


roi_app = typer.Typer(help="ROI model (the seed's inputs, computed honestly).", invoke_without_command=True)
roi_app.callback(invoke_without_command=True)(_roi_command())
