"""Output files written through a temporary file and a rename get open()'s mode (0666 less the
umask), not mkstemp's 0600: the machine model and the proof cache."""

from __future__ import annotations

import os
import stat

import pytest

from fusec.runtime.files import current_umask, new_file_mode


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_file_mode_is_what_open_gives(tmp_path, umask_027):
    assert current_umask() == 0o027 and new_file_mode() == 0o640
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert mode(plain) == new_file_mode()


def test_machine_model_and_proof_cache_respect_the_umask(tmp_path, umask_027):
    from fusec.fusion.machine import MachineModel, save_model
    from fusec.rewrite.prove import ProofCache

    model = save_model(MachineModel(), tmp_path / "machine.json")
    assert mode(model) == 0o640
    cache = ProofCache(tmp_path / "proofs.json")
    cache.dirty = True
    cache.save()
    assert mode(tmp_path / "proofs.json") == 0o640
