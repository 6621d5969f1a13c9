"""Lambda evaluation speed: compiled TICKscript lambdas over one point.

Run: ``.venv/bin/python bench/tick_lambda.py [--evals N] [--repeat R]``.
Prints one JSON object per lambda (best of R runs); never asserts times.
"""

from __future__ import annotations

import argparse
import json
import time

from kapacity.tick import compile_lambda, parse_lambda

LAMBDAS = [
    '"usage_idle" < 10',
    '"usage_user" > 90.0 AND "host" == \'server-a\'',
    '"host" =~ /^server-/',
    '"usage_idle" < 10 OR "missing" > 1',
    'float("cores") / 2.0 + 1.0 > 5.0',
    'strHasPrefix("host", \'server\') AND isPresent("usage_user")',
    'sigma("usage_user") > 3.0',
    'hour("time") >= 8 AND hour("time") < 18',
]
FIELDS = {"usage_idle": 5.0, "usage_user": 93.5, "cores": 8}
TAGS = {"host": "server-a", "region": "eu"}
TIME_NS = 1_700_000_000_000_000_000


def measure(source: str, evals: int, repeat: int) -> dict[str, object]:
    fn = compile_lambda(parse_lambda(source)).new_state()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(evals):
            fn(FIELDS, TAGS, TIME_NS)
        best = min(best, time.perf_counter() - start)
    return {
        "lambda": source,
        "evals": evals,
        "evals_per_s": round(evals / best),
        "ns_per_eval": round(best / evals * 1e9, 1),
        "result": repr(fn(FIELDS, TAGS, TIME_NS)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evals", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for source in LAMBDAS:
        print(json.dumps(measure(source, args.evals, args.repeat)))


if __name__ == "__main__":
    main()
