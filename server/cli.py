"""``callassist`` command line."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import typer

from analytics.cli import analytics_app, roi_app
from qa.cli import qa_app
from routing.cli import routing_app
from server.archive import worker_app
from server.auth_cli import auth_app
from server.kb_cli import kb_app
from wfm.cli import wfm_app

app = typer.Typer(help="callassist: real-time agent assist for call centers.", no_args_is_help=True)
intents_app = typer.Typer(help="Intent classifier tools.", no_args_is_help=True)
protocol_app = typer.Typer(help="Protocol v1 tools.", no_args_is_help=True)
model_app = typer.Typer(help="Embedding model tools.", no_args_is_help=True)
app.add_typer(intents_app, name="intents")
app.add_typer(protocol_app, name="protocol")
app.add_typer(model_app, name="model")
app.add_typer(wfm_app, name="wfm")
app.add_typer(kb_app, name="kb")
app.add_typer(routing_app, name="routing")
app.add_typer(qa_app, name="qa")
app.add_typer(worker_app, name="worker")
app.add_typer(analytics_app, name="analytics")
app.add_typer(roi_app, name="roi")
app.add_typer(auth_app, name="auth")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _app_from_env():  # type: ignore[no-untyped-def]
    """uvicorn factory: settings come from CALLASSIST_* variables (set by ``serve``)."""
    from server.app import create_app
    from server.settings import Settings

    return create_app(Settings())


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    config: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Assist YAML config (default: demo)."
    ),
    bus: str = typer.Option("memory://", help="Event bus: memory:// or redis://host:port/db."),
    store: Path = typer.Option(Path("var/callassist.db"), help="SQLite file for call records."),
    workers: int = typer.Option(1, min=1, help="Worker processes (needs a redis:// bus to share state)."),
    embedder: str = typer.Option("onnx", help="Embedding backend: onnx, onnx-int8 or torch."),
    log_level: str = typer.Option("info"),
) -> None:
    """Run the assist server (with no --config: the bundled Northwind Connect demo)."""
    import uvicorn

    from server.settings import Settings

    if workers > 1 and bus.startswith("memory://"):
        raise typer.BadParameter(
            "--workers > 1 needs a shared bus: --bus redis://host:port/0", param_hint="--workers"
        )
    env = {
        "CALLASSIST_HOST": host,
        "CALLASSIST_PORT": str(port),
        "CALLASSIST_BUS_URL": bus,
        "CALLASSIST_STORE_PATH": str(store),
        "CALLASSIST_LOG_LEVEL": log_level,
    }
    if config:
        env["CALLASSIST_CONFIG"] = str(config.resolve())
    os.environ.update(env)
    settings = Settings()
    _setup_logging(log_level)
    from server.auth import Authenticator, AuthError, check_bind

    try:  # protected mode: refuse before binding, with the reason
        auth = Authenticator.from_settings(settings)
        check_bind(host, auth.enabled)
        if auth.enabled and workers > 1 and settings.jwt_secret is None:
            raise AuthError(
                "--workers > 1 with auth needs CALLASSIST_JWT_SECRET: sessions and minted tokens "
                "must verify on every worker"
            )
    except AuthError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        "server.cli:_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=settings.ws_compression,
        log_level=log_level,
    )


@app.command()
def demo(
    server: str = typer.Option("ws://127.0.0.1:8000", help="Server WebSocket base URL."),
    speed: float = typer.Option(1.0, min=0.1, max=100, help="Replay speed (call time / wall time)."),
    only: list[str] = typer.Option([], help="Replay only these demo call ids."),
    token: str | None = typer.Option(
        None, envvar="CALLASSIST_TOKEN", help="Integration credential when the server has auth on."
    ),
) -> None:
    """Replay the bundled scripted calls through the real protocol so the pages come alive."""
    from server.demo import load_demo_calls, replay_call

    _setup_logging("warning")
    scripts = [s for s in load_demo_calls() if not only or s.id in only]

    async def run() -> None:
        async def one(index: int, script) -> None:  # type: ignore[no-untyped-def]
            await asyncio.sleep(index * 3 / speed)
            ack = await replay_call(server, script, speed=speed, token=token)
            typer.echo(f"{script.id:32s} agent={script.agent_id:8s} -> {ack}")

        async with asyncio.TaskGroup() as group:
            for index, script in enumerate(scripts):
                group.create_task(one(index, script))

    asyncio.run(run())


def _read_labelled(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or [])
        label_field = "label" if "label" in fields else "category" if "category" in fields else None
        if "text" not in fields or label_field is None:
            raise typer.BadParameter(
                f"{path}: needs columns text,label (or text,category); has {sorted(fields)}"
            )
        rows = [(r["text"], r[label_field]) for r in reader if r["text"].strip()]
    return [t for t, _ in rows], [label for _, label in rows]


@intents_app.command("evaluate")
def intents_evaluate(
    examples: Path = typer.Option(..., exists=True, dir_okay=False, help="Training CSV: text,label."),
    test: Path = typer.Option(..., exists=True, dir_okay=False, help="Test CSV: text,label."),
    per_intent: int | None = typer.Option(
        None, min=1, help="Use only N random examples per intent (few-shot)."
    ),
    seed: int = typer.Option(0, help="Seed for --per-intent sampling."),
    regularization: float = typer.Option(10.0, help="Inverse L2 strength of the logistic regression."),
    model: str | None = typer.Option(None, help="sentence-transformers model directory."),
    embedder: str = typer.Option("onnx", help="Embedding backend: onnx, onnx-int8 or torch."),
    json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Fit the intent classifier on EXAMPLES and print accuracy and macro-F1 on TEST."""
    from sklearn.metrics import accuracy_score, f1_score

    from assist.embedding import create_embedder
    from assist.intent import IntentModel

    train_texts, train_labels = _read_labelled(examples)
    test_texts, test_labels = _read_labelled(test)
    if per_intent:
        rng = random.Random(seed)
        by_label: dict[str, list[int]] = defaultdict(list)
        for index, label in enumerate(train_labels):
            by_label[label].append(index)
        chosen = sorted(i for idx in by_label.values() for i in rng.sample(idx, min(per_intent, len(idx))))
        train_texts = [train_texts[i] for i in chosen]
        train_labels = [train_labels[i] for i in chosen]
    started = time.perf_counter()
    encoder = create_embedder(embedder, model, cache_dir=Path("var/cache"))
    train_vectors = encoder.encode(train_texts)
    test_vectors = encoder.encode(test_texts)
    classifier = IntentModel.fit(train_vectors, train_labels, regularization=regularization)
    predicted = classifier.predict(test_vectors)
    result = {
        "embedder": encoder.name,
        "train_examples": len(train_texts),
        "intents": len(set(train_labels)),
        "test_examples": len(test_texts),
        "accuracy": round(float(accuracy_score(test_labels, predicted)), 4),
        "macro_f1": round(float(f1_score(test_labels, predicted, average="macro")), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"intents={result['intents']} train={result['train_examples']} test={result['test_examples']}\n"
        f"accuracy={result['accuracy']:.4f} macro_f1={result['macro_f1']:.4f} ({result['seconds']} s)"
    )


@model_app.command("export")
def model_export(
    model: str | None = typer.Option(
        None, help="sentence-transformers model directory (default: all-MiniLM-L6-v2)."
    ),
    cache_dir: Path = typer.Option(Path("var/cache"), help="Where exported models are kept."),
    quantization: list[str] = typer.Option(["fp32", "int8"], help="fp32 and/or int8."),
) -> None:
    """Export the embedding model to ONNX once, so the server starts and runs without torch."""
    from assist.embedding import default_model_path
    from assist.onnx_embedder import export

    path = Path(model or default_model_path())
    for q in quantization:
        typer.echo(f"{q}: {export(path, cache_dir, q)}")


@app.command()
def prepare(
    config: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Assist YAML config (default: demo)."
    ),
) -> None:
    """Do start-up's slow work ahead of time (run by `make install`): export the embedding
    model to ONNX, embed and index the knowledge base, fit the intent and sentiment models.
    Everything lands in the caches, so the server is ready within seconds of starting."""
    from assist.config import AssistConfig
    from assist.embedding import create_embedder
    from assist.engine import AssistEngine
    from server.settings import Settings

    _setup_logging("warning")
    settings = Settings(config=config) if config else Settings()
    started = time.perf_counter()
    embedder = create_embedder(settings.embedder, settings.model_path, cache_dir=settings.cache_dir)
    engine = AssistEngine.build(
        AssistConfig.load(settings.config),
        embedder,
        cache_dir=settings.cache_dir,
        knowledge_dir=settings.kb_dir,
    )
    typer.echo(
        f"ready: {embedder.name}, {len(engine.knowledge)} KB chunks, {len(engine.intents.labels)} intents "
        f"({time.perf_counter() - started:.1f} s)"
    )
    engine.knowledge.close()


@protocol_app.command("schema")
def protocol_schema(
    update_docs: bool = typer.Option(
        False, "--update-docs", help="Rewrite the schema section of docs/protocol.md."
    ),
) -> None:
    """Print the JSON Schema of every protocol message."""
    from assist.protocol import json_schemas
    from server.protocol_docs import DOC, update

    if update_docs:
        typer.echo(f"{DOC}: {'updated' if update() else 'already current'}")
        return
    json.dump(json_schemas(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    app()
