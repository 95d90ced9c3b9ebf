"""``kgate decommission``: retire a gate over SSH with the same on-device runner as ``kgate provision``.

On the device (:data:`provisioning.device.DECOMMISSION`): the units are stopped, a final ``kgate sync
once`` pushes what the register has not got, the device and face keys are overwritten and removed, the
units removed, and the state (ledger, sync state, identity: no secrets left) is archived under
``/var/lib/kgate-decommissioned/``. Then, here, the device is revoked at the register: with ``--db``
directly (like ``kgate register device revoke``), otherwise the exact operator command is printed.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

from provisioning.bundle import HERE, DeviceFacts
from provisioning.errors import StepError
from provisioning.provision import StepResult, Transport, run_on_device

REASON = "decommissioned"


def _device_py_only(dest: Path, facts: DeviceFacts) -> None:
    """Decommissioning needs no wheelhouse: the bundle is the step runner alone."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "device.py", dest / "device.py")


def decommission(
    ssh: Transport,
    *,
    db: str | None,
    reason: str = REASON,
    by: str | None = None,
    skip_sync: bool = False,
    dry_run: bool = False,
    on_step: Callable[[StepResult], None] = lambda r: None,
) -> list[StepResult]:
    """Decommission the device behind ``ssh``, then revoke it at the register (``db``) or say how."""
    flags = ["--decommission", *(["--dry-run"] if dry_run else [])]
    results = run_on_device(ssh, {"skip_sync": skip_sync}, flags, on_step, _device_py_only)
    origin = next((r.origin for r in results if r.origin), "")
    if not origin:
        raise StepError("step identify failed: the device did not name its origin")
    results.append(revoke(origin, db=db, reason=reason, by=by, dry_run=dry_run))
    on_step(results[-1])
    return results


def revoke(origin: str, *, db: str | None, reason: str, by: str | None, dry_run: bool) -> StepResult:
    """Revoke ``origin`` in the register's database (recorded with who, when and why); idempotent."""
    command = f"kgate register device revoke {shlex.quote(origin)} --reason {shlex.quote(reason)} --db DB"
    if db is None:
        return StepResult("revoke", "warning", f"operator step at the register: {command}")
    from register.enrol import Enrolment  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(db) as store:
        enrolment = Enrolment(store)
        if any(r.origin == origin for r in enrolment.revocations()):
            return StepResult("revoke", "unchanged", f"{origin} is revoked at the register")
        if dry_run:
            return StepResult("revoke", "would change", f"revoke {origin} ({reason})")
        who = by or os.environ.get("SUDO_USER") or getpass.getuser()
        enrolment.revoke(origin, reason=reason, by=who)
    return StepResult("revoke", "changed", f"revoked {origin} ({reason}, by {who}): its pushes get 403")
