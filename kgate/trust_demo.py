"""The demo's register side: roster imported as CSV, gate enrolled, roster delivered, badges printed.

Everything goes through the real code paths of issue 8, on the embedded register (HTTP on 127.0.0.1):
the kindergarten's CSV (children with their guardians and consent) is parsed and imported as
``kgate register roster import`` does; a lost badge is replaced in a second import, so the register
revokes it in roster version 2; the version is signed into the kindergarten's TUF repository
(``kgate register tuf publish``). The simulated gate is then provisioned by ``kgate provision``'s own
steps (:mod:`provisioning.device`) over a local transport (:class:`provisioning.local.LocalRoot`): its
root is ``DIR/gate``, whose state directory ``var/lib/kgate`` is ``DIR/device``. There it enrols with a
one-time token (its key is made on the device side and proves possession), installs the trusted root,
and gets ``/etc/kgate/sync.toml``, from which the sync agent's first roster update fetches, verifies
and installs the roster with ``tuf.ngclient``. ``DIR/badges.pdf`` holds every child's and guardian's
badge (``kgate register badge print``). Used by :mod:`kgate.demo`.
"""

from __future__ import annotations

import csv
import io
import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from kgate import simulation
from kgate.rush import badge_serial

if TYPE_CHECKING:
    from register.local import LocalRegister

KINDERGARTEN: Final = "almaty-042"  # the register's id (ASCII: it names the TUF repository and the origin)
KINDERGARTEN_NAME: Final = "Алматы, №42 «Балбөбек»"  # printed on the badges
GATE: Final = "gate-1"
MOTHERS: Final = (
    "Гүлнар", "Айгүл", "Дана", "Мадина", "Жанар", "Сәуле", "Динара", "Ләззат", "Ольга", "Елена",
    "Әсел", "Гүлмира", "Айнұр", "Наталья",
)  # fmt: skip
FATHERS: Final = (
    "Ерлан", "Бауыржан", "Асхат", "Нұрлан", "Марат", "Ғалым", "Серік", "Қанат", "Дмитрий", "Сергей",
    "Жандос", "Әділет", "Ринат",
)  # fmt: skip
GRANDMOTHERS: Final = ("Роза", "Күләш", "Бибігүл", "Зауре", "Галина", "Сара")


@dataclass(frozen=True)
class Guardian:
    """An adult who may pick up ``children``, with the serial of their badge."""

    guardian_id: str
    name: str
    children: tuple[str, ...]
    serial: str


@dataclass(frozen=True)
class GateTrust:
    """What the register side did before the day: the gate's identity and the roster it now holds."""

    origin: str
    kindergarten: str
    guardians: list[Guardian]
    consent_face: int
    roster_version: int
    targets_version: int
    roster_expires: str
    badges_printed: int
    badge_pages: int
    badges_pdf: str
    root: Path  # the gate's root for provisioning (DIR/gate); its /etc/kgate/sync.toml drives the agent
    provisioned: list[dict[str, str]]  # the provisioning steps' reports

    @property
    def sync_config(self) -> Path:
        return sync_toml(self.root)


def sync_toml(root: Path) -> Path:
    """The agent's configuration the provisioning wrote into the gate's root."""
    return root / "etc" / "kgate" / "sync.toml"


def _family(child: simulation.Child) -> str:
    """The family's surname in its masculine form (Омарова → Омаров; Ким stays Ким)."""
    surname = child.name.split(" ", 1)[1]
    return surname[:-1] if surname.endswith(("ова", "ева", "ина")) else surname


def guardians(kids: list[simulation.Child], seed: int) -> list[Guardian]:
    """One to three adults per child: the mother always, often the father, sometimes a grandmother."""
    rng = random.Random(f"guardians-{seed}")  # noqa: S311 - a seeded simulation
    out: list[Guardian] = []
    for child in kids:
        family = _family(child)
        woman = family + "а" if family.endswith(("ов", "ев", "ин")) else family
        adults = [("m", f"{rng.choice(MOTHERS)} {woman}")]
        if rng.random() < 0.6:
            adults.append(("f", f"{rng.choice(FATHERS)} {family}"))
        if rng.random() < 0.15:
            adults.append(("g", f"{rng.choice(GRANDMOTHERS)} {woman}"))
        for role, name in adults:
            gid = f"G{child.child_id}{role}"
            out.append(Guardian(gid, name, (child.child_id,), badge_serial(gid, seed)))
    return out


def consent(kids: list[simulation.Child], seed: int) -> dict[str, bool]:
    """Each child's biometric consent (most parents say yes)."""
    rng = random.Random(f"consent-{seed}")  # noqa: S311 - a seeded simulation
    return {child.child_id: rng.random() < 0.85 for child in kids}


def roster_csv(
    kids: list[simulation.Child],
    adults: list[Guardian],
    badges: dict[str, str],
    consents: dict[str, bool],
) -> bytes:
    """The kindergarten's roster as the CSV the register imports (docs/rosters.md, "CSV import")."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("kind", "id", "name", "group", "consent_face", "badge", "guardian_of"))
    for c in kids:
        consent_face = "yes" if consents[c.child_id] else "no"
        writer.writerow(("child", c.child_id, c.name, c.group, consent_face, badges[c.child_id], ""))
    for g in adults:
        writer.writerow(("guardian", g.guardian_id, g.name, "", "", g.serial, ";".join(g.children)))
    return buf.getvalue().encode("utf-8")


def import_csv(register: LocalRegister, path: Path, raw: bytes, now_ms: int) -> int:
    """Write ``raw`` to ``path`` and import it as ``kgate register roster import`` does; the version."""
    from register.roster_csv import parse_csv  # noqa: PLC0415 - the register is heavy to import
    from register.store.roster import import_roster  # noqa: PLC0415

    path.write_bytes(raw)
    return import_roster(register.store, KINDERGARTEN, parse_csv(path.read_bytes()), now_ms=now_ms)


def prepare_gate(
    register: LocalRegister,
    out: Path,
    kids: list[simulation.Child],
    badges: dict[str, str],
    *,
    seed: int,
    day_s: float,
) -> GateTrust:
    """Import, publish, enrol, deliver and print (see the module docstring); the gate's trust, in summary.

    ``day_s`` (POSIX seconds of the simulated morning) keeps the signed roster valid through the
    simulated day even when the machine's clock is earlier; TUF itself checks against the real clock.
    """
    import time  # noqa: PLC0415

    register_dir = out / "register"
    from register.badges import cards_from_roster, render_sheets  # noqa: PLC0415
    from register.enrol import Enrolment  # noqa: PLC0415
    from register.store.roster import roster_document  # noqa: PLC0415
    from register.tuf_cli import keys_dir, repos_dir  # noqa: PLC0415
    from register.tuf_repo import RosterRepository  # noqa: PLC0415
    from sync_agent.config import load_config  # noqa: PLC0415
    from sync_agent.roster_update import update_from_config  # noqa: PLC0415

    adults = guardians(kids, seed)
    consents = consent(kids, seed)
    now_ms = int(time.time() * 1000)
    # Version 1 still lists the first child's old badge; it was lost, so version 2 has a new one and
    # the register revokes the old serial (the morning rush shows it at the gate: refused, revoked).
    first = kids[0].child_id if kids else ""
    old = {**badges, first: badge_serial(f"lost/{first}", seed)} if kids else badges
    import_csv(register, register_dir / "roster-v1.csv", roster_csv(kids, adults, old, consents), now_ms)
    version = import_csv(
        register, register_dir / "roster.csv", roster_csv(kids, adults, badges, consents), now_ms + 1
    )
    document = roster_document(register.store, KINDERGARTEN)
    repo = RosterRepository(
        repos_dir(register_dir), keys_dir(register_dir), KINDERGARTEN, clock=lambda: max(time.time(), day_s)
    )
    targets = repo.publish(document, version)

    token = Enrolment(register.store).create_token(KINDERGARTEN, GATE, expires_s=3600)
    root, steps = provision_gate(register.url, token, out)
    cfg = load_config(sync_toml(root), {})
    update = update_from_config(cfg)  # what the agent does right after its start
    ident = json.loads((cfg.key.parent / "enrolment.json").read_text(encoding="utf-8"))

    cards = cards_from_roster(document)
    pdf = out / "badges.pdf"
    pages = render_sheets(cards, KINDERGARTEN_NAME, pdf)
    return GateTrust(
        origin=ident["origin"],
        kindergarten=ident["kindergarten"],
        guardians=adults,
        consent_face=sum(consents.values()),
        roster_version=update.version,
        targets_version=targets,
        roster_expires=update.expires.isoformat(),
        badges_printed=len(cards),
        badge_pages=pages,
        badges_pdf=str(pdf),
        root=root,
        provisioned=steps,
    )


def provision_gate(register_url: str, token: str, out: Path) -> tuple[Path, list[dict[str, str]]]:
    """Provision ``DIR/gate`` as ``kgate provision`` would a Pi, over a local transport; its step reports.

    ``DIR/device`` (the documented place of the demo's ledger) is the root's ``/var/lib/kgate``.
    """
    import segno  # noqa: PLC0415

    from provisioning.local import LocalRoot  # noqa: PLC0415
    from provisioning.provision import provision  # noqa: PLC0415

    root, device_dir = out / "gate", out / "device"
    device_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (root / "var" / "lib").mkdir(parents=True, exist_ok=True)
    state = root / "var" / "lib" / "kgate"
    if not state.is_symlink():
        state.symlink_to(Path("..", "..", "..", "device"), target_is_directory=True)
    # A gate without a camera replays an image (terminal.toml, [camera] backend "replay"): a QR card.
    with tempfile.TemporaryDirectory(prefix="kgate-demo-camera-") as tmp:
        card = Path(tmp) / "demo-card.png"
        segno.make_qr("kgate demo: hold a badge up to the camera", error="m").save(str(card), scale=8)
        results = provision(LocalRoot(root), register=register_url, token=token, camera=f"replay:{card}")
    return root, [{"step": r.step, "status": r.status, "detail": r.detail} for r in results]
