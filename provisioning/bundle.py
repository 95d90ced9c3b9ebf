"""What ``kgate provision`` copies to a device: the wheelhouse, unit files, snippets and the step runner.

The kgate wheel is built here, on the technician's machine, from the checkout this kgate runs from (or
taken from ``--wheel``); its dependencies come as wheels too, so the device installs with ``--no-index``
and needs no access to PyPI. The wheelhouse's identity is a hash over the wheels' *contents* (zip
timestamps ignored), so a rebuilt but identical wheel does not count as a change on the device.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from provisioning.errors import BundleError

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent  # the checkout, when kgate runs from one
DEVICE_UNITS = ("kgate-terminal.service", "kgate-sync.service")
CAMERAS = ("picamera2", "opencv", "replay")
PIP_TIMEOUT_S = 600
GLIBC = 36  # bookworm's glibc 2.36: every manylinux_2_N up to it runs there


def platforms(arch: str) -> list[str]:
    """pip's ``--platform`` tags for a bookworm device: pip (23) does not expand manylinux tags itself."""
    tags = [f"manylinux_2_{n}_{arch}" for n in range(GLIBC, 16, -1)] + [f"manylinux2014_{arch}"]
    return [f"linux_{arch}", *tags] if arch == "armv7l" else [*tags, f"linux_{arch}"]


NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")
MAX_SDIST_ONLY = 8  # pure-Python dependencies published only as sdists, built into wheels here


@dataclass(frozen=True)
class DeviceFacts:
    """What the wheels must fit: the device's CPU and Python version."""

    arch: str
    python: tuple[int, int]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kgate" / "wheelhouse"


def _pip(*args: str) -> None:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
            capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BundleError(f"pip {args[0]} took longer than {PIP_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BundleError(f"pip {args[0]} failed: {tail[0]}")


def wheelhouse(facts: DeviceFacts, wheel: Path | None) -> Path:
    """A directory of kgate's wheel and all its dependencies for the device's platform (cached)."""
    native = facts.python == sys.version_info[:2] and facts.arch == os.uname().machine
    tag = f"cp{facts.python[0]}{facts.python[1]}-{facts.arch}"
    out = cache_dir() / tag
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("kgate-*.whl"):
        old.unlink()
    if wheel is not None:
        if not wheel.is_file() or not wheel.name.startswith("kgate-"):
            raise BundleError(f"--wheel {wheel}: not a kgate wheel file")
        shutil.copy2(wheel, out / wheel.name)
    elif (SOURCE / "pyproject.toml").is_file():
        build_wheel(out)
    else:
        raise BundleError("this kgate is not a source checkout: pass --wheel FILE (python -m pip wheel .)")
    built = next(out.glob("kgate-*.whl"))
    stamp, requires = out / ".requires", _requires(built)
    if stamp.exists() and stamp.read_text() == requires:
        return out  # the dependencies' wheels are already here
    if native:
        _pip("wheel", "--wheel-dir", str(out), str(built))
    else:
        _download_for(facts, out, built)
    stamp.write_text(requires)
    return out


def build_wheel(out: Path) -> Path:
    """kgate's wheel from a clean copy of the checkout: an in-tree build would reuse setuptools'
    ``build/``, which keeps modules deleted since, and could ship them to the gates."""
    with tempfile.TemporaryDirectory(prefix="kgate-source-") as tmp:
        src = Path(tmp) / "kgate"
        shutil.copytree(SOURCE, src, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
        _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(src))
    return next(out.glob("kgate-*.whl"))


def _download_for(facts: DeviceFacts, out: Path, built: Path) -> None:
    """A Pi from a PC: binary wheels for the device's platform (piwheels.org has armv7l ones).

    A dependency with no wheel on the index at all (face_recognition_models is an sdist of model
    files) is built here into a wheel; that is only right for pure Python, so anything else is refused.
    """
    plat = platforms(facts.arch)
    version = f"--python-version={facts.python[0]}.{facts.python[1]}"
    args = [f"--platform={p}" for p in plat]
    for _ in range(MAX_SDIST_ONLY):
        try:
            _pip("download", "--only-binary=:all:", *args, version, "--find-links", str(out),
                 "--dest", str(out), str(built))  # fmt: skip
            return
        except BundleError as exc:
            missing = re.search(r"No matching distribution found for (\S+)", str(exc))
            if missing is None:
                raise
            requirement = missing.group(1)
        before = set(out.glob("*.whl"))
        _pip("wheel", "--no-deps", "--wheel-dir", str(out), requirement)
        made = set(out.glob("*.whl")) - before
        if not made or any(not w.name.endswith("-none-any.whl") for w in made):
            for w in made:
                w.unlink()
            raise BundleError(
                f"{requirement} has no {facts.arch} wheel on the index and is not pure Python: "
                f"build its wheel on a {facts.arch} machine and put it in {out}"
            )
    raise BundleError(f"more than {MAX_SDIST_ONLY} dependencies without wheels: giving up")


def _requires(wheel: Path) -> str:
    """The wheel's ``Requires-Dist`` lines: when they are unchanged, so are the dependencies' wheels."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode("utf-8", "replace").splitlines()
    return "\n".join(sorted(line for line in lines if line.startswith("Requires-Dist:")))


def content_hash(wheels: Path) -> str:
    """SHA-256 over every wheel's member names and contents, in name order (not the zip timestamps)."""
    digest = hashlib.sha256()
    for whl in sorted(wheels.glob("*.whl")):
        digest.update(whl.name.encode() + b"\0")
        with zipfile.ZipFile(whl) as zf:
            for name in sorted(zf.namelist()):
                digest.update(name.encode() + b"\0" + hashlib.sha256(zf.read(name)).digest())
    return digest.hexdigest()


#: The head of the provisioned ``terminal.toml``: whose file it is and where local changes go.
HEADER = (
    "# Written by kgate provision, which owns this file and rewrites it on every run",
    "# (docs/provisioning.md; every setting: docs/terminal.md). Do not edit it here: put local",
    "# changes in /etc/kgate/terminal.toml.d/NAME.toml, merged over this file by the terminal",
    "# and never touched by provisioning. Options of kgate provision (--display, --panel, ...)",
    "# set the gate's tables below.",
)


def terminal_toml(camera: str) -> str:
    """``/etc/kgate/terminal.toml``; ``@ORIGIN@`` is filled in on the device after enrolment."""
    backend = camera.split(":", 1)[0]
    lines = [*HEADER, "[ledger]", "origin = @ORIGIN@", "", "[camera]", f'backend = "{backend}"']
    if backend == "replay":
        lines.append('paths = ["camera"]')  # /etc/kgate/camera, copied by the config step
    return "\n".join(lines) + "\n"


def build(dest: Path, facts: DeviceFacts, *, wheel: Path | None, camera: str, wheels: bool = True) -> str:
    """Fill ``dest`` with everything the device needs; returns the wheelhouse hash.

    ``wheels=False`` (a local root, :mod:`provisioning.local`) leaves the wheelhouse out: the device end
    uses the kgate of the Python that runs it; the hash is then empty.
    """
    backend, _, replay = camera.partition(":")
    if backend not in CAMERAS or (backend == "replay") != bool(replay):
        raise BundleError(f"--camera {camera!r}: expected picamera2, opencv or replay:IMAGE")
    dest.mkdir(parents=True, exist_ok=True)
    digest = ""
    if wheels:
        cache_dir().mkdir(parents=True, exist_ok=True)
        # The cache is shared by every kgate on this machine (parallel runs, other checkouts): build and
        # copy under one lock, so no other run swaps the kgate wheel between the two.
        with open(cache_dir() / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            house = wheelhouse(facts, wheel)
            shutil.copytree(house, dest / "wheels")
        digest = content_hash(dest / "wheels")
        (dest / "wheelhouse.sha256").write_text(digest + "\n")
    shutil.copy2(HERE / "device.py", dest / "device.py")
    shutil.copy2(HERE / "system-packages.sh", dest / "system-packages.sh")
    units = HERE / "systemd"  # the checkout's systemd/ (a link to it), or the wheel's copy (package data)
    for unit in DEVICE_UNITS:
        shutil.copy2(units / unit, dest / unit)
    shutil.copy2(units / "sysusers.d" / "kgate.conf", dest / "sysusers.conf")
    shutil.copy2(units / "tmpfiles.d" / "kgate.conf", dest / "tmpfiles.conf")
    (dest / "terminal.toml").write_text(terminal_toml(camera), encoding="utf-8")
    if replay:
        src = Path(replay)
        if not src.is_file():
            raise BundleError(f"--camera replay:{replay}: no such image file")
        (dest / "camera").mkdir()
        shutil.copy2(src, dest / "camera" / src.name)
    return digest
