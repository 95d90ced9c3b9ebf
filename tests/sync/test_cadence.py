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
    """Counts the agent's rounds (the real ``sync_once``) and when each one ran."""

    def __init__(self, agent: SyncAgent) -> None:
        self.times: list[float] = []
        self._inner = agent.sync_once
        agent.sync_once = self  # type: ignore[method-assign]

    def __call__(self) -> RoundResult:
        self.times.append(time.monotonic())
        return self._inner()


def _append(path: Path, n: int, pause: float = 0.0) -> None:
    with open_ledger(path, clock=FakeClock(1_800_000_000_000)) as ledger:
        for i in range(n):
            ledger.append("in", child=f"K{i}", method="qr")
            time.sleep(pause)


def test_idle_agent_asks_less_often_and_a_new_entry_is_pushed_at_once(
    register: FakeRegister, make_agent: Make, ledger_path: Path
) -> None:
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
        time.sleep(2.5)  # the backlog goes in the first round, then idle: 0.2, 0.4, 0.8, 1.6 s apart
        idle_rounds = len(rounds.times)
        assert 3 <= idle_rounds <= 6, rounds.times  # a fixed 0.1 s interval would make ~25
        gaps = [b - a for a, b in zip(rounds.times, rounds.times[1:], strict=False)]
        idle_gaps = gaps[1:]  # the first round pushed the backlog (its gap includes that push)
        assert idle_gaps == sorted(idle_gaps) and idle_gaps[-1] > 0.6, gaps  # growing
        # A check-in while the agent waits its long interval: pushed well before the 2 s poll interval.
        appended = time.monotonic()
        _append(ledger_path, 1)
        deadline = appended + 5
        while len(register.log().entries) < TEMPLATE_SIZE + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        latency = time.monotonic() - appended
        assert len(register.log().entries) == TEMPLATE_SIZE + 1
        assert latency < 0.8, latency
        # Entries flowing (one every 30 ms): rounds every ~0.1 s, several entries per round.
        before, started = len(rounds.times), time.monotonic()
        _append(ledger_path, 40, pause=0.03)
        flowed = time.monotonic() - started
        time.sleep(0.5)
        flow_rounds = len(rounds.times) - before
        assert len(register.log().entries) == TEMPLATE_SIZE + 41
        assert flow_rounds <= flowed / 0.1 + 6 and flow_rounds < 25, (flow_rounds, flowed)
    finally:
        stop.set()
        loop.join(10)
