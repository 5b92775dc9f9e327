"""One router process for the contention test (tests/test_routing_redis.py).

It routes its own calls through its own Router on the shared Redis state, runs the live
dispatcher (so both processes race for every agent that frees up), and ends each call it
was assigned after a few milliseconds. Independently of the router it keeps a tally in
Redis: INCR of the agent's holder count on every assignment (must never exceed 1) and SADD
of the call id (must never be there already). Prints a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

import redis.asyncio as aioredis

from routing.redis_state import RedisState
from routing.router import Router


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--total", type=int, required=True, help="calls across all processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tally = aioredis.from_url(args.redis, decode_responses=True)
    prefix = f"test:{args.namespace}"
    violations: list[str] = []
    claims: list[tuple[str, str]] = []
    releases: set[asyncio.Task[None]] = set()

    async def end_later(agent_id: str, call_id: str) -> None:
        await asyncio.sleep(rng.uniform(0.0, 0.02))
        await tally.decr(f"{prefix}:holding:{agent_id}")
        await router.put_agent(agent_id, {"status": "available", "call_id": call_id})

    async def publish(channels: Any, payload: dict[str, Any], *, droppable: bool = False) -> None:
        if payload["type"] != "call.routed":
            return
        agent_id, call_id = payload["agent_id"], payload["call_id"]
        claims.append((call_id, agent_id))
        if await tally.incr(f"{prefix}:holding:{agent_id}") > 1:
            violations.append(f"agent {agent_id} assigned {call_id} while on another call")
        if await tally.sadd(f"{prefix}:calls", call_id) == 0:
            violations.append(f"call {call_id} assigned twice")
        task = asyncio.create_task(end_later(agent_id, call_id))
        releases.add(task)
        task.add_done_callback(releases.discard)

    state = RedisState(args.redis, namespace=args.namespace)
    router = Router(state, publish=publish)
    await router.start()
    started = time.monotonic()
    for i in range(args.calls):
        await router.route_call(
            {"call_id": f"{args.name}-{i}", "language": "en", "tier": rng.choice(["standard", "gold"])}
        )
        if i % 10 == 0:
            await asyncio.sleep(0)
    deadline = time.monotonic() + 60
    # Poll the other process's progress (it lives in Redis, not in this process).
    while await tally.scard(f"{prefix}:calls") < args.total and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    await asyncio.gather(*releases)
    await asyncio.sleep(0.2)  # let the other process's dispatcher finish its last claims
    await router.stop()
    await tally.aclose()
    print(
        json.dumps(
            {
                "name": args.name,
                "claims": claims,
                "violations": violations,
                "lost_claims": {k: v for k, v in router.counters.items() if k.startswith("claim_lost")},
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
