"""The system OpenSSH client as the transport: host keys checked, batch mode, every call with a timeout.

Host-key checking is always on (``StrictHostKeyChecking=yes``); trust on first use only with
``accept_new`` (``accept-new``: a CHANGED key is still refused). Nothing here ever reads a secret from
the device: commands return their stdout, which the caller parses.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.errors import SshError
from provisioning.provision import shown

CONNECT_TIMEOUT_S = 15


@dataclass
class Ssh:
    """One device reached as ``[user@]host``; ``transcript`` collects everything ssh printed."""

    host: str
    port: int | None = None
    identity: Path | None = None
    known_hosts: Path | None = None
    accept_new: bool = False
    transcript: list[str] = field(default_factory=list)
    python = "python3"  # the device's system Python runs device.py (standard library only)
    as_root = True
    wheels = True

    def device_flags(self) -> list[str]:
        return []

    def options(self) -> list[str]:
        opts = [
            "-o", "BatchMode=yes",
            "-o", f"StrictHostKeyChecking={'accept-new' if self.accept_new else 'yes'}",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        if self.known_hosts is not None:
            opts += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        if self.identity is not None:
            opts += ["-o", "IdentitiesOnly=yes", "-i", str(self.identity)]
        return opts

    def run(
        self, command: str, *, stdin: str | None = None, timeout: float = 60, ok: Sequence[int] = (0,)
    ) -> tuple[int, str]:
        """Run ``command`` (a shell line) on the device; returns (exit status, stdout)."""
        argv = ["ssh", *self.options()]
        if self.port is not None:
            argv += ["-p", str(self.port)]
        argv += [self.host, command]
        try:
            proc = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise SshError(f"no answer from {self.host} within {timeout:.0f} s") from None
        self.transcript += [proc.stdout, proc.stderr]
        if proc.returncode == 255 or proc.returncode not in ok:
            self._raise(proc)
        return proc.returncode, proc.stdout

    def _raise(self, proc: subprocess.CompletedProcess[str]) -> None:
        err = proc.stderr
        if "host key" in err.lower() or "IDENTIFICATION HAS CHANGED" in err:
            raise SshError(
                f"the host key of {self.host} is unknown or has changed; refusing to connect (check it, then "
                "put it in --known-hosts, or pass --accept-new on the very first contact)"
            )
        lines = err.strip().splitlines() or [f"exit status {proc.returncode}"]
        raise SshError(f"ssh {self.host}: {shown(lines[-1])}")  # the device's words, escaped

    def copy(self, local: Path, remote: str, *, timeout: float = 600) -> None:
        """Copy a file or directory to ``remote`` on the device (scp -r)."""
        argv = ["scp", "-q", "-r", *self.options()]
        if self.port is not None:
            argv += ["-P", str(self.port)]
        argv += [str(local), f"{_bracket(self.host)}:{remote}"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise SshError(f"copying to {self.host} took longer than {timeout:.0f} s") from None
        self.transcript += [proc.stdout, proc.stderr]
        if proc.returncode != 0:
            self._raise(proc)


def _bracket(host: str) -> str:
    """``[user@]host`` in the form scp wants (an IPv6 literal in brackets)."""
    user, at, name = host.rpartition("@")
    return f"{user}{at}[{name}]" if ":" in name else host
