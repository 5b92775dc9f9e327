"""Realistic call transcripts for the QA tests (Northwind Connect demo rules)."""

from __future__ import annotations

from typing import Any

Line = dict[str, Any]


def _lines(*turns: tuple[str, float, str]) -> list[Line]:
    return [{"speaker": s, "at": at, "text": t} for s, at, t in turns]


# A model call: greeting, recording notice, verification first, probing, empathy when the
# customer gets upset, a fix with a timeline, a hold with permission, recap, warm close.
EXEMPLARY = _lines(
    (
        "agent",
        0.0,
        "Good morning, thank you for calling Northwind Connect, this call may be recorded for quality and training purposes. My name is Alex, how can I help you today?",
    ),
    (
        "customer",
        8.0,
        "Hi Alex, I've just opened my bill and it's gone up by nearly twenty pounds and nobody told me anything about it.",
    ),
    (
        "agent",
        15.0,
        "I'm sorry to hear that, a jump like that is a horrible surprise. I'll look into it with you right now. Can I take your full name and postcode please?",
    ),
    ("customer", 22.0, "It's Rachel Green, R G one, four T Y."),
    (
        "agent",
        27.0,
        "Thanks Rachel. For security, can you confirm your date of birth and the last four digits of the account you pay with?",
    ),
    ("customer", 33.0, "Twelfth of March eighty eight, and it ends four four one two."),
    (
        "agent",
        38.0,
        "Perfect, you're verified. Which month's bill are you looking at, and roughly what were you expecting to pay?",
    ),
    (
        "customer",
        44.0,
        "The June one. Normally it's forty two pounds and this says sixty one. It's ridiculous, I'm really annoyed to be honest.",
    ),
    (
        "agent",
        51.0,
        "I completely understand, that's a big difference and I'd be annoyed too. So if I understand correctly, your June bill is nineteen pounds higher than usual and you weren't told why?",
    ),
    ("customer", 59.0, "Yes, exactly."),
    (
        "agent",
        62.0,
        "Is it okay if I place you on a brief hold for about a minute while I check the charges with billing?",
    ),
    ("customer", 66.0, "Yeah, that's fine."),
    ("agent", 68.0, "Thank you, I'm placing you on hold now."),
    (
        "agent",
        130.0,
        "Thanks for holding Rachel. Looking at your account, your twelve month discount ended in May, which is where the extra nineteen pounds comes from. We should have written to you first and I can't see that we did.",
    ),
    ("customer", 142.0, "So I'm just stuck paying more now?"),
    (
        "agent",
        148.0,
        "Not at all, and I'm sorry this has been such a hassle. I've applied a loyalty discount that brings you back to forty two pounds a month for the next twelve months, and I've added a nineteen pound credit for June because you weren't notified.",
    ),
    ("customer", 158.0, "Oh, okay, that's much better, thank you."),
    (
        "agent",
        162.0,
        "You'll see the credit on your July bill, and I'll send you an email confirming the new price within the hour. Does that all make sense?",
    ),
    ("customer", 169.0, "Yes, that's great, thanks."),
    (
        "agent",
        172.0,
        "Just to summarise, your discount ended in May, I've added a new loyalty discount so it's back to forty two pounds a month, and a nineteen pound credit will show on your July bill. Is there anything else I can help you with today?",
    ),
    ("customer", 184.0, "No, that's everything, you've been really helpful."),
    (
        "agent",
        188.0,
        "You're very welcome Rachel, thank you for calling Northwind Connect and have a lovely day.",
    ),
)

# Competent on the problem itself, but: no greeting, the recording notice skipped, a hold
# without asking, and the call just stops (no anything-else, no recap, no thanks).
NO_GREETING_NO_CLOSING = _lines(
    ("agent", 0.0, "Yeah, go ahead."),
    (
        "customer",
        3.0,
        "Hi, my internet keeps cutting out every evening and I work from home, it's driving me mad.",
    ),
    (
        "agent",
        10.0,
        "Oh I'm really sorry, that sounds so frustrating when you're working. When did you first notice it dropping?",
    ),
    ("customer", 17.0, "About a week ago, always around seven o'clock."),
    (
        "agent",
        22.0,
        "Okay. Can you confirm your date of birth and the last four digits of the account you pay with?",
    ),
    ("customer", 28.0, "Fifth of July ninety, ends two two nine one."),
    ("agent", 33.0, "Thanks. Is it happening on all your devices or just the laptop?"),
    ("customer", 38.0, "Everything, the phone and the TV box too."),
    (
        "agent",
        43.0,
        "So if I understand correctly, the whole connection drops every evening around seven on all devices, since about a week ago?",
    ),
    (
        "customer",
        50.0,
        "Yes, that's it. I'm really fed up with it honestly, I've lost two work calls this week.",
    ),
    ("agent", 56.0, "I completely understand, losing work calls is awful. I'm putting you on hold now."),
    (
        "agent",
        120.0,
        "Right, I've run a line test and there's a fault on the line at the cabinet, so I've booked an engineer for Thursday morning between eight and one.",
    ),
    ("customer", 128.0, "Okay, Thursday works."),
    (
        "agent",
        131.0,
        "The engineer will text you thirty minutes before they arrive, and I've applied a credit for the days you've been affected, which will show on your next bill.",
    ),
    ("customer", 139.0, "Okay good, that's helpful, thanks."),
    ("agent", 142.0, "Has that answered everything for the connection?"),
    ("customer", 146.0, "Yes it has."),
    ("agent", 148.0, "Okay."),
)

EXEMPLARY_CUSTOMER = {"id": "cust-9001", "name": "Rachel Green", "tier": "gold"}
RUSHED_CUSTOMER = {"id": "cust-9002", "name": "Tom Baker", "tier": "silver"}

# The exemplary billing call with every acknowledgement of the customer's feelings removed.
NO_EMPATHY = [dict(line) for line in EXEMPLARY]
NO_EMPATHY[2]["text"] = "Okay. Can I take your full name and postcode please?"
NO_EMPATHY[8]["text"] = "So your June bill is nineteen pounds higher than usual and you weren't told why?"
NO_EMPATHY[15]["text"] = (
    "Not at all. I've applied a loyalty discount that brings you back to forty two pounds a month for the next twelve months, and I've added a nineteen pound credit for June because you weren't notified."
)
