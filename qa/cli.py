"""``callassist qa``: the QA worker process, calibration and one-off scoring."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

import typer

qa_app = typer.Typer(help="Post-call quality assurance.", no_args_is_help=True)


def _embedder(model: str | None) -> Any:
    """The server's embedder (CALLASSIST_EMBEDDER, default ONNX), so scores match in-process QA."""
    from assist.embedding import create_embedder
    from server.settings import Settings

    settings = Settings()
    return create_embedder(settings.embedder, model or settings.model_path, cache_dir=settings.cache_dir)


def _rubric(path: Path | None) -> Any:
    from qa.rubric import Rubric, RubricError

    try:
        return Rubric.load(path)
    except RubricError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rubric") from None


@qa_app.command("worker")
def worker(
    bus: str = typer.Option("memory://", help="Event bus: redis://host:port/db to share the calls stream."),
    store: Path = typer.Option(
        Path("var/callassist.db"), help="SQLite file of the server (calls + scorecards)."
    ),
    rubric: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Rubric YAML (default: bundled)."
    ),
    consumer: str | None = typer.Option(None, help="Consumer name in the 'qa' group (default: host:pid)."),
    concurrency: int = typer.Option(4, min=1, max=64),
    claim_idle_ms: int = typer.Option(60_000, min=10, help="Re-claim entries a dead worker left this long."),
    burst: bool = typer.Option(False, help="Exit once nothing is left to score."),
    model: str | None = typer.Option(None, help="sentence-transformers model directory."),
    log_level: str = typer.Option("info"),
) -> None:
    """Score ended calls from the calls stream until SIGTERM/SIGINT (graceful drain)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if bus.startswith("memory://") and not burst:
        typer.echo(
            "note: a memory:// bus is private to this process; use the server's redis:// bus", err=True
        )
    asyncio.run(_worker(bus, store, _rubric(rubric), consumer, concurrency, claim_idle_ms, burst, model))


async def _worker(
    bus_url: str,
    store_path: Path,
    rubric: Any,
    consumer: str | None,
    concurrency: int,
    claim_idle_ms: int,
    burst: bool,
    model: str | None,
) -> None:
    from qa.extension import Scoring
    from qa.settings import QASettings
    from qa.store import QAStore
    from qa.worker import QAWorker
    from server.bus import create_bus
    from server.store import Database, SqliteCallStore

    log = logging.getLogger("qa.worker")
    settings = QASettings()
    bus = create_bus(bus_url)
    db = Database(store_path)
    calls, qa_store = SqliteCallStore(db), QAStore(db)
    await db.open()
    await calls.open()
    await qa_store.open()
    await bus.start()
    embedder = await asyncio.to_thread(_embedder, model)
    scoring = await Scoring.build(rubric, embedder, settings)
    qa_worker = QAWorker(
        bus,
        qa_store,
        calls,
        scoring.judge,
        consumer=consumer or f"qa-{socket.gethostname()}:{os.getpid()}",
        concurrency=concurrency,
        claim_idle_ms=claim_idle_ms,
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    run = asyncio.create_task(qa_worker.run(burst=burst), name="qa-worker")
    waiter = asyncio.create_task(stopping.wait(), name="qa-stop")
    log.info("QA worker %s ready on %s", qa_worker.stream.consumer, bus_url.split("@")[-1])
    try:
        await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await qa_worker.stop()  # stop claiming, finish in-flight calls, leave the rest pending
        waiter.cancel()
        await asyncio.gather(run, waiter, return_exceptions=True)
        await scoring.close()
        await bus.close()
        await db.close()
    stats = qa_worker.stats
    log.info("QA worker stopped: %d scored, %d duplicates", stats.scored, stats.duplicates)


@qa_app.command("calibrate")
def calibrate_command(
    human: Path = typer.Option(
        ...,
        exists=True,
        dir_okay=False,
        help="CSV: call_id,agent_id,overall_score[,category...][,criterion...]",
    ),
    store: Path = typer.Option(Path("var/callassist.db"), help="SQLite file of the server."),
    rubric: Path | None = typer.Option(None, exists=True, dir_okay=False),
    apply: bool = typer.Option(True, help="Store the offsets so later scorecards use them."),
    min_agent_samples: int = typer.Option(
        3, min=1, help="Calibrated calls before an agent gets its own offset."
    ),
    model: str | None = typer.Option(None, help="sentence-transformers model (to score unscored calls)."),
) -> None:
    """Compare human reviewers' scores with the scorecards: offsets, std, Pearson, kappa, ICC (JSON)."""
    from qa.calibration import CalibrationError, read_human_scores

    loaded = _rubric(rubric)
    try:
        rows = read_human_scores(human.read_text(encoding="utf-8"), loaded)
    except CalibrationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--human") from None
    report = asyncio.run(_calibrate(rows, store, loaded, apply, min_agent_samples, model))
    typer.echo(json.dumps(report, indent=2))
    if not report["sample_size"]:
        raise typer.Exit(1)


async def _calibrate(
    rows: Any, store_path: Path, rubric: Any, apply: bool, min_samples: int, model: str | None
) -> Any:
    from qa.calibration import calibrate_stored
    from qa.store import QAStore
    from server.store import Database, SqliteCallStore

    db = Database(store_path)
    calls, qa_store = SqliteCallStore(db), QAStore(db)
    await calls.open()
    await qa_store.open()
    scorer = None
    try:
        cards = await qa_store.get_many([r.call_id for r in rows])
        if len(cards) < len(rows):  # some reviewed calls are not scored yet: load the model to score them
            from qa.evidence import AsyncEvidenceScorer, EvidenceScorer

            embedder = await asyncio.to_thread(_embedder, model)
            scorer = AsyncEvidenceScorer(await asyncio.to_thread(EvidenceScorer, rubric, embedder))
            scorer.start()
        return await calibrate_stored(
            rows, qa_store, calls, rubric, scorer=scorer, apply=apply, min_agent_samples=min_samples
        )
    finally:
        if scorer is not None:
            await scorer.close()
        await db.close()


@qa_app.command("score")
def score_command(
    call_id: str | None = typer.Option(None, help="Score a stored call (does not store the scorecard)."),
    transcript: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Or a scripted call YAML (demo format)."
    ),
    store: Path = typer.Option(Path("var/callassist.db")),
    rubric: Path | None = typer.Option(None, exists=True, dir_okay=False),
    model: str | None = typer.Option(None),
) -> None:
    """Print the evidence scorecard of one call as JSON."""
    if (call_id is None) == (transcript is None):
        raise typer.BadParameter("give exactly one of --call-id or --transcript")
    loaded = _rubric(rubric)
    script = None
    if transcript is not None:
        import yaml

        script = yaml.safe_load(transcript.read_text(encoding="utf-8"))
    record = asyncio.run(_load_record(call_id, script, store))
    if record is None:
        typer.echo(f"no stored call {call_id}", err=True)
        raise typer.Exit(1)
    from qa.evidence import EvidenceScorer

    card = EvidenceScorer(loaded, _embedder(model)).score(record)
    typer.echo(card.model_dump_json(indent=2))


async def _load_record(call_id: str | None, script: Any, store_path: Path) -> dict[str, Any] | None:
    if script is not None:
        from assist.config import AssistConfig
        from qa.records import OfflineRecorder

        return OfflineRecorder(AssistConfig.load()).record(
            script.get("id", "transcript"),
            script["agent_id"],
            script["utterances"],
            customer=script.get("customer"),
            team=script.get("team"),
            primary_intent=script.get("primary_intent"),
        )
    from server.store import Database, SqliteCallStore

    db = Database(store_path)
    try:
        calls = SqliteCallStore(db)
        await calls.open()
        return await calls.get_call(call_id or "")
    finally:
        await db.close()
