"""Standard Webhooks signatures of outgoing webhooks (https://www.standardwebhooks.com).

Each webhook of the routing configuration may name a ``secret_file`` holding its secret in the
specification's form, ``whsec_`` + base64 of 24 to 64 random bytes (e.g.
``echo "whsec_$(openssl rand -base64 32)"``). A relative path is read from ``SPM_SECRETS_DIR``,
where the other secrets live. A signed request carries ``webhook-id`` (the notification's
idempotency key, the same on every retry), ``webhook-timestamp`` (Unix seconds of this attempt)
and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` under the
secret), so a receiver can check who sent the body, that nothing changed it, and refuse replays.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from pathlib import Path

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def secret_path(path: Path) -> Path:
    """``path`` itself, or relative to ``SPM_SECRETS_DIR`` when set and ``path`` is relative."""
    secrets_dir = os.environ.get("SPM_SECRETS_DIR")
    return Path(secrets_dir) / path if secrets_dir and not path.is_absolute() else path


def load_secret(path: Path) -> bytes:
    """The key bytes of a ``whsec_…`` secret file; ValueError naming what is wrong (never the
    secret)."""
    full = secret_path(path)
    try:
        text = full.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the webhook secret file {full}: {exc.strerror}") from None
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"the webhook secret in {full} must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError(f"the webhook secret in {full} is not base64 after whsec_") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"the webhook secret in {full} must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
        )
    return key


def signature_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of ``body`` (the exact bytes sent)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.digest(key, signed, "sha256")).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }
