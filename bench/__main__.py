"""make bench: every bench/bench_*.py module's run() -> rows, printed and saved.

A row is a dict: name, value, unit, and where it applies baseline (the direct engine
measured in the same run), ratio (value / baseline) and target (a ratio or value).
Benchmarks report; they never fail the build.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    os.environ.setdefault("LAB_WORKSPACE", str(ROOT / "build" / "bench-workspace"))
    only = sys.argv[1:]
    rows = []
    for path in sorted((ROOT / "bench").glob("bench_*.py")):
        if only and not any(o in path.stem for o in only):
            continue
        module = importlib.import_module(f"bench.{path.stem}")
        print(f"== {path.stem}", flush=True)
        for row in module.run():
            rows.append({"suite": path.stem, **row})
            print(_format(row), flush=True)
    out = ROOT / "build" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"\n{len(rows)} measurements written to {out.relative_to(ROOT)}")


def _format(row: dict) -> str:
    text = f"  {row['name']:<60} {row['value']:>10.4g} {row.get('unit', '')}"
    if row.get("baseline") is not None:
        text += f"  (direct: {row['baseline']:.4g}, ratio {row['value'] / row['baseline']:.2f}x)"
    if row.get("target"):
        text += f"  target: {row['target']}"
    return text


if __name__ == "__main__":
    main()
