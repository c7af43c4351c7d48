"""make bench: every bench/bench_*.py module's run(smoke) -> rows, printed and saved.

    python -m bench [NAME ...]      the suites whose module name contains a NAME (default: all)
    python -m bench --smoke         tiny sizes, one repetition, on a fresh workspace of its own

A row is a dict: name, value, unit, and where it applies baseline (the direct engine
measured in the same run), ratio (value / baseline) and target (a ratio or value).
Targets are reported, never asserted: timings do not fail the build. A suite that raises
does: it is reported (traceback, then FAILED in the table), the other suites still run,
and the exit status is 1.

Smoke mode (--smoke, or BENCH_SMOKE=1; `make bench-smoke`, part of `make test`) runs
every suite with tiny sizes so that a benchmark broken by a change fails the build. It
wipes its workspace first (--workspace, default a new temporary folder; never
LAB_WORKSPACE, which may be a learner's) and stops that workspace's services at the end.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE_SUITE_TIMEOUT_S = 300  # a hung suite in smoke mode dumps its stacks and exits 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("only", nargs="*", metavar="NAME",
                        help="run only the suites whose module name contains a NAME")
    parser.add_argument("--smoke", action="store_true",
                        default=os.environ.get("BENCH_SMOKE", "") not in ("", "0"),
                        help="tiny sizes, one repetition, fresh workspace (also BENCH_SMOKE=1)")
    parser.add_argument("--workspace", type=Path,
                        help="smoke mode's workspace, wiped first (default: a new temporary "
                             "folder, removed at the end)")
    args = parser.parse_args(argv)

    suites = [p.stem for p in sorted((ROOT / "bench").glob("bench_*.py"))
              if not args.only or any(o in p.stem for o in args.only)]
    if not suites:
        parser.error(f"no suite matches {' '.join(args.only)}")

    workspace, temporary = None, False
    if args.smoke:
        temporary = args.workspace is None
        workspace = (Path(tempfile.mkdtemp(prefix="bench-smoke-")) if temporary
                     else args.workspace.resolve())
        _stop_services(workspace)
        if workspace.exists():
            shutil.rmtree(workspace)  # fresh, or not at all
        workspace.mkdir(parents=True)
        os.environ["LAB_WORKSPACE"] = str(workspace)
    else:
        os.environ.setdefault("LAB_WORKSPACE", str(ROOT / "build" / "bench-workspace"))
    print(f"bench{' (smoke)' if args.smoke else ''}: {len(suites)} suites, workspace "
          f"{os.environ['LAB_WORKSPACE']}", flush=True)

    results = []
    started = time.perf_counter()
    try:
        for suite in suites:
            results.append(_run_suite(suite, args.smoke))
    finally:
        if workspace is not None:
            _stop_services(workspace)
            if temporary:
                shutil.rmtree(workspace, ignore_errors=True)
    total_s = time.perf_counter() - started

    print(_table(results, args.smoke, total_s), flush=True)
    out = ROOT / "build" / ("bench-smoke.json" if args.smoke else "bench.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps([{"suite": r["suite"], **row} for r in results
                               for row in r["rows"]], indent=2) + "\n")
    failed = [r["suite"] for r in results if r["error"]]
    print(f"\n{sum(len(r['rows']) for r in results)} measurements written to "
          f"{out.relative_to(ROOT)}; {len(results) - len(failed)}/{len(results)} suites ran "
          f"in {total_s:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _run_suite(suite: str, smoke: bool) -> dict:
    print(f"== {suite}", flush=True)
    if smoke:
        faulthandler.dump_traceback_later(SMOKE_SUITE_TIMEOUT_S, exit=True)
    started = time.perf_counter()
    rows, error = [], None
    try:
        module = importlib.import_module(f"bench.{suite}")
        for row in module.run(smoke=smoke):
            _check(row)
            rows.append(row)
            print(_format(row), flush=True)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # even a suite calling sys.exit must not end the run
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        print(f"!! {suite} FAILED after {time.perf_counter() - started:.1f} s", flush=True)
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        if smoke:
            faulthandler.cancel_dump_traceback_later()
    seconds = time.perf_counter() - started
    print(f"== {suite}: {'FAILED' if error else 'ok'} in {seconds:.1f} s", flush=True)
    return {"suite": suite, "rows": rows, "error": error, "seconds": seconds}


def _stop_services(workspace: Path) -> None:
    if not (workspace / "services.json").exists():
        return
    from labkit.services import daemon
    from labkit.workspace import Workspace

    try:
        daemon.stop(Workspace(workspace))
    except Exception as exc:  # never hides the suites' own result
        print(f"!! could not stop the services of {workspace}: {exc}", file=sys.stderr)


def _check(row: dict) -> None:
    """A row the table can print: a bench that returns garbage is broken, not slow."""
    missing = {"name", "value"} - row.keys()
    if missing:
        raise ValueError(f"bench row without {', '.join(sorted(missing))}: {row}")
    for key in ("value", "baseline"):
        if row.get(key) is not None and not isinstance(row[key], int | float):
            raise TypeError(f"bench row {row['name']!r}: {key} is {row[key]!r}, not a number")


def _ratio(row: dict) -> float | None:
    baseline = row.get("baseline")
    return row["value"] / baseline if baseline else None


def _format(row: dict) -> str:
    text = f"  {row['name']:<60} {row['value']:>10.4g} {row.get('unit', '')}"
    if (ratio := _ratio(row)) is not None:
        text += f"  (direct: {row['baseline']:.4g}, ratio {ratio:.2f}x)"
    if row.get("target"):
        text += f"  target: {row['target']}"
    return text


def _table(results: list[dict], smoke: bool, total_s: float) -> str:
    """One table of every suite's rows: numbers first, so long names do not break columns."""
    header = ("suite", "value", "unit", "direct", "ratio", "target", "measurement")
    lines = []
    for r in results:
        suite = r["suite"].removeprefix("bench_")
        for row in r["rows"]:
            ratio = _ratio(row)
            lines.append((suite, f"{row['value']:.4g}", row.get("unit", ""),
                          "-" if row.get("baseline") is None else f"{row['baseline']:.4g}",
                          "-" if ratio is None else f"{ratio:.2f}x", row.get("target") or "",
                          row["name"]))
        if r["error"]:
            lines.append((suite, "FAILED", "", "", "", "", r["error"]))
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header) - 1)]
    align = ["<", ">", "<", ">", ">", "<"]

    def fmt(line):
        cells = [f"{c:{a}{w}}" for c, a, w in zip(line, align, widths, strict=False)]
        return "  ".join(cells + [line[-1]])

    title = (f"bench {'smoke (tiny sizes: the numbers mean nothing) ' if smoke else ''}"
             f"results, {total_s:.0f} s; ratio = value / direct (the engine called directly, "
             f"same run)")
    rule = "-" * min(160, len(fmt(header)))
    suites = ", ".join(f"{r['suite'].removeprefix('bench_')} {r['seconds']:.0f} s"
                       for r in results)
    return "\n".join(["", title, rule, fmt(header), rule, *map(fmt, lines), rule,
                      f"suite wall times: {suites}"])


if __name__ == "__main__":
    sys.exit(main())
