"""Frames in, QR payloads out: the terminal's scanning pipeline (see ``docs/scanning.md``)."""

from terminal.scan.code import DecodedCode, ScanResult
from terminal.scan.pipeline import ScanConfig, ScanPipeline, scan_images

__all__ = ["DecodedCode", "ScanConfig", "ScanPipeline", "ScanResult", "scan_images"]
