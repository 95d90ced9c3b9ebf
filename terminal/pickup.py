"""Authorized pickup: at check-out the child's badge and an authorized guardian's badge, together.

With policy ``guardian`` (``[gate] pickup``) a child's ``out`` needs a guardian badge shown within
``pickup_window_seconds`` of the child's badge, in either order (the same frame or consecutive
scans). :meth:`Pickup.review` runs on every :class:`~terminal.decide.Decision` before the gate acts:

- guardian listed for the child, badge not revoked -> the ``out`` is accepted with evidence
  ``guardian`` (id) and ``guardian_badge`` (serial);
- guardian not listed for the child -> refused ``pickup_unauthorized``; revoked guardian badge ->
  ``guardian_revoked``; both a logged ``rejected`` entry naming guardian and child, and a staff alert;
  the refused decision carries the :class:`~terminal.roster.Guardian`, so the card says who is who
  (under the reason "Child: Аружан", her group, "Adult: Борис");
- a guardian badge alone -> ``guardian_only`` ("show the child's badge too"), a child's ``out`` alone ->
  ``pickup_needs_guardian``: prompts on screen, never an entry; the other badge may follow in time.

Check-ins never need a guardian. Policy ``off`` leaves every decision as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from terminal.decide import Decision, Direction, Reason
from terminal.roster import GuardianBadge

POLICIES = ("off", "guardian")
#: Refusals that put an alert on the staff "today" list (the child's line).
ALERT_REASONS = frozenset({Reason.PICKUP_UNAUTHORIZED, Reason.GUARDIAN_REVOKED})
#: Waiting for the pickup's other badge: shown on screen, no light, no ledger entry.
PROMPTS = frozenset({Reason.GUARDIAN_ONLY, Reason.PICKUP_NEEDS_GUARDIAN})
#: Screen message per pickup reason (the gate's card names the child under it).
MESSAGE_KEYS: Mapping[Reason, str] = {
    Reason.PICKUP_UNAUTHORIZED: "pickup.unauthorized",
    Reason.GUARDIAN_REVOKED: "pickup.guardian_revoked",
    Reason.GUARDIAN_ONLY: "pickup.show_child",
    Reason.PICKUP_NEEDS_GUARDIAN: "pickup.needs_guardian",
}
_MAX_LOGGED = 1024


class GuardianLookup(Protocol):
    """What pickup needs from :class:`terminal.roster.Roster`."""

    def lookup_guardian(self, serial: str) -> GuardianBadge | None: ...


@dataclass(frozen=True)
class PickupPolicy:
    """``[gate] pickup`` and ``pickup_window_seconds``; ``rejected_log_seconds`` rate-limits entries."""

    mode: str = "off"
    window_seconds: float = 30.0
    rejected_log_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.mode not in POLICIES:
            raise ValueError(f"gate.pickup: {self.mode!r} is not one of {', '.join(POLICIES)}")
        if not 0 < self.window_seconds <= 3600:
            raise ValueError("gate.pickup_window_seconds: must be in (0, 3600]")


class Pickup:
    """Pairs guardian and child badges seen within the window; one per gate, state in memory only."""

    def __init__(self, roster: GuardianLookup, policy: PickupPolicy | None = None) -> None:
        self.roster = roster
        self.policy = policy or PickupPolicy()
        self._guardian: tuple[GuardianBadge, dt.datetime] | None = None
        self._child: Decision | None = None  # a child's accepted ``out`` waiting for a guardian
        self._logged: dict[tuple[str, str | None, Reason], dt.datetime] = {}
        self._used: set[str] = set()  # the pending guardian's badge, once it took a child

    def review(self, decision: Decision) -> Decision:
        """The decision the gate should act on, given the badges seen in the last window."""
        if self.policy.mode == "off":
            return decision
        at = decision.at
        if decision.accepted and decision.direction is Direction.OUT and decision.child is not None:
            pending = self._guardian
            if pending is not None and self._recent(pending[1], at) and self._may_pair(pending[0], decision):
                self._child = None
                return self._pair(pending[0], decision)
            self._child = decision
            return replace(decision, accepted=False, reason=Reason.PICKUP_NEEDS_GUARDIAN, log_rejected=False)
        if decision.reason is Reason.UNKNOWN and decision.serial is not None:
            badge = self.roster.lookup_guardian(decision.serial)
            if badge is None:
                return decision
            self._guardian = (badge, at)
            self._used.discard(badge.serial)  # shown again: a new pickup
            child = self._child
            if child is not None and self._recent(child.at, at):
                self._child = None
                return self._pair(badge, replace(child, at=at))
            evidence = {**_guardian_evidence(badge), **_stale(decision)}
            if badge.revoked:
                return self._refused(decision, badge, None, Reason.GUARDIAN_REVOKED, evidence)
            return replace(
                decision,
                reason=Reason.GUARDIAN_ONLY,
                evidence=evidence,
                log_rejected=False,
                guardian=badge.guardian,
            )
        return decision

    def _may_pair(self, badge: GuardianBadge, out: Decision) -> bool:
        """A guardian who already took a child stays pending only for their other children (siblings):
        the next family's child shown first must wait for its own guardian, not be refused for ours."""
        assert out.child is not None
        return badge.serial not in self._used or out.child.id in badge.guardian.children

    def _recent(self, seen: dt.datetime, now: dt.datetime) -> bool:
        return 0 <= (now - seen).total_seconds() <= self.policy.window_seconds

    def _pair(self, badge: GuardianBadge, out: Decision) -> Decision:
        """The child's ``out`` with this guardian: accepted with evidence, or refused and logged."""
        assert out.child is not None
        evidence = {**out.evidence, **_guardian_evidence(badge)}
        if badge.revoked:
            return self._refused(out, badge, out.child.id, Reason.GUARDIAN_REVOKED, evidence)
        if out.child.id not in badge.guardian.children:
            return self._refused(out, badge, out.child.id, Reason.PICKUP_UNAUTHORIZED, evidence)
        self._used = {badge.serial}
        return replace(out, evidence=evidence)

    def _refused(
        self,
        decision: Decision,
        badge: GuardianBadge,
        child: str | None,
        reason: Reason,
        evidence: dict[str, str | int | bool],
    ) -> Decision:
        key = (badge.guardian.id, child, reason)
        last = self._logged.get(key)
        log = last is None or not 0 <= (decision.at - last).total_seconds() < self.policy.rejected_log_seconds
        if log:
            if len(self._logged) >= _MAX_LOGGED:
                self._logged.clear()  # forgetting only allows one more entry per pair
            self._logged[key] = decision.at
        return replace(
            decision,
            accepted=False,
            direction=None,
            reason=reason,
            evidence=evidence,
            log_rejected=log,
            guardian=badge.guardian,
        )


def _guardian_evidence(badge: GuardianBadge) -> dict[str, str | int | bool]:
    return {"guardian": badge.guardian.id, "guardian_badge": badge.serial}


def _stale(decision: Decision) -> dict[str, str | int | bool]:
    return {"roster_stale": True} if decision.evidence.get("roster_stale") is True else {}
