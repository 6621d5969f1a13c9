"""Line-protocol parser throughput: prints one JSON object per body kind.

Run: ``.venv/bin/python bench/lineprotocol.py [--lines N] [--repeat R]``.
Never asserts times (benchmarks inform, tests decide).
"""

from __future__ import annotations

import argparse
import json
import time

from kapacity.lineprotocol import parse_lines

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


def _measure(name: str, body: bytes, lines: int, repeat: int) -> dict[str, object]:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = parse_lines(body, now_ns=0)
        best = min(best, time.perf_counter() - start)
        if len(result.points) != lines or result.errors:
            raise SystemExit(f"{name}: parsed {len(result.points)} of {lines} lines")
    return {
        "body": name,
        "lines": lines,
        "bytes": len(body),
        "best_seconds": round(best, 4),
        "lines_per_second": int(lines / best),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, template in (("typical", TYPICAL), ("unique-series", UNIQUE), ("escaped", ESCAPED)):
        print(json.dumps(_measure(name, _body(template, args.lines), args.lines, args.repeat)))


if __name__ == "__main__":
    main()
