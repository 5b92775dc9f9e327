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

from server.archive import worker_app

app = typer.Typer(help="callassist: real-time agent assist for call centers.", no_args_is_help=True)
intents_app = typer.Typer(help="Intent classifier tools.", no_args_is_help=True)
protocol_app = typer.Typer(help="Protocol v1 tools.", no_args_is_help=True)
app.add_typer(intents_app, name="intents")
app.add_typer(protocol_app, name="protocol")
app.add_typer(worker_app, name="worker")


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
    uvicorn.run(
        "server.cli:_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ws_max_size=settings.max_frame_bytes,
        log_level=log_level,
    )


@app.command()
def demo(
    server: str = typer.Option("ws://127.0.0.1:8000", help="Server WebSocket base URL."),
    speed: float = typer.Option(1.0, min=0.1, max=100, help="Replay speed (call time / wall time)."),
    only: list[str] = typer.Option([], help="Replay only these demo call ids."),
) -> None:
    """Replay the bundled scripted calls through the real protocol so the pages come alive."""
    from server.demo import load_demo_calls, replay_call

    _setup_logging("warning")
    scripts = [s for s in load_demo_calls() if not only or s.id in only]

    async def run() -> None:
        async def one(index: int, script) -> None:  # type: ignore[no-untyped-def]
            await asyncio.sleep(index * 3 / speed)
            ack = await replay_call(server, script, speed=speed)
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
    json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Fit the intent classifier on EXAMPLES and print accuracy and macro-F1 on TEST."""
    from sklearn.metrics import accuracy_score, f1_score

    from assist.embedding import SentenceTransformerEmbedder
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
    embedder = SentenceTransformerEmbedder(model)
    train_vectors = embedder.encode(train_texts)
    test_vectors = embedder.encode(test_texts)
    classifier = IntentModel.fit(train_vectors, train_labels, regularization=regularization)
    predicted = classifier.predict(test_vectors)
    result = {
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


@protocol_app.command("schema")
def protocol_schema() -> None:
    """Print the JSON Schema of every protocol message."""
    from assist.protocol import json_schemas

    json.dump(json_schemas(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    app()
