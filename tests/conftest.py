"""Shared test setup: small sizes for every example, and an isolated kernel cache per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.fg"))

# Small sizes for each example, so tests run in milliseconds; benchmarks use the defaults.
SMALL_SIZES = {
    "chain": {"N": 33, "M": 47},
    "gelu": {"N": 31, "M": 64},
    "softmax": {"N": 17, "D": 129},
    "layernorm": {"N": 19, "D": 96},
    "rmsnorm": {"N": 23, "D": 80},
    "mlp": {"B": 21, "K": 37, "F": 70},
    "adam": {"N": 1001},
    "attention": {"H": 2, "S": 19, "Dh": 8},
    "transformer_block": {"S": 13, "D": 24, "H": 3, "Dh": 8, "F": 40},
    "rotary": {"S": 13, "H": 3, "Dh": 8},
}


def small_sizes(path: Path) -> dict[str, int]:
    for word, sizes in SMALL_SIZES.items():
        if word in path.stem:
            return sizes
    raise KeyError(f"no small sizes for {path.name}: add them to tests/conftest.py")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Compiled kernels go to a per-session temp dir, never the user's cache."""
    if "FUSEC_CACHE_DIR" not in os.environ:
        os.environ["FUSEC_CACHE_DIR"] = str(tmp_path_factory.mktemp("fusec-cache"))
    yield
