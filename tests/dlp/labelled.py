"""A labelled sample for the built-in detectors: sentences written for labkit, each with the
(infoType, quote) pairs a careful reader marks as sensitive. Negatives (numbers that fail a
checksum, words that look like names, dates that are not birth dates) are the point: the
sample measures precision and recall, it does not restate the detectors' patterns.
Numbers are test values (Luhn-valid test cards, SSNs in the issued ranges, IBANs from the
ISO 13616 examples) that belong to no one."""

from __future__ import annotations

INFO_TYPES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD_NUMBER",
              "US_SOCIAL_SECURITY_NUMBER", "IP_ADDRESS", "IBAN_CODE", "DATE_OF_BIRTH",
              "PERSON_NAME"]

SAMPLE: list[tuple[str, set[tuple[str, str]]]] = [
    ("Please contact Maria Garcia at maria.garcia@example.com.",
     {("PERSON_NAME", "Maria Garcia"), ("EMAIL_ADDRESS", "maria.garcia@example.com")}),
    ("Ticket 4521 was closed on 2024-03-08 by the night shift.", set()),
    ("Her SSN is 536-22-1234 and her card is 5555 5555 5555 4444.",
     {("US_SOCIAL_SECURITY_NUMBER", "536-22-1234"), ("CREDIT_CARD_NUMBER", "5555 5555 5555 4444")}),
    ("Order number 1234 5678 9012 3456 shipped yesterday.", set()),
    ("The server at 172.16.254.1 rejected version 1.2.3.4000 of the agent.",
     {("IP_ADDRESS", "172.16.254.1")}),
    ("Wire the deposit to FR14 2004 1010 0505 0001 3M02 606.",
     {("IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606")}),
    ("Reference FR14 2004 1010 0505 0001 3M02 607 is a typo.", set()),
    ("Patient born 1962-11-30 was admitted on 2023-02-14.",
     {("DATE_OF_BIRTH", "1962-11-30")}),
    ("DOB: 07/04/1990, phone (415) 555-0198.",
     {("DATE_OF_BIRTH", "07/04/1990"), ("PHONE_NUMBER", "(415) 555-0198")}),
    ("Mr. Nakamura will call from +81 3 1234 5678 tomorrow.",
     {("PERSON_NAME", "Nakamura"), ("PHONE_NUMBER", "+81 3 1234 5678")}),
    ("Grace periods and Summer sales start in May.", set()),
    ("Sent by james.o'neil at noon; reply to ops@example.org.",
     {("EMAIL_ADDRESS", "ops@example.org")}),
    ("Invalid SSN 000-45-6789 and 987-65-4321 must not match.", set()),
    ("Kevin Brown's Visa 4012 8888 8888 1881 expired.",
     {("PERSON_NAME", "Kevin Brown"), ("CREDIT_CARD_NUMBER", "4012 8888 8888 1881")}),
    ("IPv6 gateway fe80::1ff:fe23:4567:890a is up.",
     {("IP_ADDRESS", "fe80::1ff:fe23:4567:890a")}),
    ("Meeting at 10:30 in room 4.2, budget 10.000.000.", set()),
    ("Dear Sarah, your date of birth March 12, 1985 is on file.",
     {("PERSON_NAME", "Sarah"), ("DATE_OF_BIRTH", "March 12, 1985")}),
    ("Call 206-555-0100 to reach Dr. Adeyemi.",
     {("PHONE_NUMBER", "206-555-0100"), ("PERSON_NAME", "Adeyemi")}),
    ("Account DE89 3704 0044 0532 0130 00 belongs to Thomas Meyer.",
     {("IBAN_CODE", "DE89 3704 0044 0532 0130 00"), ("PERSON_NAME", "Thomas Meyer")}),
    ("Build 20240308 passed 2065550143 tests.", set()),
    ("Employee record: Linda Chen, linda@corp.example, 415.555.0111.",
     {("PERSON_NAME", "Linda Chen"), ("EMAIL_ADDRESS", "linda@corp.example"),
      ("PHONE_NUMBER", "415.555.0111")}),
    ("Amex 3714 496353 98431 was charged twice.",
     {("CREDIT_CARD_NUMBER", "3714 496353 98431")}),
    ("May the fourth be with you, said Will.", set()),
    ("The birthday party is on 2025-06-01; Emma was born 2019-06-01.",
     {("PERSON_NAME", "Emma"), ("DATE_OF_BIRTH", "2019-06-01")}),
    ("Social security number 219-09-9999 appeared in an old advert.", set()),
]


def score(found_by_sentence: list[set[tuple[str, str]]]) -> dict[str, tuple[int, int, int]]:
    """infoType -> (true positives, false positives, false negatives)."""
    counts = {name: [0, 0, 0] for name in INFO_TYPES}
    for (_, expected), found in zip(SAMPLE, found_by_sentence, strict=True):
        for name, quote in found | expected:
            if (name, quote) in found and (name, quote) in expected:
                counts[name][0] += 1
            elif (name, quote) in found:
                counts[name][1] += 1
            else:
                counts[name][2] += 1
    return {name: tuple(c) for name, c in counts.items()}


def precision_recall(counts) -> tuple[float, float]:
    tp = sum(c[0] for c in counts.values())
    fp = sum(c[1] for c in counts.values())
    fn = sum(c[2] for c in counts.values())
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)
