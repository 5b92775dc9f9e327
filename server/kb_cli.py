"""``callassist kb``: build, edit, search, inspect and evaluate the knowledge base on disk.

Commands work on the same index folder the server uses (``--kb-dir``, default ``var/kb``,
one sub-folder per configured source), so a running server picks the edits up within a
second from the store's change log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

kb_app = typer.Typer(
    help="Knowledge base: build, add, remove, search, stats, evaluate.", no_args_is_help=True
)

ConfigOption = typer.Option(None, exists=True, dir_okay=False, help="Assist YAML config (default: demo).")
KbDirOption = typer.Option(Path("var/kb"), help="Root of the knowledge-base indexes (as the server's).")
IndexDirOption = typer.Option(None, help="Index folder (overrides the config and --kb-dir).")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


@contextmanager
def _open(
    config_path: Path | None, kb_dir: Path, index_dir: Path | None, *, sync: bool = False
) -> Iterator[tuple[object, object]]:
    """Load the model and open the knowledge base (syncing the configured source if asked)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from assist.config import AssistConfig, ConfigError
    from assist.embedding import create_embedder
    from kb_index.articles import ArticleError
    from kb_index.index import KnowledgeIndex, RetrievalSettings, default_directory
    from kb_index.vectors import IndexSpec
    from server.settings import Settings

    try:
        config = AssistConfig.load(config_path)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    kb = config.knowledge_base
    directory = index_dir or kb.index_dir or default_directory(kb_dir, kb.path)
    settings = Settings()  # the same embedder as the server (CALLASSIST_EMBEDDER etc.)
    embedder = create_embedder(
        settings.embedder, settings.model_path, cache_dir=settings.cache_dir, threads=settings.model_threads
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("embedding chunks", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        try:
            index = KnowledgeIndex.open(
                directory,
                embedder.encode,
                model_name=embedder.name,
                spec=IndexSpec(
                    kind=kb.index, ann_threshold=kb.ann_threshold, nlist=kb.nlist, nprobe=kb.nprobe
                ),
                retrieval=RetrievalSettings(
                    mode=kb.search,
                    rrf_k=kb.rrf_k,
                    min_lexical_score=kb.min_lexical_score,
                    question_margin=kb.question_margin,
                ),
                progress=progress,
            )
        except ArticleError as exc:
            raise _fail(str(exc)) from None
        index.progress = progress  # type: ignore[attr-defined]
        try:
            yield config, index
        finally:
            if index.dirty:
                index.save_snapshot()
            index.close()


def _report(report: object, as_json: bool) -> None:
    data = report.to_dict()  # type: ignore[attr-defined]
    if as_json:
        typer.echo(json.dumps(data))
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in data.items()))


@kb_app.command()
def build(
    sources: list[Path] = typer.Argument(None, help="Folders/files to sync (default: the config's path)."),
    config: Path | None = ConfigOption,
    kb_dir: Path = KbDirOption,
    index_dir: Path | None = IndexDirOption,
    reindex: bool = typer.Option(False, help="Rebuild the vector index (retrain IVF) from the cache."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Make the index match SOURCES: add new and changed articles, drop removed ones."""
    from kb_index.articles import ArticleError
    from kb_index.index import SNAPSHOT_FILE, source_key
    from kb_index.ingest import load_source

    with _open(config, kb_dir, index_dir) as (cfg, index):
        paths = sources or ([cfg.knowledge_base.path] if cfg.knowledge_base.path else [])  # type: ignore[attr-defined]
        if not paths:
            raise _fail("no source: give a folder or file, or set knowledge_base.path in the config")
        for path in paths:
            try:
                articles = load_source(path)
            except ArticleError as exc:
                raise _fail(str(exc)) from None
            report = index.sync_source(articles, source_key(path), progress=index.progress)  # type: ignore[attr-defined]
            _report(report, json_out)
        if reindex and index.directory is not None:  # type: ignore[attr-defined]
            (index.directory / SNAPSHOT_FILE).unlink(missing_ok=True)  # type: ignore[attr-defined]
            index.reload(progress=index.progress)  # type: ignore[attr-defined]
        index.save_snapshot()  # type: ignore[attr-defined]
        stats = index.stats()  # type: ignore[attr-defined]
        typer.echo(
            f"{stats['articles']} articles, {stats['chunks']} chunks, {stats['index']} index in {stats['directory']}",
            err=json_out,
        )


@kb_app.command()
def add(
    paths: list[Path] = typer.Argument(..., help="Article files, folders, .jsonl or .csv exports."),
    config: Path | None = ConfigOption,
    kb_dir: Path = KbDirOption,
    index_dir: Path | None = IndexDirOption,
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Add or update articles (kept until removed, whatever the configured folder holds)."""
    from kb_index.articles import ArticleError
    from kb_index.ingest import load_source

    try:
        articles = load_source(*paths)
    except ArticleError as exc:
        raise _fail(str(exc)) from None
    with _open(config, kb_dir, index_dir) as (_, index):
        _report(index.upsert_many(articles, progress=index.progress), json_out)  # type: ignore[attr-defined]


@kb_app.command()
def remove(
    ids: list[str] = typer.Argument(..., help="Article ids."),
    config: Path | None = ConfigOption,
    kb_dir: Path = KbDirOption,
    index_dir: Path | None = IndexDirOption,
) -> None:
    """Remove articles by id."""
    with _open(config, kb_dir, index_dir) as (_, index):
        unknown = [i for i in ids if not index.delete(i)]  # type: ignore[attr-defined]
    typer.echo(f"removed {len(ids) - len(unknown)}")
    if unknown:
        raise _fail(f"unknown article id(s): {', '.join(unknown)}")


@kb_app.command()
def search(
    query: str = typer.Argument(...),
    k: int = typer.Option(3, "-k", min=1, max=50),
    min_score: float | None = typer.Option(None, help="Cosine floor (default: the config's)."),
    mode: str = typer.Option("hybrid", help="hybrid, dense or lexical."),
    product: str | None = typer.Option(None),
    language: str | None = typer.Option(None),
    tag: list[str] = typer.Option([], help="Required tag (repeatable)."),
    config: Path | None = ConfigOption,
    kb_dir: Path = KbDirOption,
    index_dir: Path | None = IndexDirOption,
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Search the knowledge base as a live call would."""
    from kb_index.index import Filters

    if mode not in ("hybrid", "dense", "lexical"):
        raise _fail("--mode must be hybrid, dense or lexical")
    with _open(config, kb_dir, index_dir) as (cfg, index):
        floor = cfg.knowledge_base.min_score if min_score is None else min_score  # type: ignore[attr-defined]
        hits = index.search_text(  # type: ignore[attr-defined]
            [query], k=k, min_score=floor, mode=mode, filters=Filters(product, language, tuple(tag))
        )[0]
    if json_out:
        typer.echo(json.dumps([h.to_api_dict() for h in hits]))
        return
    if not hits:
        typer.echo(f"no article scores above {floor}")
    for rank, hit in enumerate(hits, 1):
        typer.echo(f"{rank}. {hit.id}  cos={hit.score:.3f} bm25={hit.lexical_score:.2f}  {hit.title}")
        typer.echo(f"   #{hit.anchor}: {hit.snippet}")


@kb_app.command()
def stats(
    config: Path | None = ConfigOption,
    kb_dir: Path = KbDirOption,
    index_dir: Path | None = IndexDirOption,
) -> None:
    """Print the size and settings of the index."""
    with _open(config, kb_dir, index_dir) as (_, index):
        typer.echo(json.dumps(index.stats(), indent=2))  # type: ignore[attr-defined]


@kb_app.command()
def evaluate(
    queries: Path = typer.Option(..., exists=True, dir_okay=False, help="CSV with columns query,article_id."),
    mode: str = typer.Option("all", help="hybrid, dense, lexical or all."),
    misses: bool = typer.Option(False, help="List the queries whose article is not in the top 3."),
    config: Path | None = ConfigOption,
    kb_dir: Path = KbDirOption,
    index_dir: Path | None = IndexDirOption,
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Print recall@1, recall@3 and MRR of labelled queries against the index."""
    from kb_index.articles import ArticleError
    from kb_index.evaluate import MODES, evaluate, read_queries

    modes = MODES if mode == "all" else (mode,)
    if not set(modes) <= set(MODES):
        raise _fail("--mode must be hybrid, dense, lexical or all")
    try:
        labelled = read_queries(queries)
    except ArticleError as exc:
        raise _fail(str(exc)) from None
    with _open(config, kb_dir, index_dir) as (_, index):
        if not index.article_count:  # type: ignore[attr-defined]
            raise _fail("the index is empty: run `callassist kb build` first")
        try:
            results = evaluate(index, labelled, modes)  # type: ignore[arg-type]
        except ArticleError as exc:
            raise _fail(str(exc)) from None
    if json_out:
        typer.echo(json.dumps([r.to_dict() for r in results]))
        return
    typer.echo(f"{'mode':8s} {'queries':>7s} {'recall@1':>9s} {'recall@3':>9s} {'MRR':>7s}")
    for r in results:
        typer.echo(f"{r.mode:8s} {r.queries:7d} {r.recall_at_1:9.3f} {r.recall_at_3:9.3f} {r.mrr:7.3f}")
    if misses:
        for r in results:
            typer.echo(f"\n{r.mode}: {len(r.misses)} misses")
            for query, gold, top in r.misses:
                typer.echo(f"  {query!r} -> want {gold}, got {', '.join(top) or '-'}")
