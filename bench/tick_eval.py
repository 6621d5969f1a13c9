"""Task throughput: pre-parsed points through a TICKscript alert pipeline, in one process.

Run: ``.venv/bin/python bench/tick_eval.py [--points N] [--repeat R]``.
Prints one JSON object per scenario (median of R runs, and the best run), then a summary
line comparing the healthy pipeline with the lambda floor measured in the same run; never
asserts times (benchmarks inform, tests decide). The machine may be shared and noisy: read
medians, and compare figures from one run only.

Pipeline (three level lambdas, as in the issue)::

    stream|from().measurement('cpu')|where(lambda: "host" != 'x')
        |alert().info(…).warn(…).crit(…)

Scenarios: ``healthy`` (every point OK: the common case, no event rendered),
``healthy-unfused`` (the same through the node-by-node graph, without the fused fast path
of :mod:`kapacity.pipeline.fused`), ``alerting``
(every 100th point crosses a level: events are rendered and collected), ``grouped`` (as
healthy, with ``|groupBy('host')`` on from()), and ``lambda-floor``: only the four compiled
lambdas called per point, no pipeline, the ceiling the pipeline's overhead is measured against.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from kapacity.models import Point
from kapacity.pipeline import build_task
from kapacity.tick import compile_lambda, parse_lambda

#: The issue's goal for the healthy scenario, in one process.
TARGET = 1_000_000

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


def _stats(name: str, n: int, times: list[float], **extra: object) -> dict[str, object]:
    med = statistics.median(times)
    return {
        "scenario": name,
        "points": n,
        **extra,
        "runs": len(times),
        "median_seconds": round(med, 4),
        "points_per_second": int(n / med),
        "best_points_per_second": int(n / min(times)),
    }


def _measure(name: str, points: list[Point], repeat: int, group: str, fused: bool = True) -> dict[str, object]:
    times = []
    events = 0
    for _ in range(repeat):
        task = build_task(SCRIPT.format(group=group), task_name="bench", fused=fused)
        start = time.perf_counter()
        events = len(task.process_many(points))
        times.append(time.perf_counter() - start)
    return _stats(name, len(points), times, events=events, fused=bool(task.graph.fused))


def _floor(points: list[Point], repeat: int) -> dict[str, object]:
    a, b, c, d = (compile_lambda(parse_lambda(src), predicate=True).fn for src in LAMBDAS)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for p in points:
            f, tg, t = p.fields, p.tags, p.time
            a(f, tg, t)
            d(f, tg, t)
            c(f, tg, t)
            b(f, tg, t)
        times.append(time.perf_counter() - start)
    return _stats("lambda-floor", len(points), times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    healthy = _points(args.points, alerting=False)
    results = [
        _measure("healthy", healthy, args.repeat, ""),
        _measure("healthy-unfused", healthy, args.repeat, "", fused=False),
        _measure("alerting", _points(args.points, alerting=True), args.repeat, ""),
        _measure("grouped", healthy, args.repeat, "\n        .groupBy('host')"),
        _floor(healthy, args.repeat),
    ]
    for r in results:
        print(json.dumps(r))
    by_name = {r["scenario"]: r["points_per_second"] for r in results}
    healthy_pps, floor_pps = by_name["healthy"], by_name["lambda-floor"]
    assert isinstance(healthy_pps, int) and isinstance(floor_pps, int)
    print(json.dumps({
        "summary": "median points/s",
        "healthy": healthy_pps,
        "lambda_floor": floor_pps,
        "healthy_over_floor": round(healthy_pps / floor_pps, 3),
        "target": TARGET,
        "target_met": healthy_pps >= TARGET,
    }))


if __name__ == "__main__":
    main()
