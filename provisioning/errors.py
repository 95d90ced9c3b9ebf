"""Errors of ``kgate provision`` / ``kgate decommission``: one tree under :class:`kgate.errors.KgateError`."""

from __future__ import annotations

from kgate.errors import KgateError, UsageError


class ProvisionError(KgateError):
    """Provisioning did not finish; the message names the step. Running again continues from there."""

    exit_code = 1


class SshError(ProvisionError, ConnectionError):
    """ssh/scp failed: host unreachable, host key unknown or changed, login refused, or a timeout."""

    exit_code = 75  # EX_TEMPFAIL: fix the connection and run again


class StepError(ProvisionError):
    """A step on the device failed (it is named in the message)."""


class BundleError(ProvisionError, UsageError):
    """The wheel or the files to copy to the device could not be made here."""

    exit_code = 2
