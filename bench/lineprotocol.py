"""Line-protocol parser throughput: prints one JSON object per body kind and implementation.

``impl``: ``native`` is the C fast path (``kapacity._native.lineproto``, when built),
``pure`` its pure-Python twin. ``lines_per_cpu_second`` uses the thread's CPU time, which
other processes on the machine disturb less than the wall clock.

Run: ``.venv/bin/python bench/lineprotocol.py [--lines N] [--repeat R]``.
Never asserts times (benchmarks inform, tests decide).
"""

from __future__ import annotations

import argparse
import json
import time

from kapacity.lineprotocol import _parse, parse_lines

# 100 series, as a Telegraf batch from 100 hosts would carry.
TYPICAL = (
    "cpu,host=server{h:02d},region=us-west usage_idle=12.5,usage_user=80i "
    "17000000000{i:08d}"
)
# Every line a new series: no series key is parsed twice.
UNIQUE = (
    "cpu,host=server{i:08d},region=us-west usage_idle=12.5,usage_user=80i "
    "17000000000{i:08d}"
)
# Escapes and a quoted string send every line through the exact scanner.
ESCAPED = (
    'cpu,host=server\\ {h:02d},region=us-west usage_idle=12.5,msg="a \\"b\\"" '
    "17000000000{i:08d}"
)


def _body(template: str, lines: int) -> bytes:
    return "\n".join(template.format(i=i % 100_000_000, h=i % 100) for i in range(lines)).encode()


def _measure(name: str, impl: str, body: bytes, lines: int, repeat: int) -> dict[str, object]:
    best = best_cpu = float("inf")
    for _ in range(repeat):
        _parse._KEYS.clear()  # every repeat starts as cold as a fresh server
        start, cpu = time.perf_counter(), time.thread_time()
        result = parse_lines(body, now_ns=0)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.thread_time() - cpu)
        if len(result.points) != lines or result.errors:
            raise SystemExit(f"{name}: parsed {len(result.points)} of {lines} lines")
        del result
    return {
        "body": name,
        "impl": impl,
        "lines": lines,
        "bytes": len(body),
        "best_seconds": round(best, 4),
        "lines_per_second": int(lines / best),
        "lines_per_cpu_second": int(lines / max(best_cpu, 1e-9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    native = _parse._LINEPROTO
    impls = [("native", native), ("pure", None)] if native is not None else [("pure", None)]
    for name, template in (("typical", TYPICAL), ("unique-series", UNIQUE), ("escaped", ESCAPED)):
        body = _body(template, args.lines)
        for impl, module in impls:
            _parse._LINEPROTO = module
            try:
                print(json.dumps(_measure(name, impl, body, args.lines, args.repeat)))
            finally:
                _parse._LINEPROTO = native


if __name__ == "__main__":
    main()
