"""The local transport: a directory on this machine stands in for a device's ``/``.

:func:`provisioning.provision.provision` drives it exactly as it drives :class:`~provisioning.ssh.Ssh`:
the bundle is copied to a ``mktemp`` directory, ``device.py`` runs with the settings (token included)
on stdin, its JSON lines come back. Only the device end differs: ``device.py --root DIR`` runs as the
calling user with the Python that runs this kgate, so it needs neither root nor SSH (``kgate demo``
provisions its simulated gate this way). What a directory root cannot have (apt, a service user, a
running service manager) its steps report as ``skipped``; see :mod:`provisioning.device`.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.errors import ProvisionError
from provisioning.provision import shown


@dataclass
class LocalRoot:
    """A directory root on this machine; ``transcript`` collects everything the commands printed."""

    root: Path
    transcript: list[str] = field(default_factory=list)
    as_root = False  # device.py runs as the calling user: never through sudo
    wheels = False  # it uses the running Python's kgate: no wheelhouse to build or copy

    def __post_init__(self) -> None:
        self.root = self.root.resolve()

    @property
    def host(self) -> str:
        return f"local root {self.root}"

    @property
    def python(self) -> str:
        return shlex.quote(sys.executable)

    def device_flags(self) -> list[str]:
        return ["--root", shlex.quote(str(self.root))]

    def run(
        self, command: str, *, stdin: str | None = None, timeout: float = 60, ok: Sequence[int] = (0,)
    ) -> tuple[int, str]:
        """Run ``command`` (a shell line) here; returns (exit status, stdout)."""
        try:
            proc = subprocess.run(
                ["/bin/sh", "-c", command], input=stdin, capture_output=True, text=True, timeout=timeout,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ProvisionError(f"{self.host}: no answer within {timeout:.0f} s") from None
        self.transcript += [proc.stdout, proc.stderr]
        if proc.returncode not in ok:
            lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
            raise ProvisionError(f"{self.host}: {shown(lines[-1])}")
        return proc.returncode, proc.stdout

    def copy(self, local: Path, remote: str, *, timeout: float = 600) -> None:
        """Copy a directory into ``remote`` (as ``scp -r`` does)."""
        shutil.copytree(local, Path(remote) / local.name)
