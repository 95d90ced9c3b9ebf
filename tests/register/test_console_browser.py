"""The console in a real browser: Debian's chromium driven by Selenium through chromium-driver.

A director logs in, reads the табель (every child, the numbers of ``kgate register tabel``), cannot
open another kindergarten's табель by editing the URL, enters an absence and submits; the district
official approves; the auditor reads the overview, flags and a device's log; a parent enters the code
and reports a day. Screenshots go to ``$KGATE_CONSOLE_SCREENSHOTS`` (docs/console/ when refreshing the
documentation), else to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from register.kindergartens import set_district
from tests.register.test_console import PASSWORD, Console, console  # noqa: F401 - the fixture
from tests.register.test_console_pages import MONTH, _cli_tabel
from tests.register.test_statement import built  # noqa: F401 - the fixture `console` uses

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which(CHROMIUM) and shutil.which(DRIVER)),
        reason="needs Debian's chromium and chromium-driver (provisioning/system-packages.sh dev has them)",
    ),
]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the pages' SQL runs on both backends in test_console_pages.py."""
    return f"sqlite:///{tmp_path / 'register.db'}"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--window-size=1100,800", f"--user-data-dir={tmp_path / 'prof'}")  # fmt: skip
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("KGATE_CONSOLE_SCREENSHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _login(driver: WebDriver, url: str, name: str) -> None:
    d = driver
    d.get(f"{url}/console/login")
    d.find_element(By.NAME, "name").send_keys(name)
    d.find_element(By.NAME, "password").send_keys(PASSWORD)
    d.find_element(By.CSS_SELECTOR, "form button").click()
    WebDriverWait(d, 10).until(lambda driver: driver.current_url.endswith("/console/"))


def _sees(d: WebDriver, text: str) -> bool:
    """Whether ``text`` appears on the page within 10 s (a click's navigation may still be loading)."""
    WebDriverWait(d, 10).until(lambda driver: text in driver.page_source)
    return True


def _logout(driver: WebDriver) -> None:
    driver.find_element(By.CSS_SELECTOR, "header form button").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("/console/login"))


def test_director_district_auditor_and_parent_in_a_browser(
    console: Console,  # noqa: F811
    browser: WebDriver,
    tmp_path: Path,
) -> None:
    d = browser
    shots = _shots(tmp_path)
    url = console.url
    _login(d, url, "dir1")
    d.save_screenshot(str(shots / "home.png"))
    d.get(f"{url}/console/k/K1/tabel?month={MONTH}")
    rows = {r.get_attribute("data-child"): r for r in d.find_elements(By.CSS_SELECTOR, "tr[data-child]")}
    counts = _cli_tabel(console.store_url)
    assert set(rows) == set(counts) == {"A", "B"}  # every child of the roster
    for child, present in counts.items():
        assert rows[child].find_element(By.CLASS_NAME, "present-total").text == str(present)
    d.save_screenshot(str(shots / "tabel.png"))
    # editing the URL to another kindergarten's табель: refused
    d.get(f"{url}/console/k/K2/tabel?month={MONTH}")
    assert "Не найдено" in d.page_source and "Other A" not in d.page_source
    # an absence with a reason from the fixed list, then submit
    d.get(f"{url}/console/k/K1/tabel?month={MONTH}")
    Select(d.find_element(By.NAME, "child")).select_by_value("B")
    Select(d.find_element(By.NAME, "date")).select_by_visible_text(f"{MONTH}-03")
    Select(d.find_element(By.NAME, "reason")).select_by_value("child_ill")
    d.find_element(By.CSS_SELECTOR, "fieldset button").click()
    assert _sees(d, "н:child_ill")
    d.find_element(By.ID, "submit").click()
    assert _sees(d, "submitted: dir1")
    assert not d.find_elements(By.ID, "approve")  # a director cannot approve
    d.set_window_size(390, 844)  # a phone
    d.save_screenshot(str(shots / "tabel-phone.png"))
    d.set_window_size(1100, 800)
    _logout(d)

    set_district(console.store, "K1", "Bostandyk")
    _login(d, url, "dist")
    d.get(f"{url}/console/k/K1/tabel?month={MONTH}")
    d.find_element(By.ID, "approve-reason").send_keys("absences checked with the director")
    d.find_element(By.ID, "approve").click()
    assert _sees(d, "approved: dist") and "Бекітілді" in d.page_source
    _logout(d)

    heartbeat = {"time_ms": 1_795_000_000_000, "free_disk_bytes": 5_123_456_789, "clock_synced": True,
                 "roster_version": 3, "pending": 2}  # fmt: skip
    console.store.touch(1, 1_795_000_000_000, heartbeat)
    _login(d, url, "aud")
    d.get(f"{url}/console/overview")
    assert "north" in d.page_source and "other" in d.page_source
    d.save_screenshot(str(shots / "overview.png"))
    d.get(f"{url}/console/k/K1/day?date={MONTH}-02")
    d.save_screenshot(str(shots / "day.png"))
    d.get(f"{url}/console/d/1")
    assert "reg.test/kgate/north" in d.page_source
    d.save_screenshot(str(shots / "device.png"))
    d.get(f"{url}/console/k/K1/flags?month={MONTH}")
    d.save_screenshot(str(shots / "flags.png"))
    first = d.find_element(By.CSS_SELECTOR, "fieldset form")
    first.find_element(By.NAME, "reason").send_keys("gate clock set before enrolment; checked on site")
    first.find_element(By.TAG_NAME, "button").click()
    assert _sees(d, "Cleared: aud — gate clock set before enrolment")
    assert not d.find_elements(By.ID, "submit") and not d.find_elements(By.ID, "approve")
    _logout(d)

    d.get(f"{url}/console/parent")
    d.find_element(By.NAME, "code").send_keys(console.code)
    d.find_element(By.CSS_SELECTOR, "form button").click()
    WebDriverWait(d, 10).until(lambda driver: "/parent/month" in driver.current_url)
    d.get(f"{url}/console/parent/month?month={MONTH}")
    d.find_element(By.CSS_SELECTOR, f'button.report[data-date="{MONTH}-02"]').click()
    WebDriverWait(d, 10).until(lambda driver: "/parent/not-there" in driver.current_url)  # confirm first
    d.find_element(By.NAME, "comment").send_keys("he stayed with his grandmother")
    d.find_element(By.CSS_SELECTOR, "button.confirm").click()
    WebDriverWait(d, 10).until(lambda driver: "reported=" in driver.current_url)
    assert d.find_elements(By.CSS_SELECTOR, f'button.withdraw[data-date="{MONTH}-02"]')
    d.save_screenshot(str(shots / "parent.png"))
    alarms = [a for a in console.store.alarms() if a.kind == "parent_report"]
    assert len(alarms) == 2  # the in and the out of that day
