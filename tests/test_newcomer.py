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


README = Path(__file__).resolve().parents[1] / "README.md"
SECTIONS = ("## After the demo", "## From the demo to a first kindergarten")


def _readme_commands() -> list[str]:
    """The ``kgate …`` commands of the README's newcomer sections: shell blocks and inline code."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTIONS[0])
    body = text[start : text.index("\n## ", text.index(SECTIONS[1]) + 1)]
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.split(" # ")[0].split(" > ")[0].strip()
            if line.startswith("kgate "):
                found.append(line)
    # inline code with options is a command too (a bare `kgate demo` is a name, not a command line)
    found += [c for c in re.findall(r"`(kgate [^`]+)`", body) if " --" in c and "…" not in c]
    return found


def test_the_readmes_newcomer_commands_exist() -> None:
    """Every command the two sections show parses with kgate's own parser (options and arguments exist)."""
    from kgate.cli import build_parser

    commands = _readme_commands()
    assert len(commands) >= 12 and any(c.startswith("kgate provision ") for c in commands)
    for command in commands:
        words = shlex.split(command)
        try:
            build_parser().parse_args(words[1:])
        except SystemExit as exc:
            pytest.fail(f"README command does not parse ({exc.code}): {command}")
