"""`kgate.bounded.read_limited`: a file of exactly the cap is read whole; one byte more is refused.

Both ways a size is learnt are covered: ``fstat`` (a plain file) and counting the bytes read (a
``/proc`` file, whose ``st_size`` is 0 whatever it holds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kgate.bounded import KiB, read_limited
from kgate.errors import InputError


@pytest.mark.parametrize("limit", [1, 4 * KiB, 64 * KiB + 7])
def test_a_file_of_exactly_the_cap_is_read_and_one_byte_more_is_refused(tmp_path: Path, limit: int) -> None:
    path = tmp_path / "input"
    data = bytes(i % 251 for i in range(limit))
    path.write_bytes(data)
    assert read_limited(path, limit, "test file") == data
    assert read_limited(path, limit + 1, "test file") == data
    with pytest.raises(InputError, match=r"^test file .* is larger than"):
        read_limited(path, limit - 1, "test file")


def test_the_cap_holds_when_the_size_is_learnt_by_reading() -> None:
    proc = Path("/proc/self/cmdline")  # this process's: the same bytes every read, st_size 0
    if not proc.exists() or proc.stat().st_size != 0:
        pytest.skip("needs Linux /proc")
    data = proc.read_bytes()
    assert len(data) > 1
    assert read_limited(proc, len(data)) == data
    with pytest.raises(InputError, match=r"is larger than"):
        read_limited(proc, len(data) - 1)
