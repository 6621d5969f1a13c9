"""Go-template render throughput on a Kapacitor alert: prints one JSON object.

Run: ``.venv/bin/python bench/gotmpl_render.py [--renders N]``.
Never asserts times (benchmarks inform, tests decide).
"""

from __future__ import annotations

import argparse
import json
import time

from kapacity.alert.event import AlertData, Result, Series
from kapacity.gotmpl import parse
from kapacity.gotypes import Duration, Level, Time

TEMPLATE = (
    '{{ .ID }} is {{ .Level }} value={{ index (index .Data.Series 0).Values 0 1 }}'
    ' host={{ index (index .Data.Series 0).Tags "host" }}'
)


def _alert() -> AlertData:
    series = Series(
        name="cpu",
        tags={"host": "server01"},
        columns=["time", "value"],
        values=[[Time(1_700_000_000_000_000_000), 91.5]],
    )
    return AlertData(
        id="cpu:host=server01",
        message="",
        details="",
        time=Time(1_700_000_000_000_000_000),
        duration=Duration(0),
        level=Level.CRITICAL,
        data=Result(series=[series]),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--renders", type=int, default=50_000)
    args = ap.parse_args()
    alert = _alert()
    started = time.perf_counter()
    tmpl = parse(TEMPLATE, "message")
    parse_s = time.perf_counter() - started
    out = tmpl.execute(alert)
    started = time.perf_counter()
    for _ in range(args.renders):
        tmpl.execute(alert)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "template": TEMPLATE,
                "output": out,
                "renders": args.renders,
                "renders_per_s": round(args.renders / elapsed),
                "parse_us": round(parse_s * 1e6, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
