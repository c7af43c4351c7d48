"""Built-in infoType detectors: a pattern finds candidates, a checksum or rule rejects the
impossible ones, and context words nearby raise or lower the likelihood, as Sensitive Data
Protection describes its detectors (https://cloud.google.com/sensitive-data-protection/docs/
infotypes-reference; likelihood: .../docs/likelihood).

A detector yields (start, end, likelihood) in code points of the text it is given. Likelihoods
are DLP's enum values: 1 VERY_UNLIKELY, 2 UNLIKELY, 3 POSSIBLE, 4 LIKELY, 5 VERY_LIKELY.

These are honest, small detectors, not Google's models: PERSON_NAME knows the first names in
first_names.txt (see its provenance and limits) and names after an honorific or "name:";
PHONE_NUMBER knows North American and +<country> international forms; DATE knows ISO,
US numeric and English month-name forms.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

VERY_UNLIKELY, UNLIKELY, POSSIBLE, LIKELY, VERY_LIKELY = 1, 2, 3, 4, 5

Hit = tuple[int, int, int]


def _near(text: str, start: int, end: int, words: re.Pattern, before: int = 40,
          after: int = 0) -> bool:
    return bool(words.search(text[max(0, start - before):start])
                or (after and words.search(text[end:end + after])))


# ---- EMAIL_ADDRESS
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b")


def email(text: str) -> Iterator[Hit]:
    for m in _EMAIL.finditer(text):
        if ".." not in m.group() and not m.group().startswith("."):
            yield m.start(), m.end(), LIKELY


# ---- PHONE_NUMBER
_PHONE = re.compile(
    r"(?<![\w+])(?:\+1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\d)"  # NANP
    r"|(?<![\w+])\+(?:[2-9]\d{0,2})(?:[ .-]?\d{1,4}){2,6}(?!\d)"  # +CC international
    r"|(?<![\w+.-])\d{10}(?![\w.-])")  # bare ten digits: only with context
_PHONE_WORDS = re.compile(r"(?i)\b(phone|tel|telephone|mobile|cell|call|fax|contact)\b")


def phone(text: str) -> Iterator[Hit]:
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if not 7 <= len(digits) <= 15:
            continue
        context = _near(text, m.start(), m.end(), _PHONE_WORDS)
        if m.group().isdigit():
            yield m.start(), m.end(), POSSIBLE if context else UNLIKELY
        else:
            yield m.start(), m.end(), VERY_LIKELY if context else LIKELY


# ---- CREDIT_CARD_NUMBER
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_CARD_WORDS = re.compile(r"(?i)\b(card|credit|visa|mastercard|amex|cc|payment)\b")
_ISSUERS = re.compile(r"^(4|5[1-5]|2[2-7]|3[47]|6011|65|64[4-9]|35|36|30[0-5]|62)")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def credit_card(text: str) -> Iterator[Hit]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _ISSUERS.match(digits) and luhn(digits):
            context = _near(text, m.start(), m.end(), _CARD_WORDS)
            yield m.start(), m.end(), VERY_LIKELY if context else LIKELY


# ---- US_SOCIAL_SECURITY_NUMBER
_SSN = re.compile(r"(?<![\d-])(\d{3})([ -]?)(\d{2})\2(\d{4})(?![\d-])")
_SSN_WORDS = re.compile(r"(?i)\b(ssn|ss#|social security|social)\b")
# Numbers the SSA never issues or has voided (https://www.ssa.gov/employer/randomization.html:
# area 000, 666 and 900-999, group 00 and serial 0000 are never assigned; 078-05-1120 and
# 219-09-9999 were published in advertisements and voided).
_VOID_SSNS = {"078051120", "219099999"}


def valid_ssn(area: str, group: str, serial: str) -> bool:
    return not (area in ("000", "666") or area >= "900" or group == "00" or serial == "0000"
                or area + group + serial in _VOID_SSNS)


def ssn(text: str) -> Iterator[Hit]:
    for m in _SSN.finditer(text):
        area, sep, group, serial = m.groups()
        if not valid_ssn(area, group, serial):
            continue
        context = _near(text, m.start(), m.end(), _SSN_WORDS)
        if sep:
            yield m.start(), m.end(), VERY_LIKELY if context else LIKELY
        else:  # nine bare digits are many things
            yield m.start(), m.end(), LIKELY if context else UNLIKELY


# ---- IP_ADDRESS
_IP = re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:]+)(?![\w.:])")


def ip_address(text: str) -> Iterator[Hit]:
    for m in _IP.finditer(text):
        candidate = m.group()
        if ":" in candidate and candidate.count(":") < 2:
            continue
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            continue
        yield m.start(), m.end(), LIKELY


# ---- IBAN_CODE
# IBAN lengths by country (ISO 13616 registry, SWIFT: https://www.swift.com/standards/
# data-standards/iban); the check digits make the number mod 97 equal 1.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TR": 26}
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
                   r"(?![A-Za-z0-9])")


def iban_valid(code: str) -> bool:
    if _IBAN_LENGTHS.get(code[:2]) != len(code):
        return False
    moved = code[4:] + code[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def iban(text: str) -> Iterator[Hit]:
    for m in _IBAN.finditer(text):
        if iban_valid(m.group().replace(" ", "")):
            yield m.start(), m.end(), VERY_LIKELY


# ---- DATE and DATE_OF_BIRTH
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|"
           "december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
DATE_PATTERN = re.compile(
    r"(?<![\d/-])(?:(?P<iso>(?P<iy>\d{4})-(?P<im>\d{2})-(?P<id>\d{2}))"
    r"|(?P<us>(?P<um>\d{1,2})/(?P<ud>\d{1,2})/(?P<uy>\d{4}))"
    rf"|(?P<name>(?i:(?P<nm>{_MONTHS})\.? (?P<nd>\d{{1,2}}),? (?P<ny>\d{{4}}))))(?![\d/-])")
_DOB_WORDS = re.compile(r"(?i)\b(born|birth|birthday|dob|d\.o\.b|date of birth|birthdate)\b")


def _plausible(m: re.Match) -> bool:
    if m["iso"]:
        month, day = int(m["im"]), int(m["id"])
    elif m["us"]:
        month, day = int(m["um"]), int(m["ud"])
    else:
        month, day = 1, int(m["nd"])
    return 1 <= month <= 12 and 1 <= day <= 31


def date(text: str) -> Iterator[Hit]:
    for m in DATE_PATTERN.finditer(text):
        if _plausible(m):
            yield m.start(), m.end(), LIKELY


def date_of_birth(text: str) -> Iterator[Hit]:
    for m in DATE_PATTERN.finditer(text):
        if _plausible(m):
            context = _near(text, m.start(), m.end(), _DOB_WORDS, before=30)
            yield m.start(), m.end(), LIKELY if context else UNLIKELY


# ---- PERSON_NAME
_NAME_WORDS = re.compile(r"(?i)\b(name|patient|customer|employee|contact|signed|dear)\b\W*$")
_HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.? ([A-Z][a-z]+(?:[ -][A-Z][a-z]+)?)")
_SENTENCE_START = re.compile(r"[.!?]\s+$")
_WORD = re.compile(r"\b[A-Z][a-z]+\b")
_SURNAME = re.compile(r" (?:[A-Z]\. )?[A-Z][a-z]+(?:-[A-Z][a-z]+)?\b")


@cache
def first_names() -> frozenset[str]:
    lines = (Path(__file__).with_name("first_names.txt").read_text().splitlines())
    return frozenset(line.strip() for line in lines if line.strip() and line[0] != "#")


def person_name(text: str) -> Iterator[Hit]:
    names = first_names()
    honorifics = [m.span(1) for m in _HONORIFIC.finditer(text)]
    starts = [start for start, _ in honorifics]
    for start, end in honorifics:
        yield start, end, VERY_LIKELY
    taken_until = 0  # the end of the last name found by first name (they come in order)
    for m in _WORD.finditer(text):
        if m.group() not in names or m.start() < taken_until:
            continue
        i = bisect.bisect_right(starts, m.start()) - 1
        if i >= 0 and m.start() < honorifics[i][1]:
            continue  # already found after its honorific
        surname = _SURNAME.match(text, m.end())
        end = surname.end() if surname else m.end()
        taken_until = end
        context = bool(_NAME_WORDS.search(text[max(0, m.start() - 30):m.start()]))
        if surname:
            yield m.start(), end, VERY_LIKELY if context else LIKELY
        elif context:
            yield m.start(), end, LIKELY
        else:  # a first name alone may be a word ("Grace periods"), and capitals at the
            # start of a sentence are no evidence at all
            start_of_sentence = m.start() == 0 or _SENTENCE_START.search(
                text[max(0, m.start() - 8):m.start()])
            yield m.start(), end, UNLIKELY if start_of_sentence else POSSIBLE


BUILT_IN: dict[str, Callable[[str], Iterator[Hit]]] = {
    "EMAIL_ADDRESS": email,
    "PHONE_NUMBER": phone,
    "CREDIT_CARD_NUMBER": credit_card,
    "US_SOCIAL_SECURITY_NUMBER": ssn,
    "IP_ADDRESS": ip_address,
    "IBAN_CODE": iban,
    "DATE": date,
    "DATE_OF_BIRTH": date_of_birth,
    "PERSON_NAME": person_name,
}

DESCRIPTIONS = {
    "EMAIL_ADDRESS": "An email address identifies the mailbox that emails are sent to or from.",
    "PHONE_NUMBER": "A telephone number.",
    "CREDIT_CARD_NUMBER": "A credit card number is 12 to 19 digits long. They are used for "
                          "payment transactions globally.",
    "US_SOCIAL_SECURITY_NUMBER": "A United States Social Security number (SSN) is a 9-digit "
                                 "number issued to US citizens, permanent residents, and "
                                 "temporary residents.",
    "IP_ADDRESS": "An Internet Protocol (IP) address (either IPv4 or IPv6).",
    "IBAN_CODE": "An International Bank Account Number (IBAN).",
    "DATE": "A date. This infoType includes most date formats.",
    "DATE_OF_BIRTH": "A date of birth.",
    "PERSON_NAME": "A full person name, which can include first names, middle names or "
                   "initials, and last names.",
}
