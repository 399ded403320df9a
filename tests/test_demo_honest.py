"""`fusec demo` times with fusec bench's protocol and states the machine's load next to the figures."""

from __future__ import annotations

from fusec.bench.protocol import Settings
from fusec.cli import demo


def runners():
    return {"interp (one NumPy call per op)": lambda: sum(range(2000)), "c backend (1 kernel)": lambda: sum(range(20))}


def test_busy_machine_is_stated_next_to_the_figures(monkeypatch, capsys):
    monkeypatch.setattr(demo, "load_average", lambda: (9.0, 8.0, 7.0))
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 2)
    demo.print_timings(runners(), Settings(repeats=3))
    out = capsys.readouterr().out
    assert "machine: 2 cores, load average 9.0  <- BUSY" in out
    figures = [line for line in out.splitlines() if line.rstrip().endswith("x  (busy)")]
    assert len(figures) == 2, out
    assert "ratios carry over" in out and "The machine was busy (load average 9.0 on 2 cores)" in out


def test_quiet_machine_and_a_slower_path_is_explained(monkeypatch, capsys):
    monkeypatch.setattr(demo, "load_average", lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 4)
    slow = {"interp (one NumPy call per op)": lambda: None, "c backend (1 kernel)": lambda: sum(range(20000))}
    demo.print_timings(slow, Settings(repeats=3))
    out = capsys.readouterr().out
    assert "(quiet)" in out and "(busy)" not in out and "BUSY" not in out
    assert "Slower than the interpreter here: c backend (1 kernel)" in out
