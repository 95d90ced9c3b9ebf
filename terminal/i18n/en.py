"""English gate messages."""

from typing import Final

MESSAGES: Final[dict[str, str]] = {
    # idle screen
    "prompt.show_badge": "Show the badge to the camera",
    "prompt.paused": "Check-in is paused: please ask a member of staff",
    "prompt.mode_in": "Mode: check in",
    "prompt.mode_out": "Mode: check out",
    "prompt.look_at_camera": "Look at the camera, or show the badge",
    "prompt.badge_and_face": "Show the badge and look at the camera",
    "prompt.face_guide": "Face in the frame",
    # accepted card
    "greeting": "Hello, {name}!",
    "farewell": "Goodbye, {name}!",
    "direction.in": "checked in",
    "direction.out": "checked out",
    "card.group": "{group} group",
    "card.child": "Child: {name}",
    "card.guardian": "Adult: {name}",
    "card.already_in": "Already checked in",
    "card.already_out": "Already checked out",
    # refused card
    "refused.unknown_badge": "Unknown badge",
    "refused.revoked_badge": "Badge revoked",
    "refused.unreadable": "Code unreadable",
    "refused.malformed": "Invalid code",
    "refused.face_mismatch": "Badge and face do not match",
    "refused.no_face": "Look at the camera, then show the badge again",
    "refused.no_face_consent": "No face consent\u00a0— please use your badge",
    "refused.face_unknown": "Face not recognised\u00a0— please use your badge",
    "refused.face_liveness": "Look at the camera, or use your badge",
    "refused.closed": "Outside opening hours",
    "refused.hours": "Open {opens}–{closes}",
    "refused.hint": "Please ask a member of staff",
    # authorized pickup (the card names the child and the adult under the message)
    "pickup.unauthorized": "Not an authorised guardian for this child",
    "pickup.guardian_revoked": "This adult's badge is revoked: no pickup",
    "pickup.show_child": "Now show the child's badge too",
    "pickup.needs_guardian": "Pickup needs the guardian's badge",
    # error states
    "error.title": "Fault",
    "error.camera_lost": "Camera lost",
    "error.disk_full": "Disk full",
    "error.roster_stale": "Roster out of date",
    "error.clock_unsynced": "Clock not synced",
    "error.database_locked": "Database locked",
    "error.not_recorded": "Not recorded\u00a0— please try again",
    "error.hint": "Please tell a member of staff",
    # status bar
    "status.roster": "Roster v{version}",
    "status.roster_stale": "Roster v{version} stale",
    "status.no_roster": "No roster",
    "status.pending": "Unsent: {count}",
    "status.disk_free": "Disk: {percent}% free",
    # staff "today" list
    "today.title": "Today, {date}",
    "today.readonly": "read-only",
    "today.in": "In",
    "today.left": "Left",
    "today.absent": "Absent",
    "today.summary": "Total {total} · in {present} · left {left} · absent {absent}",
    "today.none": "—",
    "today.pickup_alert": "pickup refused",
}
