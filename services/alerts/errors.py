"""The alert service's exception base."""

from __future__ import annotations

from services.common.errors import SpmError


class AlertsError(SpmError):
    """Something in the alert service failed; ``retriable`` says whether trying again may help."""


class DeliveryError(AlertsError):
    """A channel (SMTP server, webhook receiver) refused or could not be reached."""
