"""A narrow task for supervised tuning tests: route a support ticket to one of three queue
codes. The base model answers in free text (never the bare code); a tuned one learns the
codes and the format from a few dozen examples."""

from __future__ import annotations

import json
import random

QUEUES = {
    "BILLING": ["I was charged twice for {item}", "the invoice for {item} shows the wrong price",
                "please refund my payment for {item}", "my card was billed for {item} I cancelled",
                "why is there an extra fee on my bill for {item}"],
    "SHIPPING": ["my {item} has not arrived yet", "the tracking number for my {item} is not "
                 "working", "the courier delivered my {item} to the wrong address",
                 "my {item} arrived damaged in the box", "when will my {item} be shipped"],
    "ACCOUNT": ["I cannot sign in to order {item}", "the password reset email never came "
                "while buying {item}", "my account was locked after ordering {item}",
                "how do I change the email on my account, I bought {item}",
                "two-factor codes fail when I try to buy {item}"],
}
ITEMS = ["the blue kettle", "a desk lamp", "the running shoes", "my headphones", "a winter coat",
         "the coffee grinder", "a phone case", "the garden hose", "a yoga mat", "the backpack",
         "a wall clock", "the toaster"]
SYSTEM = "Route the support ticket to a queue."


def examples(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        queue = list(QUEUES)[i % 3]
        text = rng.choice(QUEUES[queue]).format(item=rng.choice(ITEMS))
        out.append((f"Ticket: {text}", queue))
    return out


def jsonl(pairs: list[tuple[str, str]], system: str = SYSTEM) -> bytes:
    lines = [json.dumps({"systemInstruction": {"parts": [{"text": system}]},
                         "contents": [{"role": "user", "parts": [{"text": q}]},
                                      {"role": "model", "parts": [{"text": a}]}]})
             for q, a in pairs]
    return ("\n".join(lines) + "\n").encode()
