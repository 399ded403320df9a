"""What `fusec check` and a cold `fusec.compile` leave out to start fast (issue 12, item 8): modules
they do not need stay unimported, and the command, run as a process, spares Python's exit a pass of
the cyclic collector. The timings themselves are measured in bench/bench_models.py, not here."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

from conftest import ROOT

SOFTMAX = str(ROOT / "examples" / "03_softmax.fg")


def _modules_after(code: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.splitlines()[-1])


def test_check_loads_no_solver_verifier_or_code_generator():
    code = (
        "import sys, json\n"
        "from fusec.cli.main import main\n"
        f"status = main(['check', {SOFTMAX!r}])\n"
        "unwanted = ('scipy', 'fusec.rewrite.verify', 'fusec.interp', 'fusec.tune', 'fusec.loops', 'fusec.codegen',\n"
        "            'fusec.runtime.build')\n"
        "print(json.dumps({'status': status, 'loaded': sorted(m for m in sys.modules if m.startswith(unwanted))}))\n"
    )
    assert _modules_after(code) == {"status": 0, "loaded": []}


def test_a_cold_compile_loads_no_tuner(tmp_path):
    code = (
        "import sys, json, fusec\n"
        f"fusec.compile({SOFTMAX!r}, sizes={{'N': 16, 'D': 16}})\n"
        "unwanted = ('scipy', 'statistics', 'multiprocessing', 'fusec.tune.tuner', 'fusec.tune.jobs', 'fusec.tune.space')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(unwanted))))\n"
    )
    env = os.environ | {"FUSEC_CACHE_DIR": str(tmp_path)}  # no tuning database: nothing to look up
    assert _modules_after(code, env) == []


def test_the_command_freezes_the_collector_at_the_end_but_a_call_from_python_does_not():
    before = gc.get_freeze_count()
    from fusec.cli.main import main

    assert main(["check", SOFTMAX]) == 0
    assert gc.get_freeze_count() == before and gc.isenabled()
    code = (
        "import gc, sys, json\n"
        "from fusec.cli.main import main\n"
        f"sys.argv = ['fusec', 'check', {SOFTMAX!r}]\n"
        "status = main()\n"
        "print(json.dumps({'status': status, 'frozen': gc.get_freeze_count() > 0}))\n"
    )
    assert _modules_after(code) == {"status": 0, "frozen": True}
