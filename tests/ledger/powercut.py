"""A SQLite VFS (through APSW) that simulates power loss: only what was fsynced survives.

APSW and Python's ``sqlite3`` must share one SQLite library (Debian's python3-apsw and the system
Python both link the system libsqlite3), so registering this VFS with APSW lets the ledger's real code
— stdlib ``sqlite3`` plus sqlite-utils — run on it unchanged via ``file:...?vfs=powercut``.

Per file it keeps the durable image (what the last xSync made durable) and the writes since. A cut
makes every further I/O fail (the machine is dead), then rewrites each file as its durable image plus
a random, possibly torn, subset of the unsynced writes (disks persist some unsynced data, in any
order, in 512-byte sectors), and removes the ``-shm`` file.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

SECTOR = 512


@dataclass
class _FileState:
    durable: bytearray
    pending: list[tuple[str, int, bytes]] = field(default_factory=list)


class PowerCutVFS(apsw.VFS):  # type: ignore[misc,unused-ignore]
    """Register once per process; ``arm(n)`` cuts the power at the n-th write from now."""

    def __init__(self, name: str = "powercut") -> None:
        self.vfs_name = name
        self.files: dict[str, _FileState] = {}
        self.countdown: int | None = None
        self.dead = False
        self.cuts = 0
        self.phase = "append"  # set by the test around what it is doing, so a cut can be attributed
        self.cut_phase: str | None = None  # the phase in which the armed cut fired
        self.cut_path: str | None = None  # the file whose I/O the armed cut interrupted
        super().__init__(name, "")

    def arm(self, writes: int | None) -> None:
        self.countdown = writes
        self.dead = False
        self.cut_phase = self.cut_path = None

    def tick(self, path: str) -> None:
        if self.dead:
            raise apsw.IOError("power is off")
        if self.countdown is not None:
            self.countdown -= 1
            if self.countdown <= 0:
                self.dead = True
                self.cut_phase, self.cut_path = self.phase, path
                raise apsw.IOError("power cut")

    def state(self, path: str) -> _FileState:
        st = self.files.get(path)
        if st is None:
            data = Path(path).read_bytes() if os.path.exists(path) else b""
            st = self.files[path] = _FileState(bytearray(data))
        return st

    def xOpen(self, name: Any, flags: list[int]) -> PowerCutFile:
        path = name.filename() if hasattr(name, "filename") else name
        return PowerCutFile(self, path, name, flags)

    def xDelete(self, filename: str, syncdir: bool) -> None:
        if self.dead:
            return  # with the power off nothing happens, not even a failed delete
        super().xDelete(filename, syncdir)
        self.files.pop(filename, None)

    def power_cut(self, rng: random.Random) -> None:
        """Leave on disk what a real disk could hold after losing power now."""
        self.dead = True
        for path, st in self.files.items():
            image = bytearray(st.durable)
            for op, offset, data in st.pending:
                if rng.random() < 0.5:
                    continue  # this unsynced write never reached the platter
                if op == "t":
                    del image[offset:]
                    continue
                kept = data
                if rng.random() < 0.3 and len(data) > SECTOR:
                    kept = data[: SECTOR * rng.randrange(1, len(data) // SECTOR + 1)]  # torn write
                _write(image, offset, kept)
            Path(path).write_bytes(bytes(image))
            if path.endswith("-wal") and not image:
                Path(path).unlink()
        shm = [p + "-shm" for p in self.files if not p.endswith(("-wal", "-shm"))]
        for p in shm:
            Path(p).unlink(missing_ok=True)
        self.files.clear()
        self.cuts += 1


def _write(image: bytearray, offset: int, data: bytes) -> None:
    if len(image) < offset:
        image.extend(b"\x00" * (offset - len(image)))
    image[offset : offset + len(data)] = data


class PowerCutFile(apsw.VFSFile):  # type: ignore[misc,unused-ignore]
    def __init__(self, vfs: PowerCutVFS, path: str, name: Any, flags: list[int]) -> None:
        self.vfs = vfs
        self.path = path
        vfs.tick(path)
        super().__init__("", name, flags)
        self.track = not path.endswith("-shm")
        if self.track:
            vfs.state(path)

    def xWrite(self, data: bytes, offset: int) -> None:
        self.vfs.tick(self.path)
        super().xWrite(data, offset)
        if self.track:
            self.vfs.state(self.path).pending.append(("w", offset, bytes(data)))

    def xTruncate(self, size: int) -> None:
        self.vfs.tick(self.path)
        super().xTruncate(size)
        if self.track:
            self.vfs.state(self.path).pending.append(("t", size, b""))

    def xSync(self, flags: int) -> None:
        self.vfs.tick(self.path)
        super().xSync(flags)
        if self.track:
            st = self.vfs.state(self.path)
            for op, offset, data in st.pending:
                if op == "t":
                    del st.durable[offset:]
                else:
                    _write(st.durable, offset, data)
            st.pending.clear()
