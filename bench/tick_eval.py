"""Task throughput: pre-parsed points through a TICKscript alert pipeline, in one process.

Run: ``.venv/bin/python bench/tick_eval.py [--points N] [--repeat R]``.
Prints one JSON object per scenario; never asserts times (benchmarks inform, tests decide).

Pipeline (three level lambdas, as in the issue)::

    stream|from().measurement('cpu')|where(lambda: "host" != 'x')
        |alert().info(…).warn(…).crit(…)

Scenarios: ``healthy`` (every point OK: the common case, no event rendered), ``alerting``
(every 100th point crosses a level: events are rendered and collected), ``grouped`` (as
healthy, with ``|groupBy('host')`` on from()), and ``lambda-floor``: only the four compiled
lambdas called per point, no pipeline, the ceiling the pipeline's overhead is measured against.
"""

from __future__ import annotations

import argparse
import json
import time

from kapacity.models import Point
from kapacity.pipeline import build_task
from kapacity.tick import compile_lambda, parse_lambda

LAMBDAS = ('"host" != \'x\'', '"usage_user" > 70.0', '"usage_user" > 80.0', '"usage_user" > 90.0')

SCRIPT = """
stream
    |from()
        .measurement('cpu'){group}
    |where(lambda: "host" != 'x')
    |alert()
        .info(lambda: "usage_user" > 70.0)
        .warn(lambda: "usage_user" > 80.0)
        .crit(lambda: "usage_user" > 90.0)
"""


def _points(n: int, alerting: bool) -> list[Point]:
    out = []
    for i in range(n):
        value = 95.0 if alerting and i % 100 == 0 else 30.0 + (i % 7)
        out.append(Point("cpu", {"host": f"server{i % 100:02d}", "region": "us-west"},
                         {"usage_user": value, "usage_idle": 100.0 - value}, time=1_700_000_000_000_000_000 + i))
    return out


def _measure(name: str, points: list[Point], repeat: int, group: str) -> dict[str, object]:
    best = float("inf")
    events = 0
    for _ in range(repeat):
        task = build_task(SCRIPT.format(group=group), task_name="bench")
        start = time.perf_counter()
        events = len(task.process_many(points))
        best = min(best, time.perf_counter() - start)
    return {
        "scenario": name,
        "points": len(points),
        "events": events,
        "best_seconds": round(best, 4),
        "points_per_second": int(len(points) / best),
    }


def _floor(points: list[Point], repeat: int) -> dict[str, object]:
    a, b, c, d = (compile_lambda(parse_lambda(src), predicate=True).fn for src in LAMBDAS)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for p in points:
            f, tg, t = p.fields, p.tags, p.time
            a(f, tg, t)
            d(f, tg, t)
            c(f, tg, t)
            b(f, tg, t)
        best = min(best, time.perf_counter() - start)
    return {"scenario": "lambda-floor", "points": len(points), "best_seconds": round(best, 4),
            "points_per_second": int(len(points) / best)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    healthy = _points(args.points, alerting=False)
    print(json.dumps(_measure("healthy", healthy, args.repeat, "")))
    print(json.dumps(_measure("alerting", _points(args.points, alerting=True), args.repeat, "")))
    print(json.dumps(_measure("grouped", healthy, args.repeat, "\n        .groupBy('host')")))
    print(json.dumps(_floor(healthy, args.repeat)))


if __name__ == "__main__":
    main()
