"""``kgate demo``: the main job on embedded defaults, no Pi needed.

A simulated kindergarten (about 120 children in five groups) has one day at one gate. Its roster is
installed with :func:`~terminal.roster.load_roster`. The morning rush (07:30–09:00) goes through the
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
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from kgate import simulation
from kgate.errors import UsageError
from kgate.month import write_month
from kgate.rush import MorningRush, badge_serial, percentile, write_roster_file
from ledger.clock import FakeClock
from ledger.keys import load_key
from ledger.store import open_ledger, open_reader
from ledger.verify import verify_ledger
from terminal.decide import Direction

REGISTER_NAME = "register.demo.kgate.kz"
DEMO_ORIGIN = f"{REGISTER_NAME}/kgate/almaty-042-gate-1"


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
    tabel: dict[str, Any] = field(default_factory=dict)  # the month's табель (kgate/month.py)


def run_demo(out: Path, *, children: int = 120, seed: int = 7, on: date | None = None) -> DemoSummary:
    """Run the simulated day into ``out`` (which must not hold an earlier demo)."""
    from terminal.roster import load_roster  # noqa: PLC0415 - keep `kgate --help` fast

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
    roster_file = write_roster_file(device_dir / "roster.json", kids, badges, seed)
    morning = datetime.combine(on, datetime.min.time(), tzinfo=simulation.ALMATY) + timedelta(hours=7)
    clock = FakeClock(simulation.utc_ms(morning), synced=True)
    with (
        open_ledger(db, origin=DEMO_ORIGIN, clock=clock) as ledger,
        load_roster(device_dir / "roster.db", roster_file) as roster,
    ):
        ledger.append("boot", evidence={"software": "kgate-demo"})
        rush = MorningRush(out, ledger, roster, clock, seed)
        rush.run(visits, badges)
        departures = [(when, child) for when, kind, child in simulation.events(visits) if kind == "out"]
        checked_out = 0
        for when, child in departures:
            if child.child_id not in rush.arrived:  # the gate never saw them come in
                continue
            clock.advance((simulation.utc_ms(when) - clock.time_ms) / 1000)
            ledger.append(
                "out", child=child.child_id, method="qr", evidence={"badge": badges[child.child_id]},
                roster_version=roster.version,
            )  # fmt: skip
            rush.today.record(child.child_id, Direction.OUT, when)
            checked_out += 1
        rush.save_today("today-evening")
        vkey = ledger.vkey
    report = verify_ledger(db)
    cosigned = sync_to_local_register(db, out / "register")
    month = write_month(out, kids, on, seed=seed, register_name=REGISTER_NAME)
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
        register=str(out / "register" / "register.db"),
        cosigned_size=cosigned,
        register_verified=True,
        seconds=round(time.monotonic() - started, 2),
        photos_scanned=stats["photos"],
        photos_read=stats["read"],
        read_rate=round(stats["read"] / max(1, stats["photos"]), 3),
        retries=stats["retries"],
        checked_in=stats["accepted"],
        checked_out=checked_out,
        refused=stats["refused"],
        repeats=stats["repeat"],
        rejected_entries=stats["rejected_entries"],
        not_read=stats["not_read"],
        camera_faults=stats["camera_faults"],
        p95_frame_to_entry_ms=round(percentile(rush.entry_ms, 95), 1),
        screens=sorted(p.name for p in (out / "screens").glob("*.png")),
        tabel=month.as_json(),
    )


def sync_to_local_register(ledger_db: Path, register_dir: Path) -> int:
    """Enrol the device with an embedded register, push the whole log, verify the register's copy.

    Returns the size the register cosigned (the agent's acknowledgement).
    """
    from register.local import serve_locally  # noqa: PLC0415 - the register is heavy to import
    from register.verify import verify_register  # noqa: PLC0415
    from sync_agent.agent import SyncAgent  # noqa: PLC0415
    from sync_agent.client import RegisterClient  # noqa: PLC0415
    from sync_agent.heartbeat import HeartbeatSource  # noqa: PLC0415
    from sync_agent.state import SyncState  # noqa: PLC0415

    register_db = register_dir / "register.db"
    register_dir.mkdir(parents=True, exist_ok=True)
    device_dir = ledger_db.parent
    signer = load_key(device_dir / "device.key")
    with serve_locally(str(register_db), register_dir, REGISTER_NAME) as register:
        register.store.add_device(
            signer.vkey, kindergarten="Алматы, №42 «Балбөбек»", gate="1", now_ms=int(time.time() * 1000)
        )
        client = RegisterClient(register.url, signer, ca=None, timeout=(5, 30))
        with open_reader(ledger_db) as reader, SyncState(device_dir / "sync") as state:
            agent = SyncAgent(
                reader,
                state,
                client,
                register.keys.cosigner.verifier(),
                heartbeat=HeartbeatSource(ledger_db, device_dir / "sync" / "terminal-status.json"),
                batch_size=64,
            )
            try:
                result = agent.sync_once()
            finally:
                client.close()
    verify_register(str(register_db))
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
    print(f"  departures:      {summary.checked_out} checked out (appended directly)")
    print(f"  screens:         {len(summary.screens)} screenshots in {Path(summary.out) / 'screens'}")
    print(f"  entries:         {summary.entries} (boot, in, refused, out), each durably committed")
    print(f"  checkpoint:      size {summary.checkpoint_size}, signed by {summary.vkey}")
    print("  verification:    ok (every entry, the Merkle tree and every stored checkpoint)")
    print(f"  register:        {summary.register} (embedded, HTTP on 127.0.0.1)")
    print(
        f"  synced:          {summary.cosigned_size} entries cosigned by the register; its database verifies"
    )
    t = summary.tabel
    print(
        f"  табель {t['month']}:  {t['present']} child-days present, {t['payable']} payable, "
        f"{t['flags']} flags (the dishonest evening of {t['dishonest_children']} check-ins "
        f"{'flagged' if t['dishonest_flagged'] else 'NOT flagged'}): tabel.csv, tabel.xlsx, anomalies.json"
    )
    print(f"  time:            {summary.seconds} s")
    kgate = sys.argv[0] if Path(sys.argv[0]).name == "kgate" else "kgate"
    print(f"Try: {kgate} verify {summary.ledger}   or   {kgate} verify {summary.register}")
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
