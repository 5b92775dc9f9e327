"""Knowledge-base REST API and live updates seen by running calls."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import MS, Listener, Softphone

NEW_ARTICLE = {
    "title": "Quasar modem blinking amber",
    "body": "# Quasar modem blinking amber\n\nAn amber QX-77 light means the Quasar modem lost sync. "
    "Unplug the Quasar for sixty seconds, then check the QX-77 light turns green.",
    "product": "broadband",
    "tags": ["modem", "quasar"],
}


@pytest.fixture(scope="session")
def warm_kb(embedder: Any, demo_config: Any, tmp_path_factory: Any) -> Path:
    """A demo knowledge-base folder with everything embedded once, copied by each test."""
    from assist.compliance import CompliancePolicy
    from assist.engine import build_knowledge, fit_intents
    from assist.semantic import ExemplarBank

    root = tmp_path_factory.mktemp("kb-warm")
    knowledge = build_knowledge(demo_config, embedder, root)
    cached = knowledge.cached_embedder(embedder.name)
    fit_intents(demo_config, cached)
    ExemplarBank(CompliancePolicy(demo_config.compliance).exemplar_groups(), cached)
    knowledge.close()
    return root


@pytest.fixture
def kb_dir(warm_kb: Path, tmp_path: Path) -> Path:
    """This test's own copy of the warm knowledge base (edits never leak between tests)."""
    shutil.copytree(warm_kb, tmp_path / "kb")
    return tmp_path / "kb"


def test_rest_crud_and_clear_errors(server_factory: Any, kb_dir: Path) -> None:
    """PUT creates then updates, GET lists and reads, DELETE removes; bad input gets 4xx JSON errors."""
    server = server_factory(kb_dir=kb_dir)
    with httpx.Client(base_url=server.http, timeout=30) as client:
        created = client.put("/v1/kb/articles/quasar-amber", json=NEW_ARTICLE)
        assert created.status_code == 201 and created.json()["created"] is True
        same = client.put("/v1/kb/articles/quasar-amber", json=NEW_ARTICLE)
        assert (
            same.status_code == 200
            and same.json()["changed"] is False
            and same.json()["chunks_embedded"] == 0
        )
        article = client.get("/v1/kb/articles/quasar-amber").json()
        assert (
            article["title"] == NEW_ARTICLE["title"] and article["source"] == "api" and article["chunks"] >= 1
        )
        listing = client.get("/v1/kb/articles", params={"product": "broadband", "tag": "quasar"}).json()
        assert [a["id"] for a in listing["articles"]] == ["quasar-amber"]
        assert client.get("/v1/kb/articles", params={"limit": 5}).json()["total"] == 52

        missing_title = client.put("/v1/kb/articles/x", json={"body": "text"})
        assert missing_title.status_code == 422
        assert missing_title.json()["error"] == {
            "code": "invalid_article",
            "message": "article 'x': 'title' is required",
            "field": "title",
        }
        assert (
            client.put("/v1/kb/articles/x", json={"title": "t", "body": " "}).json()["error"]["field"]
            == "body"
        )
        oversize = client.put("/v1/kb/articles/x", json={"title": "t", "body": "word " * 50_000})
        assert oversize.status_code == 413 and oversize.json()["error"]["code"] == "article_too_large"
        bad_json = client.put(
            "/v1/kb/articles/x", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
        assert client.put("/v1/kb/articles/x", json={**NEW_ARTICLE, "colour": "red"}).status_code == 422
        assert client.put("/v1/kb/articles/bad%20id", json=NEW_ARTICLE).json()["error"]["field"] == "id"
        unknown = client.get("/v1/kb/articles/nope")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_article"
        assert client.delete("/v1/kb/articles/nope").status_code == 404
        assert client.post("/v1/kb/search", json={"k": 3}).json()["error"]["field"] == "query"
        assert client.post("/v1/kb/search", json={"query": "x", "k": 0}).status_code == 422

        found = client.post(
            "/v1/kb/search", json={"query": "my modem light is amber", "filters": {"product": "broadband"}}
        ).json()
        assert found["hits"][0]["id"] == "quasar-amber" and found["mode"] == "hybrid"
        assert client.delete("/v1/kb/articles/quasar-amber").status_code == 204
        assert client.get("/v1/kb/articles/quasar-amber").status_code == 404
        metrics = client.get("/metrics").text
        assert "callassist_kb_articles 51.0" in metrics


def test_update_is_visible_within_a_second_with_no_failed_search(server_factory: Any, kb_dir: Path) -> None:
    """While searches run non-stop (worker-thread and REST), a PUT becomes visible within 1 s and no search fails."""
    server = server_factory(kb_dir=kb_dir)
    engine = server.services.engine
    query = "the QX-77 light on my Quasar modem is amber"
    vector = engine.embedder.encode([query])
    failures: list[BaseException] = []
    seen_at: list[float] = []
    searches = [0]
    stop = threading.Event()

    def worker_searches() -> None:  # what the embedding worker does per batch
        while not stop.is_set():
            try:
                knowledge = engine.knowledge
                hits = knowledge.search(vector, [query], k=3, min_score=0.35)[0]
                searches[0] += 1
                if hits and hits[0].id == "quasar-amber" and not seen_at:
                    seen_at.append(time.monotonic())
            except BaseException as exc:  # any failure at all is the bug we look for
                failures.append(exc)

    def rest_searches() -> None:
        with httpx.Client(base_url=server.http, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/v1/kb/search", json={"query": query})
                if response.status_code != 200:
                    failures.append(AssertionError(response.text))
                searches[0] += 1

    threads = [threading.Thread(target=worker_searches), threading.Thread(target=rest_searches)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(300 * MS)
        with httpx.Client(base_url=server.http, timeout=30) as client:
            started = time.monotonic()
            assert client.put("/v1/kb/articles/quasar-amber", json=NEW_ARTICLE).status_code == 201
            returned = time.monotonic()
            deadline = returned + 1.0
            while not seen_at and time.monotonic() < deadline:
                time.sleep(0.01)
            assert client.delete("/v1/kb/articles/quasar-amber").status_code == 204
        time.sleep(300 * MS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures, failures[:3]
    assert seen_at and seen_at[0] - returned <= 1.0, "update not visible within 1 s of the PUT returning"
    assert searches[0] > 10
    del started


async def test_live_call_gets_an_article_added_during_the_call(server_factory: Any, kb_dir: Path) -> None:
    """An article PUT while a call is live is suggested on the call's next customer utterance, no restart."""
    server = server_factory(kb_dir=kb_dir)
    async with Listener(f"{server.ws}/v1/agents/agent-kb") as agent, Softphone(server.ws, "call-kb") as phone:
        await phone.start("agent-kb")
        await phone.say("customer", "the QX-77 light on my Quasar modem is amber", 5.0, "u-1")
        await agent.wait_for(lambda events: any(e["type"] == "assist" for e in events))
        first = agent.of_type("assist")[0]
        assert "quasar-amber" not in [a["id"] for a in first["knowledge_articles"]]
        async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
            assert (await client.put("/v1/kb/articles/quasar-amber", json=NEW_ARTICLE)).status_code == 201
        await phone.say("customer", "the QX-77 light on my Quasar modem is still amber", 9.0, "u-2")
        await agent.wait_for(lambda events: len([e for e in events if e["type"] == "assist"]) >= 2)
        second = agent.of_type("assist")[1]
        assert second["knowledge_articles"][0]["id"] == "quasar-amber"
        await phone.end()
    await asyncio.sleep(0)


def test_restart_keeps_api_articles_and_skips_embedding(server_factory: Any, kb_dir: Path) -> None:
    """Articles added over REST survive a restart, and the restarted server re-embeds no chunk."""
    first = server_factory(kb_dir=kb_dir)
    with httpx.Client(base_url=first.http, timeout=30) as client:
        assert client.put("/v1/kb/articles/quasar-amber", json=NEW_ARTICLE).status_code == 201
    cached = first.services.engine.knowledge.stats()["cached_embeddings"]
    first.stop()
    second = server_factory(kb_dir=kb_dir)
    knowledge = second.services.engine.knowledge
    assert knowledge.get("quasar-amber") is not None and knowledge.loaded_from_snapshot
    assert knowledge.stats()["cached_embeddings"] == cached
