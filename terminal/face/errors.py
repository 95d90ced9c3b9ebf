"""Errors of the face subsystem: unreadable images, refused enrolments, missing consent, key trouble.

Every class subclasses :class:`FaceError` (and so :class:`~terminal.errors.TerminalError`) and, where
one fits, the closest builtin.
"""

from __future__ import annotations

from terminal.errors import TerminalError


class FaceError(TerminalError):
    """Base class of the face subsystem's errors."""


class FaceModelsMissing(FaceError, ImportError):
    """dlib or the ``face_recognition_models`` files are not installed; nothing is downloaded at run time."""


class BadImage(FaceError, ValueError):
    """A file is not a readable image, is truncated, or is too large to decode safely."""


class EnrolmentRefused(FaceError, ValueError):
    """A photo fails the enrolment quality checks (no face, two faces, too small, blurred, turned)."""


class NoConsent(FaceError, PermissionError):
    """The child is not in the roster or the roster has no face consent for them."""


class TemplateStoreError(FaceError, RuntimeError):
    """The template database or its key cannot be used (wrong key, missing key, tampered rows)."""
