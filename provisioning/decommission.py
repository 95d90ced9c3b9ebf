"""``kgate decommission``: retire a gate over SSH with the same on-device runner as ``kgate provision``.

Which device is retired is decided by what the register knows, never by what the device says. First
the device proves its key: this process makes a fresh challenge (32 random bytes), the device signs it
with its device key by kgate's own code (``device.py --decommission --identify``, the key never leaves
the device), and the signature is checked here against the public key the device names
(:func:`sync_agent.enrol.check_key_proof`). With ``--db`` that key must be one the register stores;
otherwise the run stops before anything is destroyed. The origin the device reports is only shown.

Then, on the device (:data:`provisioning.device.DECOMMISSION`): the units are stopped, a final ``kgate
sync once`` pushes what the register has not got, the device and face keys are overwritten and removed
(the device key's public half is kept), the units removed, and the state (ledger, sync state, identity:
no secrets left) is archived under ``/var/lib/kgate-decommissioned/``. Last, here, the device with the
proven key is revoked at the register: with ``--db`` directly, otherwise the exact operator command
(``kgate register device revoke --key VKEY``) is printed.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provisioning.bundle import HERE, DeviceFacts
from provisioning.errors import StepError
from provisioning.provision import StepResult, Transport, run_on_device, shown

REASON = "decommissioned"
UNPROVEN = "the device has no key left to prove which device it is"


@dataclass(frozen=True)
class KeyProof:
    """The device key the device named, and whether it signed this run's challenge with it."""

    vkey: str
    proven: bool


def _device_py_only(dest: Path, facts: DeviceFacts) -> None:
    """Decommissioning needs no wheelhouse: the bundle is the step runner alone."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "device.py", dest / "device.py")


def identify(ssh: Transport, challenge: str) -> KeyProof:
    """Ask the device to sign ``challenge`` with its device key and check the signature here.

    A device that still has its key must prove it; one whose key was destroyed by an earlier decommission
    can only name the key's public half (``proven`` False). Raises :class:`StepError` when the device
    names no key or its signature does not verify: nothing has been changed on the device then.
    """
    from sync_agent.enrol import check_key_proof  # noqa: PLC0415

    settings = {"challenge": challenge}
    results = run_on_device(ssh, settings, ["--decommission", "--identify"], lambda r: None, _device_py_only)
    found = next((r for r in results if r.step == "identify"), None)
    if found is None or not found.vkey:
        raise StepError("step identify failed: the device named no device key; nothing changed")
    if not found.signature:
        return KeyProof(found.vkey, proven=False)
    verifier = check_key_proof(challenge, found.vkey, found.signature)
    if verifier is None:
        raise StepError(
            "step identify failed: the device's signature over this run's challenge does not verify with "
            "the key it names; nothing changed, nothing revoked"
        )
    return KeyProof(verifier.vkey, proven=True)


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
    """Decommission the device behind ``ssh``; revoke it by its proven key at the register (or say how)."""
    challenge = secrets.token_urlsafe(32)  # fresh for this run: an old signature proves nothing
    proof = identify(ssh, challenge)
    _check_registered(proof, db)
    flags = ["--decommission", *(["--dry-run"] if dry_run else [])]
    settings = {"skip_sync": skip_sync, "challenge": challenge}
    results = run_on_device(ssh, settings, flags, on_step, _device_py_only)
    results.append(revoke(proof, db=db, reason=reason, by=by, dry_run=dry_run))
    on_step(results[-1])
    return results


def _check_registered(proof: KeyProof, db: str | None) -> None:
    """With ``db``: a proven key the register does not store stops the run before the device is touched
    (a wrong ``--db``, or a device of another register)."""
    if db is None:
        return
    from register.enrol import Enrolment  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(db) as store:
        device = Enrolment(store).device_with_key(proof.vkey)
    if device is None and proof.proven:
        raise StepError(
            f"step identify failed: the register in --db stores no device with the key the device proved "
            f"({_key_name(proof.vkey)}); wrong --db? nothing changed, nothing revoked"
        )


def _key_name(vkey: str) -> str:
    name, _, rest = vkey.partition("+")
    return shown(f"{name}+{rest.partition('+')[0]}")


def revoke(proof: KeyProof, *, db: str | None, reason: str, by: str | None, dry_run: bool) -> StepResult:
    """Revoke the device whose stored key is the proven one (recorded with who, when and why); idempotent."""
    command = (
        f"kgate register device revoke --key {shlex.quote(proof.vkey)} --reason {shlex.quote(reason)} --db DB"
    )
    if db is None:
        if not proof.proven:
            what = "check kgate register device revocations at the register"
            return StepResult("revoke", "warning", f"{UNPROVEN}: {what}")
        return StepResult("revoke", "warning", f"operator step at the register: {shown(command)}")
    from register.enrol import Enrolment  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(db) as store:
        enrolment = Enrolment(store)
        device = enrolment.device_with_key(proof.vkey)
        if device is not None and device.disabled:
            how = "" if proof.proven else " (the device has no key left; the key it names is that device's)"
            return StepResult("revoke", "unchanged", f"{device.origin} is revoked at the register{how}")
        if device is None:
            what = "the register stores no device with the key it names"
            return StepResult("revoke", "warning", f"nothing revoked: {UNPROVEN}, and {what}")
        if not proof.proven:
            what = f"it names the key of {device.origin}, live: check, then revoke by hand"
            return StepResult("revoke", "warning", f"nothing revoked: {UNPROVEN}; {what}")
        if dry_run:
            return StepResult("revoke", "would change", f"revoke {device.origin} ({reason})")
        who = by or os.environ.get("SUDO_USER") or getpass.getuser()
        device = enrolment.revoke_key(proof.vkey, reason=reason, by=who)
    return StepResult(
        "revoke", "changed", f"revoked {device.origin} ({reason}, by {who}): its pushes get 403"
    )
