"""``kgate scan`` and the frame pipeline on the ZXing corpus and on synthetic badge photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardware.camera.frame import Frame, Region
from hardware.camera.synthetic import render_badge_photo
from kgate.cli import main
from terminal.badge import encode_badge, parse_badge, serial_from_bytes
from terminal.scan import ScanConfig, ScanPipeline
from tests.conftest import shared_path


def test_kgate_scan_json_on_the_zxing_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    corpus = shared_path("data", "qr", "zxing-blackbox")
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    images = [str(corpus / row["file"]) for row in rows]
    expected = {str(corpus / r["file"]): (corpus / r["expected_file"]).read_bytes().decode() for r in rows}

    assert main(["scan", "--json", *images]) == 0

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["image"] for line in lines] == images
    correct = sum(expected[line["image"]] in line["codes"] for line in lines)
    wrong = [
        line["image"] for line in lines if line["codes"] and expected[line["image"]] not in line["codes"]
    ]
    assert all(isinstance(line["ms"], float) for line in lines)
    assert wrong == []
    assert correct >= 166


def test_kgate_scan_reports_unreadable_images_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = render_badge_photo(
        encode_badge(serial_from_bytes(b"0123456789")), "Аружан Серікқызы", 3, difficulty=0
    )
    good = tmp_path / "good.jpg"
    good.write_bytes(photo.jpeg)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")

    status = main(["scan", str(broken), str(tmp_path / "missing.png"), str(good)])

    out, err = capsys.readouterr()
    assert status == 1
    assert f"{broken}: not a readable image" in err
    assert "missing.png" in err
    assert out.strip() == f"{good}: {photo.payload} ({out.split('(')[-1].strip()}"


def test_pipeline_reads_synthetic_badge_photos_exactly() -> None:
    pipeline = ScanPipeline()
    read = 0
    for seed in range(8):
        payload = encode_badge(serial_from_bytes(seed.to_bytes(10, "big")))
        photo = render_badge_photo(payload, "Әлихан Нұрланұлы", seed, difficulty=0.4)
        result = pipeline.scan(Frame(photo.image, timestamp=12.5))
        assert result.timestamp == 12.5 and result.ms > 0
        for code in result.codes:
            assert parse_badge(code.data).text == payload  # never a wrong read
        read += bool(result.codes)
    assert read >= 7


def test_pipeline_positions_are_in_full_frame_coordinates_with_a_region() -> None:
    payload = encode_badge(serial_from_bytes(b"abcdefghij"))
    photo = render_badge_photo(payload, "Sofia Brown", 11, difficulty=0)
    frame = Frame(photo.image, 0.0)
    whole = ScanPipeline().scan(frame).codes
    assert [c.data for c in whole] == [payload.encode()]
    cx, cy = whole[0].center
    region = Region(left=max(0.0, cx / frame.width - 0.3), top=0.0, right=min(1.0, cx / frame.width + 0.3))
    cropped = ScanPipeline(ScanConfig(region=region)).scan(frame).codes
    assert [c.data for c in cropped] == [payload.encode()]
    assert abs(cropped[0].center[0] - cx) <= 2 and abs(cropped[0].center[1] - cy) <= 2


def test_synthetic_photos_are_deterministic() -> None:
    payload = encode_badge(serial_from_bytes(b"abcdefghij"))
    assert (
        render_badge_photo(payload, "Sofia Brown", 5).jpeg
        == render_badge_photo(payload, "Sofia Brown", 5).jpeg
    )
    assert (
        render_badge_photo(payload, "Sofia Brown", 5).jpeg
        != render_badge_photo(payload, "Sofia Brown", 6).jpeg
    )


def test_rescue_budget_bounds_the_time_spent_on_a_hard_frame() -> None:
    """With a zero budget no rescue starts: the frame costs one zxing pass, and nothing is misread."""
    from hardware.camera import ReplaySource

    corpus = shared_path("data", "qr", "zxing-blackbox")
    images = sorted(Path(corpus).glob("qrcode-*/*.png"))
    unbounded, bounded = ScanPipeline(), ScanPipeline(ScanConfig(rescue_budget_ms=0.0))
    rescued = 0
    with ReplaySource(images) as source:
        for _ in images:
            frame = source.read()
            full, quick = unbounded.scan(frame), bounded.scan(frame)
            assert {c.data for c in quick.codes} <= {c.data for c in full.codes}
            rescued += len(full.codes) > len(quick.codes)
    assert rescued >= 1, "the corpus has frames only the rescue path reads"
