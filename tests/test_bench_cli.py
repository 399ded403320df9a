"""`fusec bench`: one protocol for every path, correctness first, peers skipped cleanly when absent."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT

from fusec.bench import peers, protocol
from fusec.bench.timing import Timing, time_calls
from fusec.cli.main import main
from fusec.frontend import load
from fusec.inputs import random_inputs
from fusec.interp import interpret
from fusec.tolerance import compare_output

GELU = str(ROOT / "examples" / "02_gelu.fg")
TINY = ["--set", "N=32", "--set", "M=32", "--repeats", "2"]


def bench_json(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["bench", *args, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_json_gives_every_path_a_median_a_speedup_and_a_share_of_bandwidth(capsys):
    code, report, err = bench_json(capsys, GELU, "--quick", "--peers", "none", *TINY)
    assert code == 0
    (f,) = report["files"]
    assert f["sizes"] == {"N": 32, "M": 32} and f["triad_gbs"] > 0
    assert f["bytes_unfused"] > f["bytes_fused"] > 0  # gelu written op by op: nine kernels unfused, one fused
    paths = f["paths"]
    assert paths["interp"]["speedup_vs_unfused"] == pytest.approx(1.0)
    assert paths["interp"]["kernels"] == 9
    for name in ("interp", "numpy", "numpy+out", "c", "c+out"):
        p = paths[name]
        assert p["status"] == "ok", (name, p["status"])
        assert p["median_ms"] > 0 and p["spread_ms"] >= 0 and p["repeats"] == 2
        assert p["speedup_vs_unfused"] > 0 and p["gbps"] > 0 and p["pct_of_bandwidth"] > 0
        assert p["predicted_ms"] > 0
    assert paths["numpy+out"]["outputs"] == "caller" and paths["numpy"]["outputs"] == "fresh"
    assert paths["c"]["kernels"] == 1
    assert paths["c-tuned"]["status"] == "ok" or paths["c-tuned"]["status"].startswith("skipped")
    machine = report["machine"]
    assert machine["cores"] >= 1 and machine["versions"]["numpy"] == np.__version__
    assert len(machine["load_before"]) == 3 and "load_warning" in machine
    assert [k["name"] for k in f["kernels"]] == ["gelu_k0"] and f["kernels"][0]["measured_ms"] > 0


def test_text_report_names_the_machine_and_the_columns(capsys):
    assert main(["bench", GELU, "--backend", "c", "--peers", "none", *TINY]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "compiler: " in out and "load average: before" in out
    assert "median ms" in out and "% triad" in out and "predicted ms" in out
    assert "\n  c+out " in out and "numpy" not in out.split("path")[1].split("spread:")[0]


def test_markdown_and_plot_are_written(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    md, png = tmp_path / "bench.md", tmp_path / "roofline.png"
    code = main(["bench", GELU, "--backend", "c", "--peers", "none", "--markdown", str(md), "--plot", str(png), *TINY])
    assert code == 0
    text = md.read_text()
    assert "| path | outputs | median ms |" in text and "| c+out | caller |" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(capsys, monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["bench", GELU, "--plot", str(tmp_path / "x.png"), *TINY]) == 2
    assert "fusec[plot]" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_absent_peers_are_skipped_not_failed(capsys, monkeypatch):
    monkeypatch.setattr(peers, "installed", lambda peer: False)
    code, report, err = bench_json(capsys, GELU, "--backend", "c", "--peers", "torch,jax", *TINY)
    assert code == 0
    paths = report["files"][0]["paths"]
    assert paths["torch"]["status"] == "skipped: not installed"
    assert paths["jax"]["status"] == "skipped: not installed"
    assert paths["torch"]["median_ms"] is None


def test_a_wrong_path_is_reported_and_not_timed(capsys, monkeypatch):
    real = protocol.build_program

    class OffByOne:  # a numpy-backend program whose every result is 1 too large
        def __init__(self, program):
            self.program = program

        def __getattr__(self, name):
            return getattr(self.program, name)

        def __call__(self, *xs, out=None):
            y = self.program(*xs, out=out)
            y += 1
            return y

    monkeypatch.setattr(protocol, "build_program", lambda g, v: OffByOne(real(g, v)) if v == "numpy" else real(g, v))
    code, report, err = bench_json(capsys, GELU, "--backend", "numpy,c", "--peers", "none", *TINY)
    assert code == 1
    paths = report["files"][0]["paths"]
    for name in ("numpy", "numpy+out"):
        assert paths[name]["status"].startswith("wrong: output 'y'"), paths[name]["status"]
        assert paths[name]["median_ms"] is None
    assert paths["c"]["status"] == "ok" and paths["c+out"]["status"] == "ok"
    assert "numpy: wrong" in err


@pytest.mark.parametrize(
    "args, message",
    [
        ([GELU, "--peers", "tensorflow"], "unknown peer 'tensorflow'"),
        ([GELU, "--backend", "cuda"], "unknown backend 'cuda'"),
        (["examples/nope.fg"], "no such file"),
        ([GELU, "--set", "Q=4"], "--set Q"),
        ([GELU, "--repeats", "0"], "--repeats must be at least 1"),
    ],
)
def test_user_errors_exit_2_without_a_traceback(capsys, args, message):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_quick_sizes_shrink_within_what_the_graph_allows():
    sizes = protocol.quick_sizes(GELU, {})
    g = load(GELU, sizes=sizes)
    assert max(g.type_of(n).size for n in g.nx.nodes) <= protocol.QUICK_ELEMENTS
    block = ROOT / "examples" / "09_transformer_block.fg"
    sizes = protocol.quick_sizes(block, {})
    load(block, sizes=sizes)  # still a valid graph: D = H * Dh is kept
    assert sizes["S"] < 512 and "D" not in sizes
    assert protocol.quick_sizes(GELU, {"N": 8})["N"] == 8  # --set is never changed


def test_timing_reports_median_and_interquartile_spread():
    t = Timing((5.0, 1.0, 2.0, 4.0, 3.0))
    assert t.median == 3.0 and t.q1 == 2.0 and t.q3 == 4.0 and t.spread == 2.0
    calls = []
    timing = time_calls(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and len(timing.samples) == 4


def test_numexpr_translation_is_mechanical_and_names_what_it_lacks():
    softmax = load(ROOT / "examples" / "03_softmax.fg")
    assert peers.missing_ops(softmax, peers.numexpr_ops()) == ["max", "sum"]
    assert peers.missing_ops(load(GELU), peers.numexpr_ops()) == []


def _tiny(stem: str):
    path = ROOT / "examples" / f"{stem}.fg"
    small = {"N": 64, "M": 48, "D": 32, "B": 8, "K": 16, "F": 24, "H": 2, "S": 16, "Dh": 8}
    dims = load(path).dims
    if "D" in dims and "H" in dims:
        small["D"] = small["H"] * small["Dh"]
    return load(path, sizes={k: v for k, v in small.items() if k in dims})


EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.fg"))


@pytest.mark.parametrize("stem", EXAMPLES)
def test_torch_translation_matches_the_interpreter(stem):
    torch = pytest.importorskip("torch")
    g = _tiny(stem)
    xs = random_inputs(g)
    got = peers.evaluate(g, peers.torch_ops(torch), [torch.from_numpy(x) for x in xs], lambda v, node: v)
    want = interpret(g, *xs)
    for name, a, e in zip(g.outputs, got, want if isinstance(want, tuple) else (want,)):
        assert compare_output(g, name, a.numpy(), e) is None


@pytest.mark.parametrize("stem", EXAMPLES)
def test_jax_translation_matches_the_interpreter(stem):
    jax = pytest.importorskip("jax")
    g = _tiny(stem)
    xs = random_inputs(g)
    got = peers.evaluate(g, peers.jax_ops(jax), xs, lambda v, node: v)
    want = interpret(g, *xs)
    for name, a, e in zip(g.outputs, got, want if isinstance(want, tuple) else (want,)):
        assert compare_output(g, name, np.asarray(a), e) is None
