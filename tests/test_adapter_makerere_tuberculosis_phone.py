"""makerere_tuberculosis_phone: covered with its siblings in tests/test_adapter_makerere_plasmodium.py
(shared base); this file checks the side-by-side layout reports nothing spurious."""
from __future__ import annotations

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConvertOptions, convert

SID = "makerere_tuberculosis_phone"


def test_side_by_side_files_are_not_reported(tmp_path):
    get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    assert not rep.inputs.of("skipped") and not rep.inputs.of("orphaned")
    assert rep.total == 7
