"""Fixtures shared by the whole suite."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

import hypothesis
import pytest

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# Hypothesis fails an example that takes longer than its deadline (200 ms by default): wall-clock time,
# which a loaded machine stretches. No property here is about speed, so no deadline anywhere.
hypothesis.settings.register_profile("kgate", deadline=None)
hypothesis.settings.load_profile("kgate")

# Ports for servers the tests start: below Linux's ephemeral range (32768-60999), so no outgoing
# connection can take one, and a separate block per pytest-xdist worker, so two workers never pick the
# same port (a register restarted on "its" port cannot find it taken by the other worker).
_PORT_BLOCK = 1000
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_first = 20000 + _PORT_BLOCK * (int(_worker) % 12 if _worker.isdigit() else 0)
_ports = itertools.cycle(range(_first, _first + _PORT_BLOCK))


@pytest.fixture(autouse=True)
def _no_stale_log_handlers() -> Iterator[None]:
    """Drop the plain StreamHandlers a command's ``logging.basicConfig`` left on the root logger.

    They write to the test's captured stream, which is closed once the test ends: every later warning
    in this worker would print a "--- Logging error ---" traceback to stderr. (pytest's own capture
    handlers are subclasses and stay.)
    """
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h) is logging.StreamHandler]:
        root.removeHandler(handler)


def free_port() -> int:
    """A loopback TCP port nobody listens on, from this worker's own block."""
    for _ in range(_PORT_BLOCK):
        port = next(_ports)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this worker's block")


def shared_path(*parts: str) -> Path:
    """A path inside ``../shared`` (or ``$KGATE_SHARED``); skips the test with a reason if absent."""
    base = Path(os.environ.get("KGATE_SHARED", ROOT.parent / "shared"))
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (the project's ../shared folder is absent)")
    return path


@pytest.fixture
def shared() -> type[object]:
    """Gives tests ``shared("data", "vectors", ...)`` as a callable."""
    return shared_path  # type: ignore[return-value]


SMALL_LEDGER_ORIGIN = "reg.example/kgate/fixture"


@pytest.fixture(scope="session")
def small_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed device ledger of 100 entries of every kind (retained checkpoints at 16, 32, ...).

    Session-scoped and read-only: tests that change it work on a copy (``shutil.copy`` the database
    and ``device.key`` beside it). Building it takes well under a second, unlike a demo run.
    """
    from ledger.clock import FakeClock
    from ledger.store import open_ledger

    db = tmp_path_factory.mktemp("small-ledger") / "ledger.db"
    with open_ledger(db, origin=SMALL_LEDGER_ORIGIN, clock=FakeClock(1_790_000_000_000)) as ledger:
        ledger.append("boot", evidence={"software": "fixture"})
        ledger.append("roster", roster_version=1)
        for i in range(2, 100):
            if i % 10 == 3:
                ledger.append("rejected", reason="unknown badge", evidence={"payload": b"\x00"})
            elif i % 10 == 7:
                ledger.append("correction", child=f"C{i % 13}", ref=i - 1, reason="wrong child")
            else:
                kind = "in" if i % 2 else "out"
                ledger.append(kind, child=f"C{i % 13}", method="qr", evidence={"distance_milli": i})
        assert ledger.size == 100
    return db


# Readiness: a test waits for a signal (a line printed, a file appearing, a size reached, READY=1), never
# for a fixed time, and gives up only after a deadline generous enough for a loaded 2-core machine (the
# suite shares its cores with other work). When the deadline passes the test fails with one sentence
# that names what it waited for. See docs/testing.md, "On a loaded machine".
READY_S = 60.0


def wait_until(
    condition: Callable[[], T | Literal[False] | None],
    what: str,
    timeout: float = READY_S,
    interval: float = 0.01,
) -> T:
    """Poll ``condition`` until it returns a true value (returned); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"readiness deadline passed: {what} not within {timeout:g} s", pytrace=False)
        time.sleep(interval)


class LineReader:
    """A subprocess's stdout read line by line in a thread, so a test can wait for lines with a deadline.

    ``proc`` must have been started with ``stdout=subprocess.PIPE, text=True``. The thread stops at
    end of file (the process exited or was killed).
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines: list[str] = []
        self.ended = False
        self._cond = threading.Condition()
        self._stream = proc.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._stream:
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def wait_for(self, count: int, what: str, timeout: float = READY_S) -> list[str]:
        """The first ``count`` lines; fails naming ``what`` if the process ends or ``timeout`` passes."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.lines) >= count or self.ended, timeout)
            if len(self.lines) >= count:
                return self.lines[:count]
            seen = f"{len(self.lines)} of {count} lines"
            if self.ended:
                try:
                    exit_: int | None = self.proc.wait(timeout)  # stdout closed: it is exiting
                except subprocess.TimeoutExpired:
                    exit_ = None
                pytest.fail(f"{what}: the process ended (exit {exit_}) after {seen}", pytrace=False)
            pytest.fail(f"readiness deadline passed: {what} not within {timeout:g} s ({seen})", pytrace=False)

    def rest(self, timeout: float = READY_S) -> list[str]:
        """Every line once the process's stdout has ended (call after the process exited or was killed)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            pytest.fail(f"readiness deadline passed: stdout not closed within {timeout:g} s", pytrace=False)
        return list(self.lines)
