"""Runs google-cloud-bigquery's system tests (tests/system of googleapis/python-bigquery)
unmodified against the local BigQuery: `make conformance`.

The suite's source: CONFORMANCE_SRC, a python-bigquery checkout or git repository (a bare
mirror works: its tests/ are extracted with git archive). Without it, the mirror beside
this checkout (../.mirror/googleapis+python-bigquery/repo) if there is one. Not part of
`make test`: CI has no copy of that repository.

    python tests/conformance/run.py [--jobs N] [--timeout S] [pytest args, e.g. node ids]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MIRROR = REPO.parent / ".mirror" / "googleapis+python-bigquery" / "repo"
EXTRACTED = REPO / "build" / "conformance" / "python-bigquery"


def suite_root() -> Path:
    """A folder holding python-bigquery's tests/ (system tests and their data)."""
    given = os.environ.get("CONFORMANCE_SRC")
    source = Path(given).expanduser() if given else MIRROR
    if not source.exists():
        sys.exit("make conformance needs google-cloud-bigquery's system tests: "
                 "git clone https://github.com/googleapis/python-bigquery and run "
                 "`make conformance CONFORMANCE_SRC=<that folder>`"
                 + (f" ({given} does not exist)" if given else ""))
    if (source / "tests" / "system").is_dir():
        return source  # a checkout with a work tree
    # A git repository without a work tree (a bare mirror): extract tests/ from HEAD.
    shutil.rmtree(EXTRACTED, ignore_errors=True)
    EXTRACTED.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(source), "archive", "HEAD", "tests"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(EXTRACTED)], input=archive, check=True)
    return EXTRACTED


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", "-j", type=int, default=2, help="pytest-xdist workers")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds for the whole run")
    args, pytest_args = parser.parse_known_args()
    root = suite_root()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    # The suite's own package is also called `tests`: run from its root with the pytest
    # script (not `python -m`), so this checkout's tests package is not on sys.path.
    command = [str(Path(sys.executable).parent / "pytest"), "-p", "labkit_conformance",
               "-c", str(HERE / "pytest.ini"), "--rootdir", str(root),
               "-p", "no:cacheprovider", "-q", "-rfEx", "--tb=short", "--show-capture=no",
               "--disable-warnings", "-W", "default::PendingDeprecationWarning"]
    if args.jobs > 1:
        command += ["-n", str(args.jobs)]
    named = any(a.startswith("tests") for a in pytest_args)  # node ids or paths given
    command += pytest_args + ([] if named else [str(Path("tests") / "system")])
    began = time.monotonic()
    try:
        status = subprocess.run(command, cwd=root, env=env, timeout=args.timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"conformance: stopped after {args.timeout} s", file=sys.stderr)
        return 124
    print(f"conformance: {time.monotonic() - began:.0f} s with {args.jobs} worker(s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
