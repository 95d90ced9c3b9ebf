"""The gate loop's core: scanned codes -> decision -> durable ledger entry -> lights, sound and screen.

The rule that matters: :meth:`Feedback.accepted` is called only after :meth:`Ledger.append` returned,
i.e. after COMMIT. When the append fails (disk full, database locked, any storage error) the gate shows
the fault, calls :meth:`Feedback.fault` and acknowledges nothing; the next successful append clears it.
Nothing a QR code can carry makes :meth:`Gate.handle` raise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from hardware.feedback import Feedback
from ledger.errors import DiskFull, LedgerBusy
from terminal.config import GateConfig
from terminal.decide import Decider, Decision, Direction, Reason
from terminal.i18n import DEFAULT_LANG
from terminal.pickup import MESSAGE_KEYS as PICKUP_KEYS
from terminal.pickup import PROMPTS, Pickup
from terminal.roster import Child
from terminal.scan.code import DecodedCode, ScanResult
from terminal.screen.state import CardKind, ResultCard, ScreenState, StatusInfo

if TYPE_CHECKING:
    import datetime as dt

    from PIL import Image

    from ledger.store import Appended
    from terminal.face.check import FaceCheck
    from terminal.face.checkin import FaceResult
    from terminal.screen.gate import GateScreen

log = logging.getLogger(__name__)
_MAX_QUIET = 64  # refused codes remembered for the quiet period

#: Screen message for each refusal reason.
REFUSAL_KEYS: Mapping[Reason, str] = {
    Reason.MALFORMED: "refused.malformed",
    Reason.UNKNOWN: "refused.unknown_badge",
    Reason.REVOKED: "refused.revoked_badge",
    Reason.CLOSED: "refused.closed",
    Reason.ALREADY_IN: "card.already_in",
    Reason.ALREADY_OUT: "card.already_out",
    **PICKUP_KEYS,
    Reason.FACE_MISMATCH: "refused.face_mismatch",
    Reason.NO_FACE: "refused.no_face",
    Reason.FACE_UNKNOWN: "refused.face_unknown",
    Reason.FACE_LIVENESS: "refused.face_liveness",
    Reason.NO_FACE_CONSENT: "refused.no_face_consent",
}

#: Mode ``face``: refusals that are shown but never become a ledger entry or a red beep. Strangers
#: (parents, staff, siblings) walk through the camera's view all day; an entry for each would bury the
#: audit trail. A failed liveness check *is* recorded (rate-limited): it is what a presentation attack
#: looks like. docs/faces.md, "Mode face".
SHOWN_ONLY = frozenset({Reason.FACE_UNKNOWN})


class EntrySink(Protocol):
    """What the gate needs from :class:`ledger.store.Ledger`."""

    def append(
        self,
        kind: str,
        *,
        child: str | None = None,
        method: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        roster_version: int | None = None,
        reason: str | None = None,
    ) -> Appended: ...


class OutcomeKind(StrEnum):
    """What the gate did with a frame's codes."""

    IDLE = "idle"  # no code in the frame
    ACCEPTED = "accepted"  # stored, then acknowledged
    REFUSED = "refused"  # red light; maybe a rejected entry
    REPEAT = "repeat"  # debounce: already in/out, shown on screen only
    IGNORED = "ignored"  # the same refused code again within seconds: no new beep
    PENDING = "pending"  # one badge of a pickup, waiting for the other: shown on screen only
    FAULT = "fault"  # could not store: nothing acknowledged


@dataclass(frozen=True)
class Outcome:
    """The result of one code (or of an empty frame). ``index``: ledger index of the stored entry."""

    kind: OutcomeKind
    decision: Decision | None = None
    index: int | None = None
    error: str | None = None


class Gate:
    """Turns scanned codes into ledger entries and feedback; one per terminal, called from the frame loop.

    ``max_codes``: codes handled per frame (a hostile sheet of codes cannot stall the loop).
    ``quiet_seconds``: the same refused code again within this time gives no new beep or entry.
    ``pickup``: pairs guardian and child badges at check-out (:mod:`terminal.pickup`); ``None``: off.
    """

    def __init__(
        self,
        ledger: EntrySink,
        decider: Decider,
        feedback: Feedback,
        screen: GateScreen | None = None,
        *,
        lang: str = DEFAULT_LANG,
        max_codes: int = 4,
        quiet_seconds: float = GateConfig.quiet_seconds,
        monotonic: Callable[[], float] = time.monotonic,
        pickup: Pickup | None = None,
        face_check: FaceCheck | None = None,
    ) -> None:
        self.ledger = ledger
        self.decider = decider
        self.feedback = feedback
        self.screen = screen
        self.lang = lang
        self.max_codes = max_codes
        self.quiet_seconds = quiet_seconds
        self._monotonic = monotonic
        self.pickup = pickup
        self.face_check = face_check  # modes qr+face: the badge's child must show their face
        self.mode = "qr"  # the gate mode (terminal.config.MODES): what the idle screen asks for
        self.card: ResultCard | None = None
        self.status = StatusInfo(roster_version=_safe_version(decider))
        self._faulted = False
        self._quiet: dict[bytes, float] = {}  # refused code -> when it last beeped (monotonic)

    # -- the frame loop's entry point -------------------------------------------------------------
    def handle(self, frame_codes: ScanResult | Iterable[bytes | DecodedCode]) -> Outcome:
        """Handle the codes found in one frame; returns the outcome of the last code handled."""
        codes = frame_codes.codes if isinstance(frame_codes, ScanResult) else frame_codes
        outcome = Outcome(OutcomeKind.IDLE)
        try:
            for n, code in enumerate(codes):
                if n >= self.max_codes:
                    break
                outcome = self.handle_code(code.data if isinstance(code, DecodedCode) else code)
        except Exception:  # a broken iterable: the loop must keep running
            log.exception("gate: could not read the frame's codes")
        return outcome

    def handle_code(self, data: bytes, now: dt.datetime | None = None) -> Outcome:
        """Decide on one code's exact bytes, store the entry, then give feedback. Never raises."""
        try:
            decision = self.decider.decide(
                bytes(data), now, Direction.chosen(self.feedback.selected_direction)
            )
            if self.pickup is not None:
                decision = self.pickup.review(decision)
        except Exception as exc:  # e.g. the roster database is unreadable: do not acknowledge
            log.exception("gate: decision failed")
            return self._fault(None, f"decision failed: {type(exc).__name__}")
        if decision.accepted and self.face_check is not None:
            try:  # a face refusal is rate-limited like the decider's own (docs/faces.md)
                decision = self.decider.rate_limited(self.face_check.verify(decision))
            except Exception as exc:  # e.g. the template key is unreadable: do not acknowledge
                log.exception("gate: face check failed")
                return self._fault(decision, f"face check failed: {type(exc).__name__}")
        return self._act(bytes(data), decision)

    def handle_face(self, result: FaceResult, now: dt.datetime | None = None) -> Outcome:
        """Mode ``face``: act on one identification like on a badge. Never raises.

        A recognised consenting child goes through the decider's rules (hours, in/out, debounce) with
        ``method: "face"`` and the face evidence; an unknown face or two children too close to call is
        only shown ("use your badge"); a failed liveness check is refused and recorded (rate-limited).
        """
        identity = result.identity
        direction = Direction.chosen(self.feedback.selected_direction)
        try:
            if identity.child_id is not None and result.child is not None:
                decision = self.decider.decide_child(
                    result.child, now, direction, method="face", evidence=identity.evidence
                )
                if self.pickup is not None:
                    decision = self.pickup.review(decision)
            elif identity.reason == "no_face":
                return Outcome(OutcomeKind.IDLE)
            else:
                reason = Reason.FACE_LIVENESS if identity.reason == "liveness" else Reason.FACE_UNKNOWN
                decision = self.decider.refusal(reason, now, method="face", evidence=identity.evidence)
        except Exception as exc:  # e.g. the roster database is unreadable: do not acknowledge
            log.exception("gate: face decision failed")
            return self._fault(None, f"face decision failed: {type(exc).__name__}")
        if decision.reason in SHOWN_ONLY:
            self._show(decision)
            return Outcome(OutcomeKind.PENDING, decision)
        return self._act(f"face:{identity.child_id}:{decision.reason}".encode(), decision)

    def _act(self, key: bytes, decision: Decision) -> Outcome:
        """Accept, show a repeat or a prompt, or refuse (``key``: what the quiet period remembers)."""
        if decision.accepted:
            return self._accept(decision)
        if decision.is_repeat:
            self._show(decision)
            return Outcome(OutcomeKind.REPEAT, decision)
        if decision.reason in PROMPTS:
            self._show(decision)
            return Outcome(OutcomeKind.PENDING, decision)
        return self._refuse(key, decision)

    # -- outcomes -----------------------------------------------------------------------------------
    def _accept(self, decision: Decision) -> Outcome:
        assert decision.child is not None and decision.direction is not None
        direction = decision.direction
        try:
            appended = self.ledger.append(
                decision.kind,
                child=decision.child.id,
                method=decision.method,
                evidence=decision.evidence,
                roster_version=decision.roster_version,
            )
        except Exception as exc:  # DiskFull, LedgerBusy, StorageError, or anything else: not stored
            return self._fault(decision, f"{type(exc).__name__}: {exc}", exc)
        # COMMIT returned: from here on the entry is durable and may be acknowledged.
        self.decider.record(decision)
        self._recovered()
        self._show(decision)
        self._feedback("accepted", lambda: self.feedback.accepted(direction.signal()))
        return Outcome(OutcomeKind.ACCEPTED, decision, appended.index)

    def _refuse(self, data: bytes, decision: Decision) -> Outcome:
        now = self._monotonic()
        last = self._quiet.get(data)
        if last is not None and 0 <= now - last < self.quiet_seconds:
            return Outcome(OutcomeKind.IGNORED, decision)
        if len(self._quiet) >= _MAX_QUIET:
            self._quiet = {k: t for k, t in self._quiet.items() if 0 <= now - t < self.quiet_seconds}
            while len(self._quiet) >= _MAX_QUIET:
                del self._quiet[next(iter(self._quiet))]
        self._quiet[data] = now
        self._show(decision)
        self._feedback("refused", self.feedback.refused)
        index = None
        if decision.log_rejected and decision.reason is not None:
            try:
                index = self.ledger.append(
                    "rejected",
                    child=decision.child.id if decision.child else None,
                    method=decision.method,
                    evidence=decision.evidence,
                    roster_version=decision.roster_version,
                    reason=str(decision.reason),
                ).index
            except Exception as exc:  # an audit entry lost is logged, never fatal to the loop
                log.warning("gate: rejected entry not stored: %s: %s", type(exc).__name__, exc)
                self._flag_storage(exc)
            else:
                self.decider.record(decision)
        return Outcome(OutcomeKind.REFUSED, decision, index)

    def _fault(self, decision: Decision | None, message: str, exc: BaseException | None = None) -> Outcome:
        log.error("gate: entry not recorded: %s", message)
        self._faulted = True
        if exc is not None:
            self._flag_storage(exc)
        self.card = ResultCard(CardKind.ERROR, lang=self.lang, message_key="error.not_recorded")
        self._feedback("fault", self.feedback.fault)
        return Outcome(OutcomeKind.FAULT, decision, error=message)

    # -- state for the screen --------------------------------------------------------------------------
    def _flag_storage(self, exc: BaseException) -> None:
        if isinstance(exc, LedgerBusy):
            self.status = replace(self.status, database_locked=True)
        elif isinstance(exc, DiskFull):
            self.status = replace(self.status, disk_full=True)

    def _recovered(self) -> None:
        if self._faulted or self.status.disk_full or self.status.database_locked:
            self._faulted = False
            self.status = replace(self.status, disk_full=False, database_locked=False)
            self._feedback("clear", self.feedback.clear)

    def _show(self, decision: Decision) -> None:
        child = decision.child
        show_child = decision.accepted or decision.is_repeat
        named = show_child or decision.reason in PICKUP_KEYS  # "may not pick up: <child>"
        self.card = ResultCard(
            CardKind.ACCEPTED if show_child else CardKind.REFUSED,
            lang=self.card_lang(child),
            name=child.name if child and named else None,
            group=child.group if child and named else None,
            time=decision.at.time().replace(tzinfo=None, microsecond=0),
            direction=decision.direction,
            message_key=REFUSAL_KEYS.get(decision.reason) if decision.reason else None,
            guardian=decision.guardian.name if decision.guardian and named else None,
        )
        stale = decision.evidence.get("roster_stale") is True
        self.status = replace(self.status, roster_version=decision.roster_version, roster_stale=stale)

    def card_lang(self, child: Child | None) -> str:
        """The card's language: the child's family's where the roster knows it, else the gate's."""
        return child.language if child is not None and child.language else self.lang

    def _feedback(self, what: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:  # a GPIO hiccup must not stop the gate
            log.exception("gate: feedback %s failed", what)

    def screen_state(self, preview: Any = None) -> ScreenState:
        """What the screen should show now."""
        return ScreenState(
            status=self.status,
            preview=preview,
            card=self.card,
            lang=self.lang,
            selected_direction=Direction.chosen(self.feedback.selected_direction),
            mode=self.mode,
        )

    def render(self, preview: Any = None) -> Image.Image | None:
        """Render the current state with ``screen`` (``None`` when the gate has no screen)."""
        return None if self.screen is None else self.screen.render(self.screen_state(preview))


def _safe_version(decider: Decider) -> int | None:
    try:
        return decider.roster.version
    except Exception:
        return None
