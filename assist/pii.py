"""Find and redact personal data in transcript text.

Card numbers are confirmed with the Luhn check and US routing numbers with the ABA
checksum, so order numbers and phone numbers are not mistaken for them. Speech
recognisers write digits either as numerals or as words ("four five three nine"), so
both are recognised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PII_KINDS = ("card_number", "bank_account", "routing_number", "ssn", "email", "phone")

_WORD_DIGITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_DIGIT_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# A run of digits and digit-words separated by spaces, dashes or dots.
_DIGIT_RUN = re.compile(
    rf"(?<![\w@])(?:\d|{_DIGIT_WORD}\b)(?:[\s.\-]*(?:\d|{_DIGIT_WORD}\b))*", re.IGNORECASE
)
_EMAIL = re.compile(r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b")
_EMAIL_SPOKEN = re.compile(r"\b[\w.\-]+\s+at\s+[\w\-]+\s+dot\s+(?:com|net|org|co|io|uk|edu)\b", re.IGNORECASE)
_CODE_PREFIX = re.compile(r"[A-Za-z]{1,6}[-#]?$")
_SSN = re.compile(r"^\d{3}-?\d{2}-?\d{4}$")
_ACCOUNT_CONTEXT = re.compile(r"\b(?:account|acct|iban|sort code|checking|savings)\b", re.IGNORECASE)
_ROUTING_CONTEXT = re.compile(r"\b(?:routing|aba|transit)\b", re.IGNORECASE)
_SSN_CONTEXT = re.compile(r"\b(?:social security|ssn|social)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PiiMatch:
    kind: str
    start: int
    end: int
    digits: str = ""


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def aba_routing_valid(digits: str) -> bool:
    if len(digits) != 9 or not digits.isdigit():
        return False
    d = [int(c) for c in digits]
    checksum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])
    return checksum % 10 == 0 and digits != "000000000"


def _digits_of(run: str) -> str:
    out = []
    for token in re.findall(rf"\d|{_DIGIT_WORD}", run, flags=re.IGNORECASE):
        out.append(token if token.isdigit() else _WORD_DIGITS[token.lower()])
    return "".join(out)


def find_pii(text: str, kinds: Iterable[str] = PII_KINDS) -> list[PiiMatch]:
    wanted = set(kinds)
    found: list[PiiMatch] = []
    if "email" in wanted:
        found += [PiiMatch("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
        found += [PiiMatch("email", m.start(), m.end()) for m in _EMAIL_SPOKEN.finditer(text)]
    for m in _DIGIT_RUN.finditer(text):
        if _CODE_PREFIX.search(text, max(0, m.start() - 12), m.start()):
            continue  # part of a reference or product code such as "BC-2291740" or "E-1042"
        run = m.group(0).rstrip(" .-")
        digits = _digits_of(run)
        end = m.start() + len(run)
        before = text[max(0, m.start() - 40) : m.start()]
        kind = _classify_digits(run, digits, before, wanted)
        if kind:
            found.append(PiiMatch(kind, m.start(), end, digits))
    found.sort(key=lambda match: match.start)
    return _drop_overlaps(found)


def _classify_digits(run: str, digits: str, before: str, wanted: set[str]) -> str | None:
    n = len(digits)
    if "card_number" in wanted and luhn_valid(digits):
        return "card_number"
    if "ssn" in wanted and n == 9 and (_SSN.match(run.strip()) and "-" in run or _SSN_CONTEXT.search(before)):
        return "ssn"
    if (
        "routing_number" in wanted
        and n == 9
        and aba_routing_valid(digits)
        and _ROUTING_CONTEXT.search(before)
    ):
        return "routing_number"
    if "bank_account" in wanted and 6 <= n <= 17 and _ACCOUNT_CONTEXT.search(before):
        return "bank_account"
    if "phone" in wanted and (
        n == 10 or (n == 11 and digits.startswith("1")) or 11 <= n <= 13 and run.lstrip().startswith("+")
    ):
        return "phone"
    return None


def _drop_overlaps(matches: list[PiiMatch]) -> list[PiiMatch]:
    kept: list[PiiMatch] = []
    for match in matches:
        if kept and match.start < kept[-1].end:
            continue
        kept.append(match)
    return kept


def redact(text: str, kinds: Iterable[str] = PII_KINDS) -> str:
    """Replace each match with ``[KIND]``; card numbers keep their last four digits."""
    matches = find_pii(text, kinds)
    if not matches:
        return text
    parts: list[str] = []
    cursor = 0
    for match in matches:
        parts.append(text[cursor : match.start])
        if match.kind == "card_number":
            parts.append(f"[CARD ****{match.digits[-4:]}]")
        else:
            parts.append(f"[{match.kind.upper()}]")
        cursor = match.end
    parts.append(text[cursor:])
    return "".join(parts)


def mask_digit_runs(text: str, min_digits: int) -> str:
    """Replace every run of at least ``min_digits`` digits (numerals or digit words) with
    ``[DIGITS]``: interim text may hold half a card number that no check can confirm yet."""

    def mask(match: re.Match[str]) -> str:
        run = match.group(0).rstrip(" .-")
        if len(_digits_of(run)) < min_digits:
            return match.group(0)
        return "[DIGITS]" + match.group(0)[len(run) :]

    return _DIGIT_RUN.sub(mask, text) if min_digits > 0 else text
