"""The dispatcher: claims due notifications from the outbox, sends them, records the outcome.

Claiming is one short write transaction (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several dispatchers
share the work; SQLite: ``BEGIN IMMEDIATE``) that marks rows ``sending`` with a lease. Sending happens
outside any transaction. A row whose lease ran out (its dispatcher died) is claimed again: delivery is
at-least-once, and the idempotency key (Message-ID, Idempotency-Key) makes a repeat recognisable.
Failures are retried with exponential backoff and jitter; after ``max_attempts`` (or a permanent
refusal) the row is ``dead`` until an operator retries it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from register.notify.channels.base import Channel, Outgoing
from register.notify.errors import ChannelError
from register.notify.messages import Message, render
from register.notify.outbox import DEAD, PENDING, SENDING, SENT
from register.notify.unsubscribe import unsubscribe_key, unsubscribe_url
from register.store.base import Store
from register.store.schema import POSTGRES

log = logging.getLogger("kgate.register.notify")


@dataclass(frozen=True)
class Policy:
    """Retries and leases: ``max_attempts`` per row, backoff ``base_s * 2**(n-1)`` capped, -50 % jitter;
    outcomes recorded ``record_every`` sends per commit."""

    max_attempts: int = 8
    base_s: float = 5.0
    cap_s: float = 3600.0
    lease_s: float = 60.0
    batch: int = 100
    record_every: int = 50  # sends recorded per commit (1 = a commit per message, the slowest)

    def backoff_ms(self, attempts: int, rnd: float) -> int:
        delay = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        return int(delay * (0.5 + rnd / 2) * 1000)


@dataclass(frozen=True)
class Outcome:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


class Dispatcher:
    """Delivers the outbox of ``store`` through ``channels`` (by name), linking to ``parent_url``."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        *,
        parent_url: str,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not channels:
            raise ValueError("a dispatcher needs at least one channel")
        self.store = store
        self.channels = dict(channels)
        self.parent_url = parent_url
        self.policy = policy or Policy()
        self._clock = clock
        self._rng = rng
        self._unsubscribe_key = unsubscribe_key(store)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def claim(self) -> tuple[str, list[Outgoing]]:
        """Mark up to ``batch`` due rows of our channels ``sending`` under a fresh claim token."""
        now, token = self.now_ms(), secrets.token_hex(8)
        names = sorted(self.channels)
        marks = ",".join("?" * len(names))
        lock = " FOR UPDATE SKIP LOCKED" if self.store.dialect is POSTGRES else ""
        with self.store._tx(write=True) as sql:
            ids = [
                int(r[0])
                for r in sql.all(
                    "SELECT id FROM notify_outbox WHERE ((state = ? AND due_ms <= ?) "  # noqa: S608
                    f"OR (state = ? AND lease_ms <= ?)) AND channel IN ({marks}) "
                    f"ORDER BY due_ms, id LIMIT ?{lock}",
                    (PENDING, now, SENDING, now, *names, self.policy.batch),
                )
            ]
            if not ids:
                return token, []
            id_marks = ",".join("?" * len(ids))
            sql.run(
                f"UPDATE notify_outbox SET state = ?, attempts = attempts + 1, lease_ms = ?, claim = ? "  # noqa: S608
                f"WHERE id IN ({id_marks})",
                (SENDING, now + int(self.policy.lease_s * 1000), token, *ids),
            )
            rows = sql.all(
                "SELECT id, key, channel, address, target, guardian, attempts, payload "  # noqa: S608
                f"FROM notify_outbox WHERE id IN ({id_marks}) ORDER BY due_ms, id",
                ids,
            )
        out: list[Outgoing] = []
        days: dict[tuple[str, str, str, str], int] = {}  # digest (guardian, channel, address, day) -> index
        for r in rows:
            payload: dict[str, Any] = json.loads(r[7])
            message = render(payload, str(payload.get("lang", "ru")), self.parent_url, str(r[1]))
            link = None
            if r[2] == "email":
                link = unsubscribe_url(self.parent_url, self._unsubscribe_key, str(r[1]))
            item = Outgoing(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), message, 0, link)
            if isinstance(payload.get("digest"), str):  # one message for the day's rows of this contact
                group = (str(r[5]), str(r[2]), str(r[3]), str(payload["digest"]))
                if group in days:
                    first = out[days[group]]
                    merged = Message(first.message.subject, first.message.text + "\n" + message.text)
                    out[days[group]] = dataclasses.replace(first, message=merged, also=(*first.also, item.id))
                    continue
                days[group] = len(out)
            out.append(item)
        return token, out

    def _record(self, token: str, results: Sequence[tuple[Outgoing, str, str, Sequence[Any]]]) -> None:
        """Record the outcomes of several sends in ONE transaction (one durable commit).

        Each result is ``(item, state, SET clause, its parameters)``; rows are matched on ``id`` and the
        claim token, so a dispatcher that lost its lease cannot overwrite another's result.
        """
        if not results:
            return
        groups: dict[str, list[tuple[Any, ...]]] = {}
        for item, _state, sql_set, params in results:
            for row_id in (item.id, *item.also):  # a digest's rows share its outcome
                groups.setdefault(sql_set, []).append((*params, row_id, token))
        with self.store._tx(write=True) as sql:
            for sql_set, rows in groups.items():
                sql.many(
                    f"UPDATE notify_outbox SET {sql_set}, lease_ms = NULL WHERE id = ? AND claim = ?",  # noqa: S608
                    rows,
                )

    def send(self, item: Outgoing) -> tuple[Outgoing, str, str, Sequence[Any]]:
        """Send one claimed row; the outcome to record: ``(item, new state, SET clause, parameters)``."""
        item = dataclasses.replace(item, now_ms=self.now_ms())  # the time of sending: an email's Date
        try:
            remote = self.channels[item.channel].send(item)
        except ChannelError as exc:
            error = str(exc)[:500]
            if not exc.retryable or item.attempts >= self.policy.max_attempts:
                log.warning("notification %d (%s) is dead after %d attempts: %s", item.id, item.channel,
                            item.attempts, error)  # fmt: skip
                return item, DEAD, "state = ?, last_error = ?", (DEAD, error)
            due = self.now_ms() + self.policy.backoff_ms(item.attempts, self._rng())
            log.info("notification %d (%s) attempt %d failed, retry later: %s", item.id, item.channel,
                     item.attempts, error)  # fmt: skip
            return item, PENDING, "state = ?, due_ms = ?, last_error = ?", (PENDING, due, error)
        return (
            item,
            SENT,
            "state = ?, sent_ms = ?, remote_id = ?, last_error = NULL",
            (SENT, self.now_ms(), remote),
        )

    def deliver(self, token: str, item: Outgoing) -> str:
        """Send one claimed row and record the outcome at once; returns the new state."""
        result = self.send(item)
        self._record(token, [result])
        return result[1]

    def run_once(self, tick: Callable[[], object] = lambda: None) -> Outcome:
        """Claim one batch and deliver it; ``tick`` after each message (the systemd watchdog).

        Outcomes are recorded ``policy.record_every`` sends per commit: a crash between a send and its
        commit re-sends at most that many messages (after the lease), each with its idempotency key.
        """
        token, items = self.claim()
        counts = {SENT: 0, PENDING: 0, DEAD: 0}
        done: list[tuple[Outgoing, str, str, Sequence[Any]]] = []
        try:
            for item in items:
                done.append(self.send(item))
                counts[done[-1][1]] += 1
                tick()
                if len(done) >= self.policy.record_every:
                    self._record(token, done)
                    done = []
        finally:
            self._record(token, done)
        return Outcome(counts[SENT], counts[PENDING], counts[DEAD])

    def run(
        self, *, interval: float, stop: Callable[[], bool], tick: Callable[[], object] = lambda: None
    ) -> None:
        """Deliver until ``stop()``; sleeps ``interval`` seconds whenever a pass found nothing to do."""
        while not stop():
            outcome = self.run_once(tick)
            tick()
            if outcome == Outcome():
                deadline = time.monotonic() + interval
                while not stop() and time.monotonic() < deadline:
                    time.sleep(min(0.1, interval))

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()


def status(store: Store) -> dict[str, Any]:
    """Counts per channel and state, and the dead letters (for ``kgate register notify status``)."""
    with store._tx(write=False) as sql:
        counts = sql.all("SELECT channel, state, count(*) FROM notify_outbox GROUP BY channel, state")
        dead = sql.all(
            "SELECT n.id, d.origin, n.idx, n.guardian, n.channel, n.attempts, n.last_error "
            "FROM notify_outbox n JOIN devices d ON d.id = n.device_id WHERE n.state = ? ORDER BY n.id",
            (DEAD,),
        )
    by: dict[str, dict[str, int]] = {}
    for channel, state, n in counts:
        by.setdefault(str(channel), {})[str(state)] = int(n)
    return {
        "counts": by,
        "dead": [
            {"id": int(r[0]), "device": r[1], "index": int(r[2]), "guardian": r[3], "channel": r[4],
             "attempts": int(r[5]), "last_error": r[6]}
            for r in dead
        ],
    }  # fmt: skip


def retry(store: Store, ids: Sequence[int] | None, *, now_ms: int) -> int:
    """Put dead rows (``ids``, or all dead ones when None) back to pending with fresh attempts."""
    with store._tx(write=True) as sql:
        if ids is None:
            rows = sql.all("SELECT id FROM notify_outbox WHERE state = ?", (DEAD,))
        else:
            marks = ",".join("?" * len(ids))
            rows = sql.all(
                f"SELECT id FROM notify_outbox WHERE state = ? AND id IN ({marks})",  # noqa: S608
                (DEAD, *ids),
            )
        found = [int(r[0]) for r in rows]
        for i in found:
            sql.run(
                "UPDATE notify_outbox SET state = ?, attempts = 0, due_ms = ?, claim = NULL WHERE id = ?",
                (PENDING, now_ms, i),
            )
    return len(found)
