"""Personal data detection: Luhn-checked card numbers, spoken digits, SSNs, accounts, e-mail, phones."""

from __future__ import annotations

import pytest

from assist.pii import aba_routing_valid, find_pii, luhn_valid, redact


def kinds(text: str) -> list[str]:
    return [m.kind for m in find_pii(text)]


def test_luhn() -> None:
    """Known test card numbers pass; a one-digit change fails."""
    assert luhn_valid("4539148803436467")
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4539148803436468")
    assert not luhn_valid("1234")


@pytest.mark.parametrize(
    "text",
    [
        "so that's card 4539 1488 0343 6467, expiry 08/27",
        "the number is 4539-1488-0343-6467",
        "four five three nine one four eight eight zero three four three six four six seven",
    ],
)
def test_card_numbers_found(text: str) -> None:
    """Card numbers are found whether written as numerals, dashed or spoken as words."""
    assert "card_number" in kinds(text)


def test_non_luhn_long_number_is_not_a_card() -> None:
    """An order reference that fails Luhn is not reported as a card."""
    assert "card_number" not in kinds("your order reference is 4539 1488 0343 6468")


def test_ssn_bank_routing_email_phone() -> None:
    """Each kind is recognised in context."""
    assert kinds("my social is 123-45-6789") == ["ssn"]
    assert kinds("account number 00123456789") == ["bank_account"]
    assert aba_routing_valid("021000021")
    assert kinds("routing number 021000021") == ["routing_number"]
    assert kinds("email me at dana.w@example.com") == ["email"]
    assert kinds("it's dana dot w at example dot com") == ["email"]
    assert kinds("call me back on 415 555 0132") == ["phone"]


def test_redact_keeps_last_four_of_card() -> None:
    """Redaction replaces the data and keeps the text readable."""
    out = redact("card 4539 1488 0343 6467 and mail a@b.co")
    assert out == "card [CARD ****6467] and mail [EMAIL]"


def test_plain_text_untouched() -> None:
    """Ordinary numbers (prices, dates) are left alone."""
    text = "your bill was 84 dollars on the 5th, plan Fibre 500"
    assert redact(text) == text


def test_reference_codes_are_not_pii() -> None:
    """Reference and product codes next to the word 'account' are not account numbers."""
    text = "a refund to your bank account ending 2207 under reference BC-2291740, router error E-1042"
    assert find_pii(text) == []
