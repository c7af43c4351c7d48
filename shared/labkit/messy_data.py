"""A messy, seeded dataset with personal data, for the data preparation lab: the customers
and orders of Fernhill Cycles' US web shop, as an export from its shop system would look.

    from labkit import messy_data
    customers, orders = messy_data.generate(seed=9)

Everything is fictional and generated (names from common US first names and surnames, phone
numbers in the 555-01xx range reserved for fiction, card numbers that pass the Luhn check but
belong to no issuer's customer). The mess is deliberate and counted, so a lab can find it:
exact duplicate rows (the export ran twice for some customers), missing values, categories
spelled several ways, amounts typed in cents, refunds as negative amounts, and personal data
inside the free-text support notes.
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

FIRST_NAMES = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
               "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
               "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa",
               "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley", "Paul", "Emily"]
SURNAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
            "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas",
            "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark"]
# The same city, typed by different people and systems.
CITIES = {"Portland": ["Portland", "portland", "Portland ", "PDX"],
          "Seattle": ["Seattle", "seattle", "SEATTLE", "Seattle, WA"],
          "Denver": ["Denver", "denver", "Denver "],
          "Austin": ["Austin", "austin", "AUSTIN, TX"],
          "Boston": ["Boston", "boston"]}
SEGMENTS = {"commuter": ["commuter", "Commuter", "COMMUTER "], "sport": ["sport", "Sport"],
            "family": ["family", "Family"], "cargo": ["cargo"]}
CHANNELS = {"web": ["web", "Web", "WEB"], "app": ["app", "App"], "store": ["store", "Store"]}
CATEGORIES = ["bikes", "e-bikes", "parts", "accessories", "service"]
PRICES = {"bikes": (900, 250), "e-bikes": (2600, 500), "parts": (45, 25),
          "accessories": (60, 30), "service": (110, 40)}
NOTES = ["Asked about delivery times.", "Wants to change the colour.", "Gift wrap requested.",
         "Left at the front desk.", "Customer asked for an invoice.", "Replacement chain sent."]
START = datetime.date(2025, 1, 1)
DAYS = 365


def _luhn_complete(digits: str) -> str:
    """digits followed by the check digit that makes the number pass the Luhn check."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = int(d)
        if i % 2 == 0:  # doubled positions, counted from the check digit's left neighbour
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def _card(rng) -> str:
    number = _luhn_complete("4" + "".join(str(d) for d in rng.integers(0, 10, 14)))
    return " ".join(number[i:i + 4] for i in range(0, 16, 4))


def _phone(rng) -> str:
    area = rng.choice(["503", "206", "303", "512", "617"])
    return f"({area}) 555-01{rng.integers(0, 100):02d}"


def _spelling(rng, spellings: dict, canonical: str) -> str:
    options = spellings[canonical]
    return options[0] if rng.random() < 0.7 else str(rng.choice(options))


def generate(seed: int = 9, n_customers: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(customers, orders) as the shop exports them, the same for the same seed."""
    rng = np.random.default_rng(seed)
    people = []
    for i in range(n_customers):
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        born = datetime.date(1950, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 365 * 55)))
        people.append({
            "customer_id": f"C{i + 1:05d}",
            "full_name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{rng.integers(1, 99)}@example.com",
            "phone": _phone(rng) if rng.random() > 0.08 else None,
            "card_number": _card(rng),
            "date_of_birth": born if rng.random() > 0.05 else None,
            "city": _spelling(rng, CITIES, str(rng.choice(list(CITIES)))),
            "segment": (_spelling(rng, SEGMENTS, str(rng.choice(list(SEGMENTS),
                                                                p=[0.45, 0.25, 0.2, 0.1])))
                        if rng.random() > 0.06 else None),
            "signup_date": START - datetime.timedelta(days=int(rng.integers(0, 700))),
        })
    customers = pd.DataFrame(people)
    # The export ran twice for some customers: exact duplicate rows.
    twice = customers.sample(frac=0.03, random_state=seed)
    customers = pd.concat([customers, twice]).sample(frac=1.0, random_state=seed + 1)
    customers = customers.reset_index(drop=True)

    # Orders: each customer has an activity rate; a third of them stop buying at some point.
    rows = []
    order_number = 0
    names = dict(zip(customers.customer_id, customers.full_name, strict=False))
    phones = dict(zip(customers.customer_id, customers.phone, strict=False))
    for cid in sorted(names):
        rate = rng.gamma(2.0, 2.5) / DAYS  # orders a day
        stop = int(rng.integers(60, DAYS)) if rng.random() < 0.35 else DAYS
        n = rng.poisson(rate * stop)
        for day in np.sort(rng.integers(0, stop, n)):
            order_number += 1
            category = str(rng.choice(CATEGORIES, p=[0.12, 0.08, 0.35, 0.3, 0.15]))
            mean, sd = PRICES[category]
            amount = round(max(5.0, rng.normal(mean, sd)), 2)
            if rng.random() < 0.04:
                amount = -amount  # a refund
            elif rng.random() < 0.01:
                amount = round(amount * 100, 2)  # typed in cents
            note = str(rng.choice(NOTES)) if rng.random() < 0.5 else None
            if rng.random() < 0.15:  # the agent typed the caller's details into the note
                note = (f"Customer {names[cid]} called from {phones[cid] or _phone(rng)} "
                        f"about order {order_number}.")
            elif rng.random() < 0.03:
                note = f"Paid with card {_card(rng)} over the phone."
            moment = (datetime.datetime.combine(START, datetime.time(8))
                      + datetime.timedelta(days=int(day), minutes=int(rng.integers(0, 720))))
            rows.append({
                "order_id": f"O{order_number:06d}",
                "customer_id": cid,
                "order_ts": moment.replace(tzinfo=datetime.UTC),
                "category": category,
                "channel": (_spelling(rng, CHANNELS, str(rng.choice(list(CHANNELS),
                                                                    p=[0.6, 0.25, 0.15])))
                            if rng.random() > 0.04 else None),
                "amount_usd": amount if rng.random() > 0.03 else None,
                "support_note": note,
            })
    orders = pd.DataFrame(rows)
    return customers, orders
