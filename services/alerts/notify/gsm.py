"""SMS texts in the GSM 03.38 7-bit alphabet, so one message is 160 characters and no handset
shows boxes. Anything else is transliterated (accents dropped, typographic dashes and quotes made
plain) or, failing that, dropped: a UCS-2 message would be cut to 70 characters."""

from __future__ import annotations

import unicodedata

BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = frozenset("^{}\\[~]|€\f")
"""Sent as escape + character: two septets each."""

_PLAIN = {
    "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...", "≤": "<=",
    "≥": ">=", "‰": " per 1000", "\u00a0": " ", "\u202f": " ", "•": "-", "×": "x",
}  # fmt: skip


def septets(text: str) -> int:
    return sum(2 if ch in EXTENSION else 1 for ch in text)


def safe(text: str) -> str:
    """``text`` in the GSM-7 alphabet (line breaks become spaces)."""
    out: list[str] = []
    for ch in text.replace("\r", " ").replace("\n", " "):
        if ch in BASIC or ch in EXTENSION:
            out.append(ch)
            continue
        if ch in _PLAIN:
            out.append(_PLAIN[ch])
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append("".join(c for c in base if c in BASIC or c in EXTENSION))
    return " ".join("".join(out).split())


def fit(body: str, tail: str, limit: int) -> str:
    """``body`` + ``tail`` in at most ``limit`` septets; ``body`` is shortened (with "...") so
    the tail — the link — always survives whole."""
    tail = safe(tail) if tail.strip() else ""
    tail = (" " + tail) if tail else ""
    room = limit - septets(tail)
    if septets(body) > room:
        while body and septets(body) > room - 3:
            body = body[:-1]
        body = body.rstrip() + "..."
    return body + tail
