"""``terminal.toml.d/*.toml``: local changes merged over the provisioned ``terminal.toml``."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.config import ConfigError, load_config, merge_dropins

BASE = """\
[ledger]
origin = "reg.test/kgate/k-gate"
[gate]
language = "kk"
pickup = "guardian"
[screen]
width = 800
height = 480
[display]
backend = "framebuffer"
[feedback]
green_pin = 17
red_pin = 27
buzzer_pin = 22
"""


def write(tmp_path: Path, dropins: dict[str, str]) -> Path:
    etc = tmp_path / "etc"
    (etc / "terminal.toml.d").mkdir(parents=True)
    (etc / "terminal.toml").write_text(BASE, encoding="utf-8")
    for name, text in dropins.items():
        (etc / "terminal.toml.d" / name).write_text(text, encoding="utf-8")
    return etc / "terminal.toml"


def test_without_dropins_the_file_is_read_as_it_is(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {}))
    assert config.display.backend == "framebuffer" and config.screen.size == (800, 480)
    assert config.gate.pickup == "guardian"


def test_a_dropin_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, {"local.toml": '[display]\nbackend = "null"\n[screen]\nwidth = 1024\n'})
    )
    assert config.display.backend == "null"
    assert config.screen.size == (1024, 480)  # height from terminal.toml
    assert config.gate.language == "kk" and config.gate.pickup == "guardian"  # other tables kept whole
    assert config.feedback is not None and (config.feedback.green_pin, config.feedback.red_pin) == (17, 27)
    assert config.ledger.origin == "reg.test/kgate/k-gate"


def test_dropins_apply_in_name_order_and_only_toml_files(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {
        "10-ru.toml": '[gate]\nlanguage = "ru"\n',
        "20-en.toml": '[gate]\nlanguage = "en"\n',
        "30-notes.txt": "not toml at all [",
        "15-relay.toml": "[feedback]\nrelay_pin = 24\n",
    }))  # fmt: skip
    assert config.gate.language == "en"
    assert config.feedback is not None and config.feedback.relay_pin == 24


def test_a_bad_dropin_is_refused_naming_the_key_or_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^display\.colour: unknown setting$"):
        load_config(write(tmp_path / "a", {"local.toml": '[display]\ncolour = "red"\n'}))
    with pytest.raises(ConfigError, match=r"local\.toml"):
        load_config(write(tmp_path / "b", {"local.toml": "[display\n"}))
    with pytest.raises(ConfigError, match=r"^feedback\.red_pin: GPIO17 is already feedback\.green_pin$"):
        load_config(write(tmp_path / "c", {"local.toml": "[feedback]\nred_pin = 17\n"}))


def test_merge_replaces_values_and_merges_tables_without_changing_its_arguments() -> None:
    below = {"a": {"x": 1, "y": {"deep": 1, "keep": 2}}, "b": [1, 2], "c": "s"}
    over = {"a": {"y": {"deep": 3}}, "b": [3], "d": True}
    merged = merge_dropins(below, over)
    assert merged == {"a": {"x": 1, "y": {"deep": 3, "keep": 2}}, "b": [3], "c": "s", "d": True}
    assert below == {"a": {"x": 1, "y": {"deep": 1, "keep": 2}}, "b": [1, 2], "c": "s"}
    assert over == {"a": {"y": {"deep": 3}}, "b": [3], "d": True}
