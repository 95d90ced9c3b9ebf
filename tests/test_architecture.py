"""The import rule of docs/architecture.md holds: import-linter's contracts pass on the real tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is not installed (pip install -e '.[dev]')"
    return found


def _contracts() -> dict[str, object]:
    config: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config


def test_import_contracts_are_kept() -> None:
    out = subprocess.run(
        [_lint_imports(), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_every_package_and_base_module_has_a_layer() -> None:
    """A new top-level package or ``kgate/`` module must be placed in the rule, not slip past it."""
    config = _contracts()
    roots = set(config["root_packages"])  # type: ignore[call-overload]
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert on_disk <= roots, f"packages missing from [tool.importlinter] root_packages: {on_disk - roots}"
    layered: set[str] = set()
    for contract in config["contracts"]:  # type: ignore[attr-defined]
        for layer in contract.get("layers", []):
            for name in layer.replace("|", ":").split(":"):
                layered.add(name.strip().strip("()"))
    kgate_modules = {f"kgate.{p.stem}" for p in (ROOT / "kgate").glob("*.py") if p.stem != "__init__"}
    missing = (kgate_modules | (roots - {"kgate"})) - layered
    assert not missing, f"not placed in any layer of docs/architecture.md's rule: {sorted(missing)}"
