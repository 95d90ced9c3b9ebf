"""The register's operations on verified input, independent of HTTP: ingest a batch, report state, heartbeats.

Push and pull both end in :meth:`Register.ingest`. The batch is checked without holding any lock, then
compared with the stored log under the device lock (one transaction), stored, and cosigned.
Equivocation rolls the transaction back, then records an alarm with the evidence in its own transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.entry import Entry
from ledger.errors import NoteError
from ledger.note import CosignatureSigner, add_signatures
from register.errors import Equivocation, Unverifiable
from register.ingest import Batch, check_batch, plan_append
from register.notify.outbox import enqueue as enqueue_notifications
from register.store import Device, Store, StoredCheckpoint
from register.tabel import index, late

log = logging.getLogger("kgate.register")

META_COSIGNER = "cosigner_vkey"


@dataclass(frozen=True)
class Receipt:
    """The acknowledgement of a batch: the log size the register holds and the cosigned checkpoint."""

    size: int
    cosigned: str


class Register:
    """Verifies, stores and cosigns device logs in ``store`` with ``cosigner``."""

    def __init__(
        self,
        store: Store,
        cosigner: CosignatureSigner,
        *,
        max_batch: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.cosigner = cosigner
        self.max_batch = max_batch
        self._clock = clock
        if store.get_meta(META_COSIGNER) != cosigner.vkey:
            store.set_meta(META_COSIGNER, cosigner.vkey)  # lets verify_register check cosignatures offline

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def ingest(self, device: Device, batch: Batch, *, evidence: bytes) -> Receipt:
        """Verify and store ``batch``; ``evidence`` (the request body) is kept if it proves equivocation."""
        checked = check_batch(batch, device.verifier(), max_entries=self.max_batch)
        cp = checked.checkpoint
        try:
            with self.store.device_log(device.id) as dlog:
                plan = plan_append(checked, dlog)
                dlog.apply(plan)
                new: tuple[Entry, ...] = ()
                if plan.entries:  # the табель's index of the new entries, in the same transaction
                    first = plan.entries[0][0] - batch.start
                    new = checked.decoded[first : first + len(plan.entries)]
                    index.write(dlog.sql, device.id, new)
                enqueue_notifications(dlog.sql, dlog.device, plan.entries, now_ms=self.now_ms(), decoded=new)
                stored = dlog.checkpoint_at(cp.size)
                if stored is None:
                    try:
                        cosigned = add_signatures(batch.checkpoint, self.cosigner, opened=checked.note)
                    except NoteError as exc:  # e.g. no room for one more signature line
                        raise Unverifiable(f"checkpoint cannot be cosigned: {exc}") from None
                    dlog.put_checkpoint(
                        StoredCheckpoint(cp.size, cp.root, batch.checkpoint, cosigned), self.now_ms()
                    )
                else:
                    cosigned = stored.cosigned
                size = dlog.size
        except Equivocation as exc:
            alarm = self.store.add_alarm(
                device.id,
                "equivocation",
                exc.detail,
                index=exc.index,
                evidence=evidence,
                now_ms=self.now_ms(),
            )
            log.warning("ALARM %d: device %s equivocates: %s", alarm, device.origin, exc.detail)
            raise
        if plan.entries:
            log.info(
                "device %s: stored entries %d..%d", device.origin, plan.entries[0][0], plan.entries[-1][0]
            )
            for alarm in late.check(self.store, device, new, now_ms=self.now_ms()):
                log.warning(
                    "ALARM %d: device %s delivered entries for an approved month", alarm, device.origin
                )
        return Receipt(size, cosigned)

    def state(self, device: Device) -> tuple[int, str | None]:
        """The stored size and the newest cosigned checkpoint (None before the first push)."""
        newest = self.store.newest_checkpoint(device.id)
        current = self.store.device_by_keyid(device.keyid)
        size = current.size if current is not None else device.size
        return size, None if newest is None else newest.cosigned

    def heard_from(self, device: Device, heartbeat: dict[str, Any] | None) -> None:
        self.store.touch(device.id, self.now_ms(), heartbeat)
