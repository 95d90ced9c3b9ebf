"""Gate benchmark: frame -> scan -> decision -> durable ledger entry, as JSON on stdout.

Synthetic 1280x720 badge photos (``hardware.camera.synthetic``), one per enrolled child, go through the
terminal's :class:`~terminal.scan.ScanPipeline` and :class:`~terminal.gate.Gate` into a real ledger on
disk (WAL, ``synchronous=FULL``; every accepted entry is COMMITted and its checkpoint signed before the
next frame). Raw zxing-cpp on the same frames is the baseline. Photo rendering is not timed.

    .venv/bin/python bench/gate.py [--frames 200] [--seed 2026] [--difficulty 0.5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import zxingcpp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hardware.camera.frame import Frame
from hardware.camera.synthetic import NAMES, draw_shot, render_badge_photo
from hardware.feedback import NullFeedback
from ledger.clock import FakeClock
from ledger.store import open_ledger
from terminal.badge import encode_badge, serial_from_bytes
from terminal.decide import DecideConfig, Decider
from terminal.gate import Gate, OutcomeKind
from terminal.roster import Child, RosterData, open_roster
from terminal.scan import ScanConfig, ScanPipeline

_QR = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: list[float]) -> dict[str, float]:
    """p50/p95/max in ms, rounded."""
    if not values:
        return {}
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "max_ms": round(max(values), 2),
    }


def run(frames: int, seed: int, difficulty: float, workdir: Path) -> dict[str, Any]:
    """Render the photos, then time the gate path and raw zxing-cpp on each."""
    rng = random.Random(seed)  # reproducible scenes, not secrets
    serials = [serial_from_bytes(rng.randbytes(10)) for _ in range(frames)]
    children = tuple(Child(f"c-{i:04d}", NAMES[i % len(NAMES)], "Sun") for i in range(frames))
    photos = []
    for i, serial in enumerate(serials):
        shot = replace(draw_shot(random.Random(seed * 7919 + i), difficulty), width=1280, height=720)
        photos.append(render_badge_photo(encode_badge(serial), children[i].name, seed + i, shot=shot))

    roster = open_roster(workdir / "roster.db")
    roster.install(
        RosterData(
            1, children, tuple((s, c.id, False) for s, c in zip(serials, children, strict=True)), "bench"
        )
    )
    morning = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    clock = FakeClock(int(morning.timestamp() * 1000))
    ledger = open_ledger(workdir / "ledger.db", origin="bench.example/kgate/gate", clock=clock)
    sync = ledger._conn.execute("PRAGMA synchronous").fetchone()[0]
    journal = ledger._conn.execute("PRAGMA journal_mode").fetchone()[0]
    gate = Gate(ledger, Decider(roster, DecideConfig(timezone="UTC"), clock), NullFeedback())
    pipeline = ScanPipeline(ScanConfig())

    total: list[float] = []
    total_accepted: list[float] = []
    scan_ms: list[float] = []
    commit_ms: list[float] = []
    raw_ms: list[float] = []
    raw_reads = 0
    kinds: dict[str, int] = {}
    for i, photo in enumerate(photos):
        frame = Frame(photo.image, float(i), i, "bench")
        started = time.perf_counter()
        result = pipeline.scan(frame)
        scanned = time.perf_counter()
        outcome = gate.handle(result)
        done = time.perf_counter()
        clock.advance(1.0)
        total.append((done - started) * 1000)
        scan_ms.append((scanned - started) * 1000)
        kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1
        if outcome.kind is OutcomeKind.ACCEPTED:
            total_accepted.append((done - started) * 1000)
            commit_ms.append((done - scanned) * 1000)

        started = time.perf_counter()
        raw = zxingcpp.read_barcodes(photo.image, formats=_QR, text_mode=zxingcpp.TextMode.Plain)
        raw_ms.append((time.perf_counter() - started) * 1000)
        raw_reads += any(r.valid and r.text == photo.payload for r in raw)
    size = ledger.size
    ledger.close()
    roster.close()
    return {
        "frames": frames,
        "resolution": "1280x720",
        "difficulty": difficulty,
        "seed": seed,
        "ledger": {
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, sync),
            "journal_mode": journal,
            "entries": size,
        },
        "outcomes": kinds,
        "gate_all_frames": summary(total),
        "gate_accepted_frames": summary(total_accepted),
        "scan_only": summary(scan_ms),
        "decide_and_commit": summary(commit_ms),
        "raw_zxing_cpp": {**summary(raw_ms), "reads": raw_reads},
        "target_p95_ms": 40,
        "meets_target": bool(total) and percentile(total, 95) <= 40,
    }


def main() -> int:
    """Parse arguments, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--difficulty", type=float, default=0.5)
    parser.add_argument("--dir", type=Path, help="put the ledger here (default: a temporary folder)")
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        report = run(args.frames, args.seed, args.difficulty, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="kgate-bench-gate-") as tmp:
            report = run(args.frames, args.seed, args.difficulty, Path(tmp))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
