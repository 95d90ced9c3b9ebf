"""The push loop: deliver the device log to the register in bounded, proven batches.

From the size ``m`` the register last cosigned to the ledger's size ``N``: each batch ends on a multiple
of RETAIN_EVERY (or at ``N``), because only those sizes have a device-signed checkpoint. A batch carries
its entries, that checkpoint and the consistency proof ``m → end``; the register's answer is the same
checkpoint with its cosignature, which is verified against the pinned cosigner key and stored as the
acknowledgement before the next batch. A crash between the register's commit and our state write only
causes a re-send, which the register treats as a no-op (at-least-once delivery, exactly-once effect).
"""

from __future__ import annotations

import base64
import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ledger.checkpoint import Checkpoint
from ledger.errors import CheckpointError, NoteError
from ledger.note import CosignatureVerifier, open_note, parse_note
from ledger.store import RETAIN_EVERY, LedgerReader
from sync_agent.client import RegisterClient
from sync_agent.errors import (
    BadResponseError,
    EquivocationError,
    FatalError,
    GapError,
    HaltedError,
    RetryableError,
    ServerError,
)
from sync_agent.state import SyncState

log = logging.getLogger(__name__)

MAX_RESYNCS: Final = 3  # per round: a register that keeps saying "gap" is broken, back off


@dataclass(frozen=True)
class RoundResult:
    """What one round did: entries and batches delivered, sizes after it, whether a heartbeat went alone."""

    size: int
    cosigned_size: int
    delivered: int
    batches: int
    heartbeat_sent: bool


def batch_end(start: int, size: int, batch_size: int) -> int:
    """End of the next batch after ``start``: ``size`` if within reach, else the last multiple of 16."""
    if batch_size < RETAIN_EVERY:
        raise ValueError(f"batch size must be at least {RETAIN_EVERY}")
    end = start + batch_size
    if end >= size:
        return size
    return end - end % RETAIN_EVERY


class Backoff:
    """Exponential backoff with full jitter: a delay uniform in [0, min(cap, base·2^(failures-1))]."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, min(failures - 1, 62)))
        d = self._rng.uniform(0, ceiling)
        if retry_after is not None:
            d = max(d, min(retry_after, self.cap))
        return d


class SyncAgent:
    """Pushes one ledger to one register; :meth:`sync_once` is one round (it records the outcome)."""

    def __init__(
        self,
        reader: LedgerReader,
        state: SyncState,
        client: RegisterClient,
        cosigner: CosignatureVerifier,
        *,
        heartbeat: Callable[[int], dict[str, Any]],
        batch_size: int = 1024,
        heartbeat_interval: float = 300.0,
        on_batch: Callable[[], object] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if batch_size < RETAIN_EVERY:
            raise ValueError(f"batch size must be at least {RETAIN_EVERY}")
        self.reader = reader
        self.state = state
        self.client = client
        self.cosigner = cosigner
        self._heartbeat = heartbeat
        self.batch_size = batch_size
        self.heartbeat_interval = heartbeat_interval
        self.on_batch = on_batch
        self._wall = wall
        state.bind(reader.origin, reader.path)

    def sync_once(self) -> RoundResult:
        """Deliver everything pending now; record success or the error (a fatal one halts pushing)."""
        snap = self.state.read()
        if snap.halted:
            raise HaltedError(f"pushing is halted: {snap.halted} (investigate, then kgate sync clear-alarm)")
        try:
            return self._round()
        except RetryableError as exc:
            self.state.record_error(str(exc))
            raise
        except FatalError as exc:
            self.state.record_error(str(exc), halt=True)
            log.critical("ALARM: sync halted for %s: %s", self.reader.origin, exc)
            raise

    def _round(self) -> RoundResult:
        snap = self.state.read()
        m = self._resync() if snap.cosigned_size is None else snap.cosigned_size
        delivered = batches = resyncs = 0
        while True:
            n = self.reader.size
            if m >= n:
                break
            end = batch_end(m, n, self.batch_size)
            checkpoint = self.reader.checkpoint_at(end)
            if checkpoint is None:  # the terminal appended since we read the size: read it again
                continue
            start = m
            try:
                m = self._push(m, end, checkpoint, n)
            except GapError as exc:
                resyncs += 1
                if resyncs > MAX_RESYNCS:
                    raise ServerError(f"register keeps answering 'gap' ({exc})") from None
                log.warning("register holds %d entries, not %d: resyncing", exc.size, m)
                m = self._resync()
                continue
            delivered += m - start
            batches += 1
            if self.on_batch is not None:
                self.on_batch()
        heartbeat_sent = False
        last = self.state.read().last_contact_time or 0.0
        if batches == 0 and self._wall() - last >= self.heartbeat_interval:
            self.client.heartbeat(self.reader.origin, self._heartbeat(0))
            self.state.record_contact(now=self._wall())
            heartbeat_sent = True
        return RoundResult(self.reader.size, m, delivered, batches, heartbeat_sent)

    def _push(self, start: int, end: int, checkpoint: str, size: int) -> int:
        """Send one batch; verify and store the acknowledgement; return the new cosigned size."""
        entries = self.reader.entries(start, end)
        if len(entries) != end - start:
            raise BadResponseError(f"ledger returned {len(entries)} entries for [{start}, {end})")
        proof = self.reader.consistency_proof(start, end)
        body = {
            "origin": self.reader.origin,
            "start": start,
            "entries": [base64.b64encode(e).decode() for e in entries],
            "checkpoint": checkpoint,
            "old_size": start,
            "proof": [base64.b64encode(h).decode() for h in proof],
            "heartbeat": self._heartbeat(size - start),
        }
        answer = self.client.push(body)
        cosigned = answer.get("cosigned")
        if not isinstance(cosigned, str):
            raise BadResponseError("push answer has no cosigned checkpoint")
        acked = self._accept(cosigned)
        if acked < end:
            raise BadResponseError(f"register cosigned size {acked} after we sent [{start}, {end})")
        if acked == end and parse_note(cosigned)[0] != parse_note(checkpoint)[0]:
            raise BadResponseError("register cosigned a different checkpoint body than the one sent")
        log.info("delivered entries [%d, %d) of %s; cosigned size %d", start, end, self.reader.origin, acked)
        return acked

    def _accept(self, note: str) -> int:
        """Verify a cosigned checkpoint of our log and store it; return its size.

        The cosignature must verify with the pinned register key and the checkpoint must describe our
        own tree (same origin, root equal to our root at that size): anything else is an equivocation.
        """
        try:
            opened = open_note(note, [self.cosigner])
            cp = Checkpoint.parse(opened.text)
        except (NoteError, CheckpointError) as exc:
            raise BadResponseError(f"register's cosigned checkpoint does not verify: {exc}") from None
        if cp.origin != self.reader.origin:
            raise BadResponseError(f"register cosigned a checkpoint of {cp.origin!r}, not our log")
        if cp.size > self.reader.size:
            raise EquivocationError(
                f"register has cosigned size {cp.size} but the device ledger holds only "
                f"{self.reader.size} entries (ledger replaced or restored from a backup?)"
            )
        if cp.size > 0 and self.reader.tree_hash(cp.size) != cp.root:
            raise EquivocationError(f"register's cosigned root at size {cp.size} is not the device's root")
        self.state.record_ack(cp.size, note, now=self._wall())
        return cp.size

    def _resync(self) -> int:
        """Ask the register what it holds (GET /v1/state), verify it, and store it as our state."""
        answer = self.client.state()
        note = answer.get("cosigned")
        if note is None:
            self.state.record_ack(0, None, now=self._wall())
            return 0
        if not isinstance(note, str):
            raise BadResponseError("state answer's 'cosigned' is not a checkpoint note")
        size = self._accept(note)
        log.info("register holds a cosigned size %d for %s", size, self.reader.origin)
        return size


def _grown(reader: LedgerReader, seen: int) -> bool:
    return reader.size > seen


def wait(
    seconds: float,
    stop: threading.Event,
    *,
    grown: Callable[[], bool] | None = None,
    tick: Callable[[], object] | None = None,
    step: float = 1.0,
    not_before: float = 0.0,
) -> None:
    """Sleep up to ``seconds``; wake early on ``stop``, or when ``grown()`` says the ledger grew, but
    not before ``not_before`` seconds (entries appended meanwhile go in one push)."""
    started = time.monotonic()
    deadline = started + seconds
    while not stop.is_set():
        now = time.monotonic()
        left = deadline - now
        if left <= 0:
            return
        if grown is not None and now - started >= not_before and grown():
            return
        stop.wait(min(step, left))
        if tick is not None:
            tick()


class Cadence:
    """The adaptive push interval: ``short`` after a round that delivered entries, then doubling with
    each consecutive idle round up to ``long`` (the configured ``poll_interval``).

    While children come in, rounds are ``short`` apart (and a new entry wakes the agent, no sooner than
    ``short`` after the last round, so a burst goes in one push); an idle gate asks the register less
    and less often.
    """

    def __init__(self, short: float, long: float) -> None:
        if not 0 < short <= long:
            raise ValueError("push interval must be positive and not above the poll interval")
        self.short, self.long = short, long
        self.idle = 0

    def next(self, delivered: int) -> float:
        """Seconds to wait after a round that delivered ``delivered`` entries."""
        self.idle = 0 if delivered else self.idle + 1
        return min(self.long, self.short * 2.0 ** min(self.idle, 60))


def run_forever(
    agent: SyncAgent,
    backoff: Backoff,
    stop: threading.Event,
    *,
    poll_interval: float,
    push_interval: float | None = None,
    notifier: Any = None,
) -> int:
    """The daemon loop: rounds separated by the :class:`Cadence` (``push_interval`` while entries flow,
    up to ``poll_interval`` when idle; early when the ledger grows) or by backoff after a failure.

    Returns the exit status when a fatal error halts pushing (the alarm is in the state and the log),
    0 when ``stop`` is set.
    """
    if notifier is not None:
        notifier.ready()
    failures = 0
    cadence = Cadence(min(poll_interval, push_interval or poll_interval), poll_interval)
    while not stop.is_set():
        if notifier is not None:
            notifier.watchdog()
        try:
            result = agent.sync_once()
        except RetryableError as exc:
            failures += 1
            delay = backoff.delay(failures, exc.retry_after)
            log.warning("sync failed (%d in a row): %s; retrying in %.1f s", failures, exc, delay)
            if notifier is not None:
                notifier.status(f"retrying in {delay:.0f}s: {exc}")
            wait(delay, stop, tick=notifier.watchdog if notifier is not None else None)
            continue
        except FatalError as exc:
            if notifier is not None:
                notifier.status(f"HALTED: {exc}")
            return exc.exit_code
        failures = 0
        if notifier is not None:
            notifier.status(f"cosigned {result.cosigned_size} of {result.size}")
        wait(
            cadence.next(result.delivered),
            stop,
            grown=functools.partial(_grown, agent.reader, result.size),
            tick=notifier.watchdog if notifier is not None else None,
            step=min(1.0, cadence.short),
            not_before=cadence.short,
        )
    return 0
