"""Scale benchmark of the knowledge-base vector index (the product's ``VectorIndex``).

Synthetic corpus: N unit vectors of dimension D drawn around C topic centres (real
embeddings cluster by topic; uniform random vectors have no neighbours worth finding).
Queries are fresh draws from the same distribution. Prints build time, memory, single-query
search p50/p99 and recall@10 of the approximate index against exact search, per nprobe,
and the time of a single-article update (remove + add 5 chunks) at full size.

    .venv/bin/python bench/kb_scale.py                 # 1,000,000 x 384
    .venv/bin/python bench/kb_scale.py --n 100000      # quicker
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np

from kb_index.vectors import IndexSpec, VectorIndex, default_nlist


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def corpus(n: int, dim: int, centres: int, rng: np.random.Generator, spread: float) -> np.ndarray:
    centre = rng.standard_normal((centres, dim)).astype(np.float32)
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        noise = rng.standard_normal((stop - start, dim)).astype(np.float32) * (spread / np.sqrt(dim))
        out[start:stop] = centre[rng.integers(0, centres, stop - start)] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--centres", type=int, default=0, help="topic centres (default: n / 50)")
    parser.add_argument(
        "--spread",
        type=float,
        default=0.9,
        help="noise norm relative to the centre: 0.9 puts same-topic pairs near cosine 0.55, as "
        "MiniLM puts paraphrases, and unrelated pairs near 0",
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--nprobe", type=int, nargs="*", default=[32, 64, 128])
    parser.add_argument("--threads", type=int, default=0, help="FAISS OpenMP threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    args.centres = args.centres or max(1, args.n // 50)
    rng = np.random.default_rng(0)
    base_rss = rss_mb()[0]
    started = time.perf_counter()
    vectors = corpus(args.n + args.queries, args.dim, args.centres, rng, args.spread)
    queries, vectors = vectors[: args.queries], vectors[args.queries :]
    ids = np.arange(1, args.n + 1, dtype=np.int64) * 7919  # sparse ids, as chunk-id hashes are
    print(f"corpus: {args.n:,} x {args.dim} generated in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    exact = VectorIndex.flat(args.dim)
    exact.add(ids, vectors)
    _, truth = exact.search(queries, 10)
    print(f"exact ground truth for {args.queries} queries: {time.perf_counter() - started:.1f} s")
    flat_times = []
    for query in queries[:100]:
        t = time.perf_counter()
        exact.search(query[None, :], 10)
        flat_times.append((time.perf_counter() - t) * 1000)
    print(
        f"exact search p50 {np.percentile(flat_times, 50):.1f} ms p99 {np.percentile(flat_times, 99):.1f} ms"
    )
    del exact

    before = rss_mb()[0]
    started = time.perf_counter()
    index = VectorIndex.build(IndexSpec(kind="auto"), args.dim, ids, vectors)
    build_s = time.perf_counter() - started
    index_mb = rss_mb()[0] - before
    print(
        f"auto index: {index.kind} nlist={index.nlist} (default_nlist={default_nlist(args.n)}) "
        f"built in {build_s:.1f} s; index memory ≈ {index_mb:,.0f} MiB "
        f"(raw vectors {vectors.nbytes / 2**20:,.0f} MiB); process RSS {rss_mb()[0] - base_rss:,.0f} MiB"
    )
    rows = []
    for nprobe in args.nprobe:
        index.nprobe = nprobe
        times = []
        found = np.empty_like(truth)
        for i, query in enumerate(queries):
            t = time.perf_counter()
            _, row = index.search(query[None, :], 10)
            times.append((time.perf_counter() - t) * 1000)
            found[i] = row[0]
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        row = {
            "nprobe": nprobe,
            "p50_ms": round(float(np.percentile(times, 50)), 2),
            "p99_ms": round(float(np.percentile(times, 99)), 2),
            "recall@10": round(float(recall), 4),
        }
        rows.append(row)
        print(json.dumps(row))

    update = []
    for i in range(20):
        chosen = ids[i * 5 : i * 5 + 5]
        t = time.perf_counter()
        index.remove(chosen)
        index.add(chosen, vectors[i * 5 : i * 5 + 5])
        update.append((time.perf_counter() - t) * 1000)
    print(f"single-article update (5 chunks) p50 {np.percentile(update, 50):.2f} ms max {max(update):.2f} ms")
    started = time.perf_counter()
    blob = index.to_bytes()
    print(f"snapshot {len(blob) / 2**20:,.0f} MiB serialised in {time.perf_counter() - started:.1f} s")
    print(f"peak RSS {rss_mb()[1]:,.0f} MiB")


if __name__ == "__main__":
    main()
