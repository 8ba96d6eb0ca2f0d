"""The objects bench's yardstick: the critical path of dependent round trips times the latency,
plus requests times the latency divided by the requests allowed in flight. Pure logic here; the
plan it is computed from comes from bench/objects_bench.py."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def critical_path(deps: Mapping[K, Iterable[K]], cost: Mapping[K, int]) -> tuple[int, list[K]]:
    """Round trips of the longest chain of dependent steps, and the chain (first step first).

    A step starts when every step it depends on has finished and takes `cost` round trips
    (missing: 1). Dependencies outside `deps` are ignored; a cycle is a bug and raises ValueError.
    """
    finish: dict[K, int] = {}
    before: dict[K, K | None] = {}
    visiting: set[K] = set()
    for root in deps:
        stack: list[tuple[K, bool]] = [(root, False)]
        while stack:
            key, expanded = stack.pop()
            if key in finish:
                continue
            known = [d for d in deps.get(key, ()) if d in deps]
            if not expanded:
                if key in visiting:
                    raise ValueError(f"dependency cycle through {key!r}")
                visiting.add(key)
                stack.append((key, True))
                stack.extend((d, False) for d in known if d not in finish)
                continue
            visiting.discard(key)
            prev = max(known, key=lambda d: finish[d], default=None)
            before[key] = prev
            finish[key] = cost.get(key, 1) + (finish[prev] if prev is not None else 0)
    if not finish:
        return 0, []
    last: K | None = max(finish, key=lambda k: finish[k])
    total = finish[last]
    chain: list[K] = []
    while last is not None:
        chain.append(last)
        last = before[last]
    return total, chain[::-1]


def ideal_seconds(chain_trips: int, requests: int, latency_s: float, cap: int) -> float:
    """No run can beat its chain of round trips, nor push its requests faster than `cap` at a time."""
    return chain_trips * latency_s + requests * latency_s / cap
