"""SMS texts stay in the GSM-7 alphabet and within 160 septets, the link whole."""

from __future__ import annotations

from services.alerts.notify.gsm import BASIC, EXTENSION, fit, safe, septets
from services.alerts.notify.sms import mask_phone


def test_non_gsm_characters_are_transliterated_or_dropped() -> None:
    text = safe("Crédit – “Mwanzo” ≤ 5 ‰ 中文 naïve\nnext line ç")
    assert all(ch in BASIC or ch in EXTENSION for ch in text)
    assert text == 'Crédit - "Mwanzo" <= 5 per 1000 naive next line c'


def test_a_long_text_is_shortened_and_keeps_the_link() -> None:
    link = "https://spm.example.org/dashboard/#/indicator/par30?segment=branch%3ABR-MSA"
    out = fit(safe("PAR30 off target " * 20), link, 160)
    assert septets(out) <= 160 and out.endswith(" " + link) and "... " in out
    assert fit("short", link, 160) == "short " + link


def test_extension_characters_count_twice() -> None:
    out = fit("{" * 100, "x", 160)
    assert septets(out) <= 160 and len(out) < 100


def test_phone_numbers_are_masked() -> None:
    assert mask_phone("+254711000123") == "+2547******23"
    assert "711000" not in mask_phone("+254711000123")
