"""The adaptive push interval (sync_agent.agent.Cadence): short while entries flow, backing off to the
poll interval when idle, and a new entry is pushed within a fraction of the long interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.clock import FakeClock
from ledger.store import open_ledger
from sync_agent.agent import Backoff, Cadence, RoundResult, SyncAgent, run_forever
from tests.conftest import READY_S, wait_until
from tests.sync.conftest import TEMPLATE_SIZE
from tests.sync.fake_register import FakeRegister

Make = Callable[..., SyncAgent]


def test_cadence_is_short_while_entries_flow_and_backs_off_when_idle() -> None:
    cadence = Cadence(2.0, 30.0)
    waits = [cadence.next(d) for d in (5, 1, 0, 0, 0, 0, 0, 0, 3, 0)]
    assert waits == [2.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 2.0, 4.0]
    with pytest.raises(ValueError):
        Cadence(5.0, 1.0)


class _Rounds:
    """Records the agent's rounds (the real ``sync_once``): when each began and ended, what it delivered."""

    def __init__(self, agent: SyncAgent) -> None:
        self.times: list[float] = []  # when each round began
        self.ends: list[float] = []
        self.delivered: list[int] = []
        self._inner = agent.sync_once
        agent.sync_once = self  # type: ignore[method-assign]

    def __call__(self) -> RoundResult:
        self.times.append(time.monotonic())
        result = self._inner()
        self.delivered.append(result.delivered)
        self.ends.append(time.monotonic())
        return result

    def waited(self, i: int) -> float:
        """How long the loop waited between the end of round ``i - 1`` and the start of round ``i``."""
        return self.times[i] - self.ends[i - 1]


def _append(path: Path, n: int, pause: float = 0.0) -> None:
    with open_ledger(path, clock=FakeClock(1_800_000_000_000)) as ledger:
        for i in range(n):
            ledger.append("in", child=f"K{i}", method="qr")
            time.sleep(pause)


def test_idle_agent_asks_less_often_and_a_new_entry_is_pushed_at_once(
    register: FakeRegister, make_agent: Make, ledger_path: Path
) -> None:
    """Measured as the waits between rounds (end of one to start of the next) and waited for by
    readiness, so a loaded machine, which makes rounds slower, cannot make the checks fail: a wait is
    never shorter than the cadence's, and an early wake is far shorter than the long interval."""
    agent = make_agent(register.url)
    rounds = _Rounds(agent)
    stop = threading.Event()
    loop = threading.Thread(
        target=run_forever,
        args=(agent, Backoff(0.01, 0.05), stop),
        kwargs={"poll_interval": 2.0, "push_interval": 0.1},
    )
    loop.start()
    try:
        # The backlog goes in first, then idle rounds with waits of 0.2, 0.4, 0.8, 1.6 s after them.
        wait_until(lambda: len(register.log().entries) == TEMPLATE_SIZE, "the backlog pushed")
        wait_until(lambda: rounds.delivered[-5:] == [0] * 5, "five idle rounds")
        first_idle = len(rounds.delivered) - 5
        assert sum(rounds.delivered[:first_idle]) == TEMPLATE_SIZE
        waits = [rounds.waited(i) for i in range(first_idle + 1, first_idle + 5)]
        # never sooner than the doubling cadence (a fixed 0.1 s interval would wait 0.1 s each time)
        assert all(w >= want for w, want in zip(waits, (0.2, 0.4, 0.8, 1.6), strict=True)), waits
        # A check-in while the agent waits its long interval (2 s after an idle round): pushed at once.
        idle = len(rounds.times)
        wait_until(lambda: len(rounds.ends) > idle, "the end of the next idle round")
        appended = time.monotonic()
        _append(ledger_path, 1)
        wait_until(lambda: sum(rounds.delivered[idle:]) == 1, "the round that pushed the new entry")
        assert len(register.log().entries) == TEMPLATE_SIZE + 1
        pushed = rounds.delivered.index(1, idle)
        assert pushed == idle + 1, rounds.delivered[idle:]  # the next round, woken by the new entry
        assert rounds.waited(pushed) < 1.0, rounds.waited(pushed)  # early, not after the 2 s
        assert rounds.times[pushed] - appended < 1.0, rounds.times[pushed] - appended
        # Entries flowing (one every 30 ms): rounds no closer than 0.1 s, several entries per round.
        before = len(rounds.times)
        _append(ledger_path, 40, pause=0.03)
        wait_until(lambda: sum(rounds.delivered[before:]) == 40, "the rounds that pushed the flow")
        assert len(register.log().entries) == TEMPLATE_SIZE + 41
        flow = range(before + 1, len(rounds.ends))
        assert all(rounds.waited(i) >= 0.1 for i in flow), [rounds.waited(i) for i in flow]
        assert max(rounds.delivered[before:]) > 1, rounds.delivered[before:]
    finally:
        stop.set()
        loop.join(READY_S)
