"""Agreement of the evidence scorer with human-style review scores on a labelled set.

    .venv/bin/python bench/qa_agreement.py            # build the set (if missing) and report
    .venv/bin/python bench/qa_agreement.py --rebuild  # regenerate bench/qa_labelled/

The set: 48 calls (24 dev, phrased with paraphrase pool 0; 24 test, phrased with the
disjoint pool 1 and never used for tuning) whose agent quality varies from poor to
excellent. Each call's "human" score follows the written reviewer guide below (a QA
reviewer's holistic deductions, deliberately not the rubric's weights), plus reviewer noise.
These are human-style labels written by us, not scores from real reviewers.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.qa_corpus import Knobs, build_call, random_knobs  # noqa: E402

OUT = Path(__file__).resolve().parent / "qa_labelled"

# Reviewer guide: start at 100 and deduct.
GUIDE = {
    "no greeting or introduction": 8,
    "no recording notice": 8,
    "identity not verified": 10,
    "no probing question": 10,
    "only one probing question": 4,
    "did not confirm understanding": 5,
    "no empathy for an upset customer": 10,
    "dismissive language": 10,
    "problem not fixed": 20,
    "no next steps or timeline": 5,
    "did not check the customer was happy": 3,
    "no recap": 4,
    "no 'anything else'": 4,
    "curt close": 5,
    "hold without permission": 6,
    "unauthorised promise": 10,
    "customer left unhappy": 6,
}


def review(knobs: Knobs, rng: random.Random) -> tuple[float, list[str]]:
    faults = []
    if not knobs.greeting:
        faults.append("no greeting or introduction")
    if not knobs.greeting or not knobs.notice:
        faults.append("no recording notice")
    if not knobs.verify:
        faults.append("identity not verified")
    if knobs.probes == 0:
        faults.append("no probing question")
    elif knobs.probes == 1:
        faults.append("only one probing question")
    if not knobs.confirm:
        faults.append("did not confirm understanding")
    if not knobs.empathy:
        faults.append("no empathy for an upset customer")
    if knobs.dismissive:
        faults.append("dismissive language")
    if not knobs.fix:
        faults.append("problem not fixed")
    elif not knobs.expect:
        faults.append("no next steps or timeline")
    if not knobs.check:
        faults.append("did not check the customer was happy")
    if not knobs.recap:
        faults.append("no recap")
    if not knobs.anything_else:
        faults.append("no 'anything else'")
    if not knobs.goodbye:
        faults.append("curt close")
    if knobs.hold == "unasked":
        faults.append("hold without permission")
    if knobs.promise:
        faults.append("unauthorised promise")
    if not knobs.happy_end:
        faults.append("customer left unhappy")
    score = 100 - sum(GUIDE[f] for f in faults) + rng.gauss(0, 3)  # reviewer noise
    return round(min(100.0, max(0.0, score))), faults


def build(count: int = 24) -> None:
    OUT.mkdir(exist_ok=True)
    calls = []
    for split, variant, seed in (("dev", 0, 101), ("test", 1, 202)):
        rng = random.Random(seed)
        for i in range(count):
            quality = [0.15, 0.35, 0.55, 0.75, 0.95][i % 5] + rng.uniform(-0.1, 0.1)
            knobs = random_knobs(rng, quality)
            utterances, customer, intent = build_call(rng, knobs, variant=variant)
            human, faults = review(knobs, rng)
            calls.append(
                {
                    "call_id": f"{split}-{i:02d}",
                    "split": split,
                    "agent_id": f"agent-{i % 6}",
                    "intent": intent,
                    "customer": customer,
                    "knobs": asdict(knobs),
                    "human_score": human,
                    "reviewer_notes": faults,
                    "utterances": utterances,
                }
            )
    with (OUT / "calls.jsonl").open("w", encoding="utf-8") as handle:
        for call in calls:
            handle.write(json.dumps(call, ensure_ascii=False) + "\n")
    with (OUT / "human_scores.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["call_id", "agent_id", "overall_score"])
        for call in calls:
            writer.writerow([call["call_id"], call["agent_id"], call["human_score"]])


async def evaluate() -> dict[str, object]:
    from assist.config import AssistConfig
    from assist.embedding import SentenceTransformerEmbedder
    from assist.engine import AssistEngine
    from qa.calibration import band, calibrate_scores, icc, kappa
    from qa.evidence import EvidenceScorer
    from qa.records import record_with_engine
    from qa.rubric import Rubric

    calls = [json.loads(line) for line in (OUT / "calls.jsonl").read_text(encoding="utf-8").splitlines()]
    embedder = SentenceTransformerEmbedder()
    engine = await asyncio.to_thread(AssistEngine.build, AssistConfig.load(), embedder)
    engine.start()
    rubric = Rubric.load()
    scorer = EvidenceScorer(rubric, embedder)
    ai: dict[str, float] = {}
    for call in calls:
        record = await record_with_engine(
            engine, call["call_id"], call["agent_id"], call["utterances"], customer=call["customer"]
        )
        ai[call["call_id"]] = scorer.score(record).raw_overall_score
    await engine.close()
    report: dict[str, object] = {}
    for split in ("dev", "test"):
        subset = [c for c in calls if c["split"] == split]
        a = [ai[c["call_id"]] for c in subset]
        h = [float(c["human_score"]) for c in subset]
        stats = calibrate_scores(a, h)
        stats["mean_absolute_error"] = round(float(np.mean(np.abs(np.subtract(h, a)))), 2)
        stats["icc"] = icc(np.column_stack([a, h]))
        stats["kappa_bands"] = kappa(
            [band(x, rubric.bands) for x in a], [band(x, rubric.bands) for x in h], labels=[0, 1, 2, 3]
        )
        stats["human_range"] = [min(h), max(h)]
        stats["ai_range"] = [min(a), max(a)]
        report[split] = stats
    dev_offset = report["dev"]["offset"]  # type: ignore[index]
    test = [c for c in calls if c["split"] == "test"]
    after = [abs(c["human_score"] - min(100, max(0, ai[c["call_id"]] + dev_offset))) for c in test]
    report["test_mae_after_dev_offset"] = round(float(np.mean(after)), 2)
    report["per_call"] = [
        {"call_id": c["call_id"], "human": c["human_score"], "ai": ai[c["call_id"]]} for c in calls
    ]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--per-call", action="store_true", help="print every call's scores")
    args = parser.parse_args()
    if args.rebuild or not (OUT / "calls.jsonl").exists():
        build()
    report = asyncio.run(evaluate())
    if not args.per_call:
        report.pop("per_call")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
