"""A hostile-input corpus run through the real ``kgate`` command: each case ends fast with one line.

Every case runs ``python -m kgate`` in a subprocess and must exit 1 or 2 with exactly one line on
stderr starting ``kgate:`` (no traceback), change no file in its folder (an installed roster stays
byte-identical), and end fast. On an idle machine each case ends within 2 s (the issue's bar, measured
in docs/performance.md). "Fast" is measured in CPU seconds of the child (user + system), which other
work on the cores does not stretch, not in wall-clock time: the bound is 5 s or three times ``kgate
--version``'s CPU time plus a second, whichever is larger (the console script alone takes a second
to import). The gigabyte reads these cases used to cause take minutes of CPU, so the bound still tells
them apart; a hang that burns no CPU (a FIFO, a socket) is cut by the wall-clock ``HANG``.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from terminal.badge import new_serial
from terminal.roster import load_roster

KGATE = [sys.executable, "-m", "kgate"]
HANG = 60  # wall-clock seconds before a case counts as hung (generous: the cores may be shared)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_kgate(*args: str, timeout: float = HANG) -> tuple[subprocess.CompletedProcess[str], float]:
    """The finished command and the CPU seconds it used (this test process runs one child at a time)."""
    before = _children_cpu()
    proc = subprocess.run([*KGATE, *args], capture_output=True, text=True, timeout=timeout, check=False)
    return proc, _children_cpu() - before


@pytest.fixture(scope="module")
def time_bound() -> float:
    _, startup = run_kgate("--version")
    return max(5.0, 3 * startup + 1.0)


def png(width: int, height: int, *, idat: bytes | None = None) -> bytes:
    """A grey PNG of one colour (compresses to a few hundred KB at 20000²), or one with the IDAT given."""
    if idat is None:
        packer = zlib.compressobj(1)
        row = b"\0" + b"\x80" * width
        idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("png") / "huge.png"
    path.write_bytes(png(20000, 20000))
    return path


def roster(name: str = "Әлия Қасымова", version: object = 2) -> bytes:
    doc = {
        "version": version,
        "children": [{"id": "c-1", "name": name, "group": "Күн"}],
        "badges": [{"serial": new_serial(), "child": "c-1"}],
    }
    return json.dumps(doc, ensure_ascii=False).encode()


# -- the inputs: each writes its file into a folder and returns the path to pass ---------------------
Maker = Callable[[Path], str]


def dev_zero(folder: Path) -> str:
    return "/dev/zero"


def fifo(folder: Path) -> str:
    path = folder / "fifo"
    os.mkfifo(path)  # nobody ever writes to it
    return str(path)


def directory(folder: Path) -> str:
    (folder / "dir").mkdir()
    return str(folder / "dir")


def huge(folder: Path) -> str:
    path = folder / "huge"
    with path.open("wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of zeros that cost no disk
    return str(path)


def contents(data: bytes) -> Maker:
    def make(folder: Path) -> str:
        path = folder / "input"
        path.write_bytes(data)
        return str(path)

    return make


FILE_CASES: dict[str, Maker] = {
    "dev-zero": dev_zero,
    "fifo": fifo,
    "directory": directory,
    "huge-file": huge,
    "invalid-utf8": contents(b"\xff\xfe\xc3\x28 not text"),
}
#: What each file case must be refused for (a FIFO read non-blocking would also just look empty).
FILE_MESSAGES = {
    "dev-zero": "is not a regular file",
    "fifo": "is not a regular file",
    "directory": "is not a regular file",
    "huge-file": "is larger than",
    "invalid-utf8": "is not UTF-8",
}
ROSTER_CASES: dict[str, tuple[Maker, str]] = {
    **{name: (maker, FILE_MESSAGES[name]) for name, maker in FILE_CASES.items()},
    "deep-json": (contents(b"[" * 100_000), "nested deeper"),
    "deep-json-object": (contents(b'{"a":' * 5000 + b"1" + b"}" * 5000), "nested deeper"),
    "100k-digit-version": (
        contents(roster(version=0).replace(b'"version": 0', b'"version": ' + b"9" * 100_000)),
        "digits",
    ),
    "100k-digit-float": (contents(b'{"version": 1.' + b"5" * 100_000 + b"}"), "digits"),
    "nan-version": (contents(roster().replace(b'"version": 2', b'"version": NaN')), "NaN"),
    "name-with-esc": (contents(roster("Ivan\x1b[2J")), "U+001B"),
    "name-with-bel": (contents(roster("Ivan\x07")), "U+0007"),
    "name-with-rlo": (contents(roster("\u202enavI")), "U+202E"),
    "name-with-isolate": (contents(roster("Ivan\u2066x\u2069")), "U+2066"),
    "name-with-zero-width": (contents(roster("Iv\u200ban")), "U+200B"),
}
CONFIG_CASES: dict[str, tuple[Maker, str]] = {
    **{name: (maker, FILE_MESSAGES[name]) for name, maker in FILE_CASES.items()},
    "deep-toml-array": (contents(b"a = " + b"[" * 100_000), "nested deeper"),
    "deep-toml-inline-table": (contents(b"a = " + b"{b = " * 2000 + b"1" + b"}" * 2000), "nested deeper"),
    "deep-toml-dotted-table": (contents(b"[" + b".".join([b"a"] * 5000) + b"]\n"), "nested deeper"),
    "100k-digit-int": (contents(b"[camera]\nfps = " + b"9" * 100_000 + b"\n"), "digits"),
    "100k-digit-float": (contents(b"[camera]\nfps = 1." + b"5" * 100_000 + b"\n"), "digits"),
    "toml-inf": (contents(b"[camera]\nfps = inf\n"), "not finite"),
}


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every regular file below ``folder``: size, mtime and bytes (so 'changed nothing' can be checked)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.stat().st_size < 1 << 20
    }


def assert_one_line_refusal(proc: subprocess.CompletedProcess[str], elapsed: float, bound: float) -> None:
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("kgate:") and proc.stderr.count("\n") == 1, proc.stderr
    assert elapsed < bound, f"took {elapsed:.2f} CPU seconds"


@pytest.mark.parametrize("case", sorted(ROSTER_CASES))
def test_roster_load_refuses_and_keeps_the_installed_roster(
    tmp_path: Path, case: str, time_bound: float
) -> None:
    db = tmp_path / "roster.db"
    good = tmp_path / "good.json"
    good.write_bytes(roster(version=1))
    load_roster(db, good).close()
    maker, message = ROSTER_CASES[case]
    target = maker(tmp_path)
    before = snapshot(tmp_path)

    proc, elapsed = run_kgate("roster", "load", target, "--db", str(db))

    assert_one_line_refusal(proc, elapsed, time_bound)
    assert message in proc.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["dev-zero", "fifo", "deep-json", "name-with-esc"])
def test_roster_load_creates_no_database(tmp_path: Path, case: str, time_bound: float) -> None:
    target = ROSTER_CASES[case][0](tmp_path)
    proc, elapsed = run_kgate("roster", "load", target, "--db", str(tmp_path / "new.db"))
    assert_one_line_refusal(proc, elapsed, time_bound)
    assert not list(tmp_path.glob("new.db*"))


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_terminal_check_config_refuses(tmp_path: Path, case: str, time_bound: float) -> None:
    maker, message = CONFIG_CASES[case]
    target = maker(tmp_path)
    before = snapshot(tmp_path)
    proc, elapsed = run_kgate("terminal", "run", "--check-config", "--config", target)
    assert_one_line_refusal(proc, elapsed, time_bound)
    assert message in proc.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["dev-zero", "fifo", "deep-toml-array", "100k-digit-int"])
def test_sync_config_refuses(tmp_path: Path, case: str, time_bound: float) -> None:
    target = CONFIG_CASES[case][0](tmp_path)
    before = snapshot(tmp_path)
    proc, elapsed = run_kgate("sync", "once", "--config", target)
    assert_one_line_refusal(proc, elapsed, time_bound)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_verify_checkpoint_file_refused_before_parsing(tmp_path: Path, case: str, time_bound: float) -> None:
    ledger = tmp_path / "ledger.db"
    ledger.write_bytes(b"")
    target = FILE_CASES[case](tmp_path)
    before = snapshot(tmp_path)
    proc, elapsed = run_kgate("verify", str(ledger), "--checkpoint", target)
    assert_one_line_refusal(proc, elapsed, time_bound)
    assert "checkpoint" in proc.stderr and FILE_MESSAGES[case] in proc.stderr
    assert snapshot(tmp_path) == before


IMAGE_CASES: dict[str, tuple[bytes, str]] = {
    # The header says 5000x5000, the data holds one row: the libpng of OpenCV printed its own lines.
    "lying-png-header": (png(5000, 5000, idat=zlib.compress(b"\0" + b"\x80" * 100)), "not a readable image"),
    "truncated-png": (png(64, 64)[:60], "not a readable image"),
    "claims-4-gigapixels": (png(65535, 65535, idat=b""), "more than the 40,000,000 pixels"),
    "not-an-image": (b"GIF89a" + b"\0" * 10, "not a readable image"),
}


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_scan_refuses_bad_images_with_one_line(tmp_path: Path, case: str, time_bound: float) -> None:
    data, message = IMAGE_CASES[case]
    image = tmp_path / "bad.png"
    image.write_bytes(data)
    proc, elapsed = run_kgate("scan", str(image))
    assert_one_line_refusal(proc, elapsed, time_bound)
    assert proc.stderr.startswith(f"kgate: error: {image}: ") and message in proc.stderr


@pytest.mark.parametrize("case", ["dev-zero", "fifo"])
def test_scan_refuses_special_files(tmp_path: Path, case: str, time_bound: float) -> None:
    proc, elapsed = run_kgate("scan", FILE_CASES[case](tmp_path))
    assert_one_line_refusal(proc, elapsed, time_bound)
    assert "not a regular file" in proc.stderr


def test_scan_refuses_a_20000_square_png_by_its_header_fast_and_small(
    huge_png: Path, time_bound: float
) -> None:
    """The issue's bar: ends within 2 s (CPU) using < 200 MB (the full decode took 2.4 GB)."""
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(p.returncode, u.ru_utime + u.ru_stime, u.ru_maxrss)\n"
        "sys.stderr.write(p.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, *KGATE, "scan", str(huge_png)],
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    status, seconds, max_rss_kib = proc.stdout.split()
    assert status == "1"
    assert proc.stderr == f"kgate: error: {huge_png}: has more than the 40,000,000 pixels a frame may have\n"
    assert float(seconds) < time_bound
    assert int(max_rss_kib) < 200 * 1024


def test_a_closed_pipe_ends_quietly() -> None:
    """``kgate --help | head -c0``: exit 141 (128 + SIGPIPE, as a shell reports for cat), no traceback."""
    proc = subprocess.Popen([*KGATE, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read()
    assert proc.wait(timeout=HANG) == 141
    assert err == b""
