"""pytest-benchmark suites: reduced sizes by default, the examples' full sizes on demand.

    pytest bench/ --benchmark-only                      # reduced sizes: a few minutes
    pytest bench/ --benchmark-only --bench-full         # the examples' own sizes (or FUSEC_BENCH_FULL=1)

The files are named bench_*.py, so this conftest tells pytest to collect them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_addoption(parser):
    parser.addoption("--bench-full", action="store_true", help="benchmark the examples at their full default sizes")


def pytest_configure(config):
    if config.getoption("--bench-full"):
        os.environ["FUSEC_BENCH_FULL"] = "1"


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_report_header(config):
    from c_harness import full_sizes

    return "fusec benchmarks at " + ("full example sizes" if full_sizes() else "reduced sizes (--bench-full for the full ones)")
