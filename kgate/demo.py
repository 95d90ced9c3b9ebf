"""``kgate demo``: the main job on embedded defaults, no Pi needed.

The simulated gate is provisioned first, by ``kgate provision``'s own steps over a local transport
(``DIR/gate``, whose state directory is ``DIR/device``; see :mod:`kgate.trust_demo`).

A simulated kindergarten (about 120 children in five groups) has one day at one gate. Its roster
comes from the register over TUF (:mod:`kgate.trust_demo`). The morning rush (07:30–09:00) goes through the
real terminal: a photo of each child's badge held up at the gate (perspective, blur, low light; mixed
difficulty; a parent tries again when the gate does not react) is replayed by a
:class:`~hardware.camera.ReplaySource` into the :class:`~terminal.scan.ScanPipeline` and the
:class:`~terminal.gate.Gate`, which decides and appends durably to ``DIR/device/ledger.db``. A few
unknown, revoked, forged and hostile codes are refused, and the camera is unplugged once. Gate-screen
screenshots (accepted, refused, errors, the staff "today" list) in kk/ru/en go to ``DIR/screens/``.
Departures (16:30–19:00) are appended directly. The ledger is verified; then the device's sync agent
pushes it over real HTTP on loopback to an embedded register (``DIR/register/register.db``), which
verifies, stores and cosigns it; the register is verified too.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from shlex import quote
from typing import Any

from kgate import mail_demo, simulation, trust_demo
from kgate.console_demo import console_lines, write_console_demo
from kgate.errors import UsageError
from kgate.evening import Evening, departures
from kgate.invocation import kgate_command
from kgate.month import write_month
from kgate.rush import MorningRush, badge_serial, percentile
from ledger.clock import FakeClock
from ledger.keys import load_key
from ledger.store import open_ledger, open_reader
from ledger.verify import verify_ledger

REGISTER_NAME = "register.demo.kgate.kz"
DEMO_ORIGIN = f"{REGISTER_NAME}/kgate/almaty-042-gate-1"  # what the register assigns at enrolment


@dataclass(frozen=True)
class DemoSummary:
    """What the demo did, for people (text) and tools (``--json``)."""

    out: str
    ledger: str
    origin: str
    vkey: str
    date: str
    children: int
    present: int
    absent: int
    entries: int
    checkpoint_size: int
    verified: bool
    register: str
    cosigned_size: int
    register_verified: bool
    seconds: float
    photos_scanned: int = 0
    photos_read: int = 0
    read_rate: float = 0.0
    retries: int = 0
    checked_in: int = 0
    checked_out: int = 0
    refused: int = 0
    repeats: int = 0
    rejected_entries: int = 0
    not_read: int = 0
    camera_faults: int = 0
    p95_frame_to_entry_ms: float = 0.0
    screens: list[str] = field(default_factory=list)
    enrolment: str = ""
    provisioned: str = ""  # the simulated gate's root and the provisioning summary
    provision_steps: list[dict[str, str]] = field(default_factory=list)  # each step's report
    roster_version: int = 0
    roster_expires: str = ""
    guardians: int = 0
    consent_face: int = 0
    badges_pdf: str = ""
    badges_printed: int = 0
    badge_pages: int = 0
    picked_up_with_guardian: int = 0
    pickups_refused: int = 0
    not_picked_up: int = 0
    faces: dict[str, Any] = field(default_factory=dict)
    tabel: dict[str, Any] = field(default_factory=dict)  # the month's табель (kgate/month.py)
    mail: dict[str, Any] = field(default_factory=dict)  # parents' notifications (kgate/mail_demo.py)
    console: dict[str, Any] = field(default_factory=dict)  # users, parent code, statement (console_demo)


def run_demo(out: Path, *, children: int = 120, seed: int = 7, on: date | None = None) -> DemoSummary:
    """Run the simulated day into ``out`` (which must not hold an earlier demo)."""
    from register.local import serve_locally  # noqa: PLC0415 - keep `kgate --help` fast
    from register.verify import verify_register  # noqa: PLC0415
    from terminal.roster import open_roster  # noqa: PLC0415

    on = on or date(2026, 11, 27)
    device_dir = out / "device"
    db = device_dir / "ledger.db"
    if db.exists():
        raise UsageError(f"{db} already exists; give --out an empty folder")
    started = time.monotonic()
    kids = simulation.roster(children, seed)
    visits = simulation.day(kids, on, seed=seed)
    badges = {child.child_id: badge_serial(child.child_id, seed) for child in kids}
    device_dir.mkdir(parents=True, exist_ok=True)
    register_dir = out / "register"
    register_dir.mkdir(parents=True, exist_ok=True)
    morning = datetime.combine(on, datetime.min.time(), tzinfo=simulation.ALMATY) + timedelta(hours=7)
    clock = FakeClock(simulation.utc_ms(morning), synced=True)
    with serve_locally(str(register_dir / "register.db"), register_dir, REGISTER_NAME) as register:
        # Before the day: the register's roster reaches the enrolled gate (kgate/trust_demo.py).
        trust = trust_demo.prepare_gate(register, out, kids, badges, seed=seed, day_s=morning.timestamp())
        subscribed = mail_demo.subscribe(register_dir, trust.kindergarten, [c.child_id for c in kids])
        with (
            open_ledger(db, origin=trust.origin, clock=clock) as ledger,
            open_roster(device_dir / "roster.db") as roster,
        ):
            ledger.append("boot", evidence={"software": "kgate-demo"})
            rush = MorningRush(out, ledger, roster, clock, seed)
            rush.run(visits, badges)
            # Late qr+face arrivals of absent children whose parents consented (kgate/demo_faces.py).
            from kgate.demo_faces import run_face_demo  # noqa: PLC0415

            absent = [v.child.child_id for v in visits if v.arrive is None]
            faces = run_face_demo(rush, device_dir, absent, badges)
            evening = Evening(rush, trust.guardians, badges, seed).run(departures(visits))
            vkey = ledger.vkey
        report = verify_ledger(db)
        cosigned = sync_to_local_register(trust.sync_config)
    verify_register(str(register_dir / "register.db"))
    # The rest of the month at this kindergarten, then its табель and audit (kgate/month.py).
    month = write_month(out, kids, on, seed=seed, register_name=REGISTER_NAME)
    mail = mail_demo.deliver(out, subscribed, on)  # parents' notifications to a local SMTP sink: DIR/mail/
    console = write_console_demo(out, on)  # users, a parent code, a statement (kgate/console_demo.py)
    present = sum(1 for v in visits if v.arrive)
    stats = rush.stats
    return DemoSummary(
        out=str(out),
        ledger=str(db),
        origin=report.origin,
        vkey=vkey,
        date=on.isoformat(),
        children=len(kids),
        present=present,
        absent=len(kids) - present,
        entries=report.size,
        checkpoint_size=report.size,
        verified=True,
        register=str(register_dir / "register.db"),
        cosigned_size=cosigned,
        register_verified=True,
        seconds=round(time.monotonic() - started, 2),
        photos_scanned=stats["photos"],
        photos_read=stats["read"],
        read_rate=round(stats["read"] / max(1, stats["photos"]), 3),
        retries=stats["retries"],
        checked_in=stats["accepted"],
        checked_out=evening.checked_out,
        refused=stats["refused"],
        repeats=stats["repeat"],
        rejected_entries=stats["rejected_entries"],
        not_read=stats["not_read"],
        camera_faults=stats["camera_faults"],
        p95_frame_to_entry_ms=round(percentile(rush.entry_ms, 95), 1),
        screens=sorted(p.name for p in (out / "screens").glob("*.png")),
        enrolment=f"{trust.origin} (one-time token, kindergarten {trust.kindergarten})",
        provisioned=f"{trust.root}: {provision_summary(trust.provisioned)}",
        provision_steps=trust.provisioned,
        roster_version=trust.roster_version,
        roster_expires=trust.roster_expires,
        guardians=len(trust.guardians),
        consent_face=trust.consent_face,
        badges_pdf=trust.badges_pdf,
        badges_printed=trust.badges_printed,
        badge_pages=trust.badge_pages,
        picked_up_with_guardian=evening.with_guardian,
        pickups_refused=evening.pickups_refused,
        not_picked_up=evening.not_picked_up,
        faces=asdict(faces),
        tabel=month.as_json(),
        mail=mail,
        console=console,
    )


def provision_summary(steps: list[dict[str, str]]) -> str:
    from provisioning.provision import StepResult, summary  # noqa: PLC0415

    return summary([StepResult(s["step"], s["status"], s["detail"]) for s in steps])


def sync_to_local_register(config: Path) -> int:
    """``kgate sync once`` of the provisioned gate (its ``/etc/kgate/sync.toml``) to the running register.

    Returns the size the register cosigned (the agent's acknowledgement).
    """
    from sync_agent.agent import SyncAgent  # noqa: PLC0415
    from sync_agent.client import RegisterClient  # noqa: PLC0415
    from sync_agent.config import load_config  # noqa: PLC0415
    from sync_agent.heartbeat import STATUS_FILE, HeartbeatSource  # noqa: PLC0415
    from sync_agent.state import SyncState  # noqa: PLC0415

    cfg = load_config(config, {})
    client = RegisterClient(cfg.register, load_key(cfg.key), ca=cfg.ca, timeout=(5, 30))
    with open_reader(cfg.ledger) as reader, SyncState(cfg.state) as state:
        agent = SyncAgent(
            reader,
            state,
            client,
            cfg.cosigner(),
            heartbeat=HeartbeatSource(cfg.ledger, cfg.terminal_status or cfg.state / STATUS_FILE),
            batch_size=64,
        )
        try:
            result = agent.sync_once()
        finally:
            client.close()
    return result.cosigned_size


def _run(args: argparse.Namespace) -> int:
    if args.out is None:
        out = Path(tempfile.mkdtemp(prefix="kgate-demo-"))
    else:
        out = args.out
        out.mkdir(parents=True, exist_ok=True)
    if not 1 <= args.children <= 5000:
        raise UsageError("--children must be between 1 and 5000")
    summary = run_demo(out, children=args.children, seed=args.seed)
    if args.json:
        print(json.dumps(asdict(summary), ensure_ascii=False, sort_keys=True))
        return 0
    print(f"kgate demo — {summary.date}, one gate, {summary.children} children")
    print(f"  output folder:   {summary.out}")
    print(f"  attendance:      {summary.present} came, {summary.absent} absent")
    print(f"  provisioned:     {summary.provisioned} (kgate provision's steps, local transport)")
    print(f"  enrolment:       {summary.enrolment}")
    print(
        f"  roster:          version {summary.roster_version} delivered over TUF (signed, valid until "
        f"{summary.roster_expires}); {summary.guardians} guardians, face consent {summary.consent_face}"
    )
    print(
        f"  badges:          {summary.badges_printed} on {summary.badge_pages} A4 pages: {summary.badges_pdf}"
    )
    print(f"  device ledger:   {summary.ledger}")
    print(
        f"  morning rush:    {summary.photos_scanned} badge photos scanned through the real pipeline, "
        f"read rate {summary.read_rate:.1%} ({summary.retries} retries, {summary.not_read} never read)"
    )
    print(
        f"  gate decisions:  {summary.checked_in} checked in, {summary.refused} refused "
        f"({summary.rejected_entries} rejected entries), {summary.repeats} repeat, "
        f"{summary.camera_faults} camera fault; p95 frame->entry {summary.p95_frame_to_entry_ms} ms"
    )
    faces = summary.faces
    if faces.get("skipped"):
        print(f"  faces (qr+face): skipped: {faces['skipped']}")
    else:
        print(
            f"  faces (qr+face): {len(faces['enrolled'])} consenting children enrolled (templates only, "
            f"encrypted); {faces['accepted_with_face']} accepted with face, {faces['refused_mismatch']} "
            f"badge+face mismatch refused, {faces['badge_only']} without consent on the badge alone"
        )
    print(
        f"  departures:      {summary.checked_out} checked out, {summary.picked_up_with_guardian} with a "
        f'guardian\'s badge (pickup policy "guardian"); {summary.pickups_refused} unauthorized adult '
        f"refused, {summary.not_picked_up} not picked up"
    )
    t = summary.tabel
    print(
        f"  табель {t['month']}:  {t['present']} child-days present, {t['payable']} payable, "
        f"{t['flags']} flags (the dishonest evening of {t['dishonest_children']} check-ins "
        f"{'flagged' if t['dishonest_flagged'] else 'NOT flagged'}): tabel.csv, tabel.xlsx, anomalies.json"
    )
    m = summary.mail
    if m.get("skipped"):
        print(f"  parents told:    skipped: {m['skipped']}")
    else:
        print(
            f"  parents told:    {m['received']} emails to the guardians of {len(m['subscribed_children'])} "
            f"subscribed children (one opted out): {m['folder']}"
        )
        r = m.get("report", {})
        if r.get("child"):
            print(
                f'  parent report:   "{r["child"]} was not there" on entry #{r["index"]} of {r["device"]}: '
                f"an alarm for the auditors ({kgate_command()} register alarms "
                f"--db {quote(summary.register)}), "
                "the day held in the табель"
            )
    print(f"  screens:         {len(summary.screens)} screenshots in {Path(summary.out) / 'screens'}")
    print(f"  entries:         {summary.entries} (boot, in, out, rejected), each durably committed")
    print(f"  checkpoint:      size {summary.checkpoint_size}, signed by {summary.vkey}")
    print("  verification:    ok (every entry, the Merkle tree and every stored checkpoint)")
    print(f"  register:        {summary.register} (embedded, HTTP on 127.0.0.1)")
    print(
        f"  synced:          {summary.cosigned_size} entries cosigned by the register; its database verifies"
    )
    print("\n".join(console_lines(summary.console)))
    print(f"  time:            {summary.seconds} s")
    kgate = kgate_command()  # as it runs here: .venv/bin/kgate is not on PATH after workstation.sh
    print(f"Try: {kgate} verify {quote(summary.ledger)}   or   {kgate} verify {quote(summary.register)}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run a simulated kindergarten day end to end (no Pi needed)",
        description="Simulate one day at a kindergarten gate: real keys, real signing, a real SQLite "
        "ledger, verified at the end.",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: a new temporary one)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.add_argument("--children", type=int, default=120, help="children enrolled (default 120)")
    p.add_argument("--seed", type=int, default=7, help="seed of the simulation (default 7)")
    p.set_defaults(func=_run)
