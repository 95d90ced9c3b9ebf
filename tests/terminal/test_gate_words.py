"""The gate's words, read off the card the real gate made: a QR payload -> Gate -> roster + ledger -> card.

Each message is checked in kk, ru and en (:func:`terminal.screen.card.card_text` is exactly what
:func:`~terminal.screen.card.render_card` draws) and rendered; ``KGATE_SCREENS_DIR=DIR`` keeps the PNGs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image

from hardware.camera import ReplaySource
from hardware.display import NullDisplay
from hardware.feedback import FeedbackConfig, GpioFeedback, NullFeedback
from kgate.cli import main as kgate_main
from ledger.clock import FakeClock
from ledger.entry import Entry, decode_entry
from ledger.store import Ledger, open_ledger
from terminal.badge import encode_badge, new_serial
from terminal.decide import DecideConfig, Decider
from terminal.gate import Gate, OutcomeKind
from terminal.i18n import LANGUAGES
from terminal.pickup import Pickup, PickupPolicy
from terminal.roster import Roster, RosterError, load_roster, parse_roster
from terminal.scan.pipeline import ScanPipeline
from terminal.screen import CardKind, GateScreen, ScreenConfig, TodayList, theme
from terminal.screen.card import card_text
from terminal.screen.samples import STATUS, synthetic_frame
from terminal.screen.today import COLUMNS_PER_PAGE, CONTINUED, today_columns
from terminal.service import TODAY_PAGE_SECONDS, TerminalService
from terminal.today import today_from_ledger

TZ = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 2, 8, 0, tzinfo=TZ)
EVENING = 9 * 3600
FAST = FeedbackConfig(accept_seconds=0.01, refuse_seconds=0.01, beep_seconds=0.01)
ARUZHAN, IVAN, DANA, BORIS, OLD = (new_serial() for _ in range(5))
ROSTER: dict[str, Any] = {
    "version": 7,
    "kindergarten": "k-7",
    "children": [
        {"id": "c-1", "name": "Аружан Сәрсенбай", "group": "Күншуақ"},
        {"id": "c-2", "name": "Иван Петров", "group": "Күншуақ"},
    ],
    "guardians": [
        {"id": "g-dana", "name": "Дана Сәрсенбай", "children": ["c-1"]},
        {"id": "g-boris", "name": "Борис Петров", "children": ["c-2"]},
        {"id": "g-old", "name": "Ержан Сәрсенбай", "children": ["c-1"]},
    ],
    "badges": [
        {"serial": ARUZHAN, "child": "c-1"},
        {"serial": IVAN, "child": "c-2"},
        {"serial": DANA, "guardian": "g-dana"},
        {"serial": BORIS, "guardian": "g-boris"},
        {"serial": OLD, "guardian": "g-old", "revoked": True},
    ],
}
HELLO = {
    "kk": "Сәлем, Аружан Сәрсенбай!",
    "ru": "Привет, Аружан Сәрсенбай!",
    "en": "Hello, Аружан Сәрсенбай!",
}
GOODBYE = {
    "kk": "Сау бол, Аружан Сәрсенбай!",
    "ru": "До свидания, Аружан Сәрсенбай!",
    "en": "Goodbye, Аружан Сәрсенбай!",
}
CHILD = {"kk": "Бала: Аружан Сәрсенбай", "ru": "Ребёнок: Аружан Сәрсенбай", "en": "Child: Аружан Сәрсенбай"}
GROUP = {"kk": "«Күншуақ» тобы", "ru": "группа «Күншуақ»", "en": "Күншуақ group"}


def badge(serial: str) -> bytes:
    return encode_badge(serial).encode()


def evening(ledger: Ledger) -> list[Entry]:
    """Entries after the morning check-ins of both children."""
    return [decode_entry(data) for data in ledger.entries(2, ledger.size)]


@pytest.fixture(scope="module")
def screen() -> GateScreen:
    return GateScreen()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("KGATE_SCREENS_DIR")
    path = Path(keep) if keep else tmp_path_factory.mktemp("words")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(int(MORNING.timestamp() * 1000))


@pytest.fixture
def write_roster(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(doc: dict[str, Any]) -> Path:
        path = tmp_path / "roster.json"
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def roster(tmp_path: Path, write_roster: Callable[[dict[str, Any]], Path]) -> Iterator[Roster]:
    with load_roster(tmp_path / "roster.db", write_roster(ROSTER)) as r:
        yield r


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Iterator[Ledger]:
    with open_ledger(tmp_path / "ledger.db", origin="reg.example/kgate/gate1", clock=clock) as led:
        yield led


@pytest.fixture
def make_gate(ledger: Ledger, roster: Roster, clock: FakeClock) -> Iterator[Callable[..., Gate]]:
    """A gate in ``lang``; with ``pickup="guardian"`` both children checked in this morning, now 17:00."""
    factory = MockFactory()
    feedbacks: list[GpioFeedback] = []

    def make(lang: str, pickup: str = "off") -> Gate:
        feedback = GpioFeedback(FAST, pin_factory=factory)
        feedbacks.append(feedback)
        decider = Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock)
        policy = Pickup(roster, PickupPolicy(pickup)) if pickup != "off" else None
        gate = Gate(
            ledger, decider, feedback, lang=lang, pickup=policy, monotonic=lambda: clock.mono_ns / 1e9
        )
        if pickup != "off":
            for child in (ARUZHAN, IVAN):
                assert gate.handle([badge(child)]).kind is OutcomeKind.ACCEPTED
            clock.advance(EVENING)
        return gate

    yield make
    for feedback in feedbacks:
        feedback.close()
    factory.reset()


def panel(screen: GateScreen, gate: Gate, shots: Path, name: str) -> np.ndarray[Any, Any]:
    """Render the gate's current screen (as the service does), save it, and return the card panel."""
    image = screen.render(gate.screen_state(synthetic_frame()))
    image.save(shots / f"{name}.png")
    assert gate.card is not None
    box = screen.layout.panel
    share = _share(image, box, theme.CARD_FILL[gate.card.kind])
    assert share > 0.4, f"{name}: the card fills {share:.0%} of the panel"
    return np.asarray(image.crop(box))


def _share(image: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> float:
    pixels = np.asarray(image.crop(box)).reshape(-1, 3).astype(int)
    return float((np.abs(pixels - np.array(colour)).sum(axis=1) < 60).mean())


# -- 1. goodbye on check-out ---------------------------------------------------------------------------
@pytest.mark.parametrize("lang", LANGUAGES)
def test_check_out_says_goodbye(  # noqa: PLR0917 - fixtures and parameters
    make_gate: Callable[..., Gate],
    clock: FakeClock,
    ledger: Ledger,
    screen: GateScreen,
    shots: Path,
    lang: str,
) -> None:
    gate = make_gate(lang)
    assert gate.handle([badge(ARUZHAN)]).kind is OutcomeKind.ACCEPTED
    assert gate.card is not None
    morning = card_text(gate.card)
    assert morning.headline == HELLO[lang]
    arrived = panel(screen, gate, shots, f"words-check-in-{lang}")

    clock.advance(EVENING)
    assert gate.handle([badge(ARUZHAN)]).kind is OutcomeKind.ACCEPTED
    assert [decode_entry(e).kind for e in ledger.entries(0, ledger.size)] == ["in", "out"]
    assert gate.card is not None and gate.card.kind is CardKind.ACCEPTED
    text = card_text(gate.card)
    assert text.headline == GOODBYE[lang]
    assert text.lines == (GROUP[lang],)
    assert HELLO[lang] not in text.all() and morning.footer != text.footer  # "✓ checked out"
    left = panel(screen, gate, shots, f"words-check-out-{lang}")
    assert not np.array_equal(arrived, left)

    clock.advance(5)  # the badge is still in front of the camera: a repeat, still a goodbye
    assert gate.handle([badge(ARUZHAN)]).kind is OutcomeKind.REPEAT
    assert gate.card is not None and card_text(gate.card).headline == GOODBYE[lang]


# -- 2. a pickup refusal that says who is who -------------------------------------------------------------
UNAUTHORIZED = {
    "kk": "Бұл ересек осы баланың уәкілетті өкілі емес",
    "ru": "Этот взрослый не вправе забирать этого ребёнка",
    "en": "Not an authorised guardian for this child",
}
ADULT = {"kk": "Ересек: {}", "ru": "Взрослый: {}", "en": "Adult: {}"}
REVOKED = {
    "kk": "Ересектің бейджігінің күші жойылған",
    "ru": "Бейдж взрослого отозван: забрать нельзя",
    "en": "This adult's badge is revoked: no pickup",
}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pickup_refusal_names_the_child_and_the_adult(  # noqa: PLR0917 - fixtures and parameters
    make_gate: Callable[..., Gate],
    clock: FakeClock,
    ledger: Ledger,
    screen: GateScreen,
    shots: Path,
    lang: str,
) -> None:
    gate = make_gate(lang, pickup="guardian")
    assert gate.handle([badge(BORIS), badge(ARUZHAN)]).kind is OutcomeKind.REFUSED
    (rejected,) = evening(ledger)
    assert (rejected.reason, rejected.child, rejected.evidence["guardian"]) == (
        "pickup_unauthorized",
        "c-1",
        "g-boris",
    )
    assert gate.card is not None and gate.card.kind is CardKind.REFUSED
    text = card_text(gate.card)
    assert text.headline == UNAUTHORIZED[lang]
    assert text.lines == (CHILD[lang], GROUP[lang], ADULT[lang].format("Борис Петров"))
    named = panel(screen, gate, shots, f"words-pickup-unauthorized-{lang}")

    clock.advance(120)  # a revoked guardian badge with the child: named too
    assert gate.handle([badge(OLD), badge(ARUZHAN)]).kind is OutcomeKind.REFUSED
    assert evening(ledger)[-1].reason == "guardian_revoked"
    assert gate.card is not None
    text = card_text(gate.card)
    assert text.headline == REVOKED[lang]
    assert text.lines == (CHILD[lang], GROUP[lang], ADULT[lang].format("Ержан Сәрсенбай"))
    assert not np.array_equal(named, panel(screen, gate, shots, f"words-pickup-revoked-{lang}"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pickup_prompts_say_who_is_waiting(
    make_gate: Callable[..., Gate], clock: FakeClock, lang: str
) -> None:
    gate = make_gate(lang, pickup="guardian")
    assert gate.handle([badge(DANA)]).kind is OutcomeKind.PENDING  # the adult first
    assert gate.card is not None
    assert card_text(gate.card).lines == (ADULT[lang].format("Дана Сәрсенбай"),)
    clock.advance(60)  # too late for Dana: the child alone waits for an adult
    assert gate.handle([badge(ARUZHAN)]).kind is OutcomeKind.PENDING
    assert gate.card is not None
    assert card_text(gate.card).lines == (CHILD[lang], GROUP[lang])


# -- 3. the staff "today" list names every absent child ---------------------------------------------------
GROUPS = ("Балапан", "Күншуақ", "Ақбота")
FIRST = ("Аружан", "Әлихан", "Ұлжан", "Іңкәр", "Нұрлан", "Зере", "Данияр", "Мария", "Ғалым", "Өмір", "Айгүл")
LAST = ("Сәрсенбай", "Қасымова", "Нұрланұлы", "Иванова")


def big_roster() -> tuple[dict[str, Any], dict[str, str]]:
    """Three groups of 24 children (names told apart by a number); their badge serials by child id."""
    serials: dict[str, str] = {}
    children = []
    for g, group in enumerate(GROUPS):
        for n in range(24):
            cid = f"c-{g}-{n:02d}"
            name = f"{FIRST[n % len(FIRST)]} {LAST[(n + g) % len(LAST)]} {g}{n:02d}"
            children.append({"id": cid, "name": name, "group": group})
            serials[cid] = new_serial()
    badges = [{"serial": s, "child": c} for c, s in serials.items()]
    return {"version": 9, "children": children, "badges": badges}, serials


def absent_ones(child_id: str) -> bool:
    return int(child_id[-2:]) % 5 == 1  # 5 of each 24


def left_ones(child_id: str) -> bool:
    return int(child_id[-2:]) % 4 == 0


def sections_of(columns: list[Any]) -> dict[str, tuple[str, str]]:
    """Child line text -> (section heading, group) as the columns lay them out."""
    seen: dict[str, tuple[str, str]] = {}
    for column in columns:
        group = head = ""
        for row in column:
            if row.kind == "group":
                group = row.text.removeprefix(f"{CONTINUED} ")
            elif row.kind == "head":
                head = row.text.rsplit(" (", 1)[0]
            elif row.kind == "child":
                assert row.text not in seen, f"{row.text} listed twice"
                seen[row.text] = (head, group)
    return seen


@dataclass
class BigDay:
    """Three groups of 24 at 14:30: the absent ones never came, some went home after lunch."""

    roster: Roster
    ledger: Ledger
    names: dict[str, str]
    listing: TodayList


@pytest.fixture
def big_day(
    tmp_path: Path, write_roster: Callable[[dict[str, Any]], Path], clock: FakeClock
) -> Iterator[BigDay]:
    doc, serials = big_roster()
    with (
        load_roster(tmp_path / "big.db", write_roster(doc)) as roster,
        open_ledger(tmp_path / "big-ledger.db", origin="reg.example/kgate/gate1", clock=clock) as ledger,
    ):
        gate = Gate(ledger, Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock), NullFeedback())
        for cid, serial in serials.items():  # the morning: everyone but the absent ones comes in
            if not absent_ones(cid):
                clock.advance(20)
                assert gate.handle([badge(serial)]).kind is OutcomeKind.ACCEPTED
        clock.advance(6 * 3600)
        for cid, serial in serials.items():  # after lunch some go home
            if left_ones(cid) and not absent_ones(cid):
                clock.advance(20)
                assert gate.handle([badge(serial)]).kind is OutcomeKind.ACCEPTED
        listing = today_from_ledger(ledger, MORNING.date(), TZ).today_list(roster.children())
        yield BigDay(roster, ledger, {c.id: c.name for c in roster.children()}, listing)


@pytest.mark.parametrize("size", [(800, 480), (1024, 600)])
def test_today_screen_lists_every_child_by_name(big_day: BigDay, shots: Path, size: tuple[int, int]) -> None:
    listing, names = big_day.listing, big_day.names
    screen = GateScreen(ScreenConfig(width=size[0], height=size[1]))
    words = {
        "kk": ("Келмеді", "Балабақшада", "Кетті"),
        "ru": ("Нет", "В саду", "Ушли"),
        "en": ("Absent", "In", "Left"),
    }
    for lang in LANGUAGES:
        columns = today_columns(listing, lang, screen.layout, screen.faces)
        seen = sections_of(columns)
        absent_word, in_word, left_word = words[lang]
        for cid, name in names.items():
            group = GROUPS[int(cid[2])]
            if absent_ones(cid):
                assert seen[name] == (absent_word, group), f"{lang}: absent {name} not listed by name"
            elif left_ones(cid):
                line = next(text for text in seen if text.endswith(f"  {name}"))
                assert "–" in line and seen[line] == (left_word, group)
            else:
                line = next(text for text in seen if text.endswith(f"  {name}"))
                assert seen[line] == (in_word, group) and "–" not in line
        assert len(seen) == len(names) == 72
        assert not any("+" in row.text for column in columns for row in column)
        pages = screen.today_page_count(listing, lang)
        assert pages == -(-len(columns) // COLUMNS_PER_PAGE) and pages > 1  # 72 children need pages
        images = [screen.render_today(listing, lang, STATUS, page) for page in range(pages)]
        for n, image in enumerate(images, 1):
            image.save(shots / f"today-{size[0]}x{size[1]}-{lang}-{n}.png")
            assert image.size == size
        assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
        assert np.array_equal(
            np.asarray(images[0]), np.asarray(screen.render_today(listing, lang, STATUS, pages))
        )


def test_the_service_turns_the_today_pages(big_day: BigDay, clock: FakeClock, tmp_path: Path) -> None:
    """Key ``t`` on the gate: page 1, page 2 after TODAY_PAGE_SECONDS (or ``t`` again), back to the gate."""
    Image.fromarray(synthetic_frame(640, 480)).save(tmp_path / "frame.png")
    screen = GateScreen(ScreenConfig(width=800, height=480))
    now = [1000.0]
    decider = Decider(big_day.roster, DecideConfig(timezone="Asia/Almaty"), clock)
    gate = Gate(big_day.ledger, decider, NullFeedback(), screen, lang="ru")
    display = NullDisplay()
    today = today_from_ledger(big_day.ledger, MORNING.date(), TZ)
    service = TerminalService(
        camera=ReplaySource([tmp_path / "frame.png"], loop=True),
        pipeline=ScanPipeline(),
        gate=gate,
        display=display,
        today=today,
        children=big_day.roster.children,
        monotonic=lambda: now[0],
        ping_interval=0,
    )
    assert screen.today_page_count(big_day.listing, "ru") == 2

    def shown() -> np.ndarray[Any, Any]:
        service.run(max_frames=1)
        assert display.last is not None
        return np.asarray(display.last)

    def page(n: int) -> np.ndarray[Any, Any]:
        return np.asarray(screen.render_today(big_day.listing, "ru", gate.status, n))

    service.on_key("t")
    assert np.array_equal(shown(), page(0))
    now[0] += TODAY_PAGE_SECONDS
    assert np.array_equal(shown(), page(1))
    service.on_key("t")  # asked again: the next page (page 3 of 2 = page 1)
    assert np.array_equal(shown(), page(0))
    now[0] += 21
    assert not np.array_equal(shown(), page(0))  # back to the gate screen


# -- 4. a card in the family's language -------------------------------------------------------------------
FAMILY = {"c-1": "ru", "c-2": "en"}  # c-3 has no language in the roster: the gate's own


def family_roster(languages: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(ROSTER))
    doc["children"].append({"id": "c-3", "name": "Зере Ержан", "group": "Ақбота"})
    doc["badges"] += [{"serial": ZERE, "child": "c-3"}, {"serial": ZERE_OLD, "child": "c-3", "revoked": True}]
    for child in doc["children"]:
        if child["id"] in languages:
            child["language"] = languages[child["id"]]
    return doc


ZERE, ZERE_OLD = new_serial(), new_serial()
HELLO_ZERE = {"kk": "Сәлем, Зере Ержан!", "ru": "Привет, Зере Ержан!", "en": "Hello, Зере Ержан!"}


@pytest.mark.parametrize("gate_lang", LANGUAGES)
def test_a_card_in_the_familys_language(  # noqa: PLR0917 - fixtures and parameters
    tmp_path: Path,
    write_roster: Callable[[dict[str, Any]], Path],
    clock: FakeClock,
    screen: GateScreen,
    shots: Path,
    gate_lang: str,
) -> None:
    family = {"c-1": next(x for x in LANGUAGES if x != gate_lang), "c-2": gate_lang}
    with (
        load_roster(tmp_path / "family.db", write_roster(family_roster(family))) as roster,
        open_ledger(tmp_path / "family-ledger.db", origin="reg.example/kgate/gate1", clock=clock) as ledger,
    ):
        assert {c.id: c.language for c in roster.children()} == {**family, "c-3": None}
        decider = Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock)
        pickup = Pickup(roster, PickupPolicy("guardian"))
        gate = Gate(ledger, decider, NullFeedback(), lang=gate_lang, pickup=pickup)
        aruzhan = family["c-1"]
        # check-in: Aruzhan's family language, Zere (no language in the roster): the gate's
        assert gate.handle([badge(ARUZHAN)]).kind is OutcomeKind.ACCEPTED
        assert gate.card is not None and gate.card.lang == aruzhan
        assert card_text(gate.card).headline == HELLO[aruzhan]
        state = gate.screen_state(synthetic_frame())
        assert state.lang == gate_lang  # the status bar and prompts stay in the gate's language
        screen.render(state).save(shots / f"words-family-{aruzhan}-at-{gate_lang}-gate.png")
        assert gate.handle([badge(ZERE)]).kind is OutcomeKind.ACCEPTED
        assert gate.card is not None and gate.card.lang == gate_lang
        assert card_text(gate.card).headline == HELLO_ZERE[gate_lang]
        # a refusal where the child is known: a revoked badge of Zere's, the pickup of Aruzhan
        assert gate.handle([badge(ZERE_OLD)]).kind is OutcomeKind.REFUSED
        assert gate.card is not None and gate.card.lang == gate_lang
        clock.advance(EVENING)
        assert gate.handle([badge(BORIS), badge(ARUZHAN)]).kind is OutcomeKind.REFUSED
        assert gate.card is not None and gate.card.lang == aruzhan
        text = card_text(gate.card)
        assert (text.headline, text.lines[0]) == (UNAUTHORIZED[aruzhan], CHILD[aruzhan])
        panel(screen, gate, shots, f"words-family-refusal-{aruzhan}-at-{gate_lang}-gate")
        clock.advance(120)  # the right adult: a goodbye in the family's language
        assert gate.handle([badge(DANA), badge(ARUZHAN)]).kind is OutcomeKind.ACCEPTED
        assert gate.card is not None and card_text(gate.card).headline == GOODBYE[aruzhan]


def test_the_roster_language_field(tmp_path: Path, write_roster: Callable[[dict[str, Any]], Path]) -> None:
    plain = family_roster({})
    assert parse_roster(json.dumps(plain).encode()).children[0].language is None
    nulls = family_roster(dict.fromkeys(("c-1", "c-2", "c-3")))
    # no language (absent or null) keeps the digest a roster always had; a language is content
    assert parse_roster(json.dumps(nulls).encode()).digest == parse_roster(json.dumps(plain).encode()).digest
    told = parse_roster(json.dumps(family_roster(FAMILY)).encode())
    assert told.digest != parse_roster(json.dumps(plain).encode()).digest
    assert [c.language for c in told.children] == ["ru", "en", None]
    for bad in ("de", "KK", "", 7, ["kk"]):
        with pytest.raises(
            RosterError, match=r"^roster\.children\[1\]\.language: .* is not one of kk, ru, en$"
        ):
            parse_roster(json.dumps(family_roster({"c-2": bad})).encode())


def test_a_roster_db_from_before_languages_keeps_working(
    tmp_path: Path, write_roster: Callable[[dict[str, Any]], Path]
) -> None:
    """A gate's roster.db made before the column existed: opened, read, the same roster a no-op again."""
    plain = write_roster(family_roster({}))
    load_roster(tmp_path / "old.db", plain).close()
    with sqlite3.connect(tmp_path / "old.db") as conn:  # what the old code created
        conn.execute("ALTER TABLE children DROP COLUMN language")
    conn.close()
    with load_roster(tmp_path / "old.db", plain) as roster:  # same version, same content: no error
        record = roster.lookup(ZERE)
        assert record is not None and record.child.name == "Зере Ержан" and record.child.language is None
    newer = family_roster(FAMILY)
    newer["version"] += 1
    with load_roster(tmp_path / "old.db", write_roster(newer)) as roster:
        assert {c.id: c.language for c in roster.children()} == {**FAMILY, "c-3": None}


def test_kgate_terminal_today_png_writes_every_page(big_day: BigDay, tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text(
        f'[ledger]\npath = "{big_day.ledger.path}"\n[roster]\npath = "{big_day.roster.path}"\n'
        '[gate]\ntimezone = "Asia/Almaty"\nlanguage = "ru"\n[screen]\nwidth = 800\nheight = 480\n',
        encoding="utf-8",
    )
    out = tmp_path / "today.png"
    assert kgate_main(["terminal", "today", "--config", str(config), "--png", str(out)]) == 0
    written = {p.name for p in tmp_path.glob("today*.png")}  # 72 names: 2+ pages at 800x480
    assert len(written) >= 2
    assert written == {"today.png", *(f"today-{n}.png" for n in range(2, len(written) + 1))}
    for name in written:
        with Image.open(tmp_path / name) as image:
            assert image.size == (800, 480)
