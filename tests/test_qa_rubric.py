"""The rubric as configuration, and the scorecard arithmetic shared by every scorer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from qa.evidence import EvidenceScorer
from qa.records import OfflineRecorder
from qa.rubric import DEFAULT_RUBRIC, Rubric, RubricError
from qa.scorecard import with_offset
from tests.qa_calls import EXEMPLARY, EXEMPLARY_CUSTOMER


def test_default_rubric_has_the_seed_categories_and_weights() -> None:
    """greeting .10, issue identification .20, resolution .30, closing .10, empathy .15, compliance .15."""
    rubric = Rubric.load()
    assert rubric.weights == {
        "greeting": 0.10,
        "issue_identification": 0.20,
        "resolution": 0.30,
        "closing": 0.10,
        "empathy": 0.15,
        "compliance": 0.15,
    }
    assert all(crit.coaching and crit.description for _, crit in rubric.criteria())


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["categories"][0].update(weight=0.5), "must add up to 1.0"),
        (lambda r: r["categories"][0]["criteria"][0].update(check="vibes"), "check"),
        (
            lambda r: r["categories"][0]["criteria"][0].update(patterns=["(unclosed"]),
            "invalid regular expression",
        ),
        (lambda r: r["categories"][1]["criteria"][0].update(id="opening_greeting"), "unique"),
        (
            lambda r: r["categories"][0]["criteria"][0].update(exemplars=[], patterns=[]),
            "needs exemplars or patterns",
        ),
        (lambda r: r["categories"][5]["criteria"][0].pop("rule_ids"), "needs kinds or rule_ids"),
    ],
)
def test_bad_rubrics_are_rejected_naming_the_file(tmp_path: Path, mutate: Any, message: str) -> None:
    """A broken rubric fails at load with the file and the problem, never at scoring time."""
    raw = yaml.safe_load(DEFAULT_RUBRIC.read_text(encoding="utf-8"))
    mutate(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(RubricError, match=message) as info:
        Rubric.load(path)
    assert str(path) in str(info.value)


def test_an_edited_rubric_changes_the_scores(tmp_path: Path, embedder: Any, demo_config: Any) -> None:
    """Editing YAML only: a two-category rubric with a new criterion scores the same call
    with those categories and weights."""
    raw = {
        "name": "lean",
        "categories": [
            {
                "id": "courtesy",
                "name": "Courtesy",
                "weight": 0.25,
                "criteria": [
                    {
                        "id": "says_please",
                        "description": "Says please",
                        "check": "utterance",
                        "patterns": [r"\bplease\b"],
                    }
                ],
            },
            {
                "id": "outcome",
                "name": "Outcome",
                "weight": 0.75,
                "criteria": [
                    {
                        "id": "happy_customer",
                        "description": "Customer ends happy",
                        "check": "sentiment_outcome",
                    }
                ],
            },
        ],
    }
    rubric = Rubric.load(_write(tmp_path, raw))
    record = OfflineRecorder(demo_config).record("edited-1", "a1", EXEMPLARY, customer=EXEMPLARY_CUSTOMER)
    card = EvidenceScorer(rubric, embedder).score(record)
    assert set(card.category_scores) == {"courtesy", "outcome"}
    please = card.criteria[0]
    assert please.score == 1.0 and "please" in please.evidence[0].text.lower()
    outcome = card.category_scores["outcome"]
    assert card.raw_overall_score == pytest.approx(0.25 * 100 + 0.75 * (outcome or 0), abs=0.1)


def test_hold_procedure_comes_from_hold_events(embedder: Any, demo_config: Any) -> None:
    """Two holds, one asked for: hold_procedure_score is 50, from the holds themselves; a call
    with no hold has no hold score and the criterion is left out, not given free points."""
    lines = [dict(line) for line in EXEMPLARY]
    lines.insert(14, {"speaker": "agent", "at": 131.0, "text": "Hang on, I'm putting you on hold again."})
    lines[15]["at"] = 200.0
    for line in lines[16:]:
        line["at"] += 70
    scorer = EvidenceScorer(Rubric.load(), embedder)
    card = scorer.score(
        OfflineRecorder(demo_config).record("holds-2", "a1", lines, customer=EXEMPLARY_CUSTOMER)
    )
    assert card.holds == 2 and card.hold_procedure_score == 50.0
    hold = next(c for c in card.criteria if c.id == "hold_procedure")
    assert hold.score == 0.5 and [e.note for e in hold.evidence] == [
        "hold after asking permission",
        "hold without permission",
    ]
    no_hold = [line for line in EXEMPLARY if "hold" not in line["text"].lower()]
    plain = scorer.score(
        OfflineRecorder(demo_config).record("holds-0", "a1", no_hold, customer=EXEMPLARY_CUSTOMER)
    )
    assert plain.hold_procedure_score is None and plain.holds == 0
    assert next(c for c in plain.criteria if c.id == "hold_procedure").applicable is False


def test_calibration_offset_is_clamped(embedder: Any, demo_config: Any) -> None:
    """raw + offset is clamped to 0..100; the raw score is kept."""
    card = EvidenceScorer(Rubric.load(), embedder).score(
        OfflineRecorder(demo_config).record("clamp-1", "a1", EXEMPLARY, customer=EXEMPLARY_CUSTOMER)
    )
    high, low = with_offset(card, 40.0), with_offset(card, -150.0)
    assert high.overall_score == 100.0 and low.overall_score == 0.0
    assert high.raw_overall_score == low.raw_overall_score == card.raw_overall_score
    assert high.calibration_offset == 40.0
