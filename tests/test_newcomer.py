"""The newcomer's path: the commands ``kgate demo`` prints work as printed, from a shell where ``kgate`` is
not on ``PATH`` (as after ``provisioning/workstation.sh demo``, which installs ``.venv/bin/kgate``)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

SCRIPT = Path(sys.executable).parent / "kgate"  # the venv's console script, as workstation.sh runs it


def _env() -> dict[str, str]:
    """PATH without the venv's bin: ``kgate`` alone is "command not found" there."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != SCRIPT.parent.resolve()
    )
    return env


def _run(words: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        words, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.skipif(not SCRIPT.is_file(), reason="kgate is not installed as a console script in this venv")
def test_the_demos_printed_commands_work_as_printed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # not the repository root: a relative .venv/bin/kgate would fail
    elsewhere.mkdir()
    out = tmp_path / "demo out"  # a space: the printed paths must be quoted
    demo = _run([str(SCRIPT), "demo", "--children", "3", "--out", str(out)], elsewhere)
    assert demo.returncode == 0, demo.stderr
    text = demo.stdout
    try_line = next(line for line in text.splitlines() if line.startswith("Try: "))
    commands = try_line.removeprefix("Try: ").split("   or   ")
    commands.append(re.search(r"verify: (.+)$", text, re.M)[1])  # type: ignore[index]
    commands.append(re.search(r"auditors \((.+ register alarms .+)\), the day", text)[1])  # type: ignore[index]
    serve = re.search(r"console: +(.+?)   then open (\S+)", text)
    assert serve is not None and len(commands) == 4
    for command in [*commands, serve[1]]:
        words = shlex.split(command)
        assert words[0] != "kgate" and Path(words[0]).is_absolute()  # kgate is not on PATH here
    for command in commands:
        done = _run(shlex.split(command), elsewhere)
        assert done.returncode == 0, f"{command}: {done.stderr}"
    # the console command as printed (another port: 8470 may be taken on a shared machine)
    port = free_port()
    words = [*shlex.split(serve[1]), "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        words, cwd=elsewhere, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        login = serve[2].replace(":8470/", f":{port}/")
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
            try:
                page = requests.get(login, timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the printed console command did not start serving"
                time.sleep(0.1)
        assert page.status_code == 200 and 'name="password"' in page.text
    finally:
        proc.terminate()
        proc.wait(30)
