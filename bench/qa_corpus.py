"""Synthetic but realistic call transcripts for the QA benchmarks.

Calls are assembled from hand-written phrase banks (several paraphrases per behaviour, plus
names, amounts, dates and references so texts rarely repeat exactly) with per-call quality
knobs: which behaviours the agent shows or skips. ``variant`` picks one of two disjoint
paraphrase pools, so a labelled test split can be phrased differently from the dev split.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

FIRST = [
    "Dana",
    "Marcus",
    "Priya",
    "Tom",
    "Helen",
    "Aisha",
    "Gary",
    "Rachel",
    "Omar",
    "Lucy",
    "Ben",
    "Chloe",
    "Sanjay",
    "Maria",
    "Kevin",
    "Fiona",
]
LAST = [
    "Hughes",
    "Patel",
    "Baker",
    "Marsh",
    "Khan",
    "Lomax",
    "Green",
    "Osei",
    "Walsh",
    "Novak",
    "Reid",
    "Young",
]
AGENTS = ["Alex", "Sam", "Jordan", "Priya", "Chris", "Jamie", "Morgan", "Taylor"]
NUMBERS = [
    "twelve",
    "nineteen",
    "twenty two",
    "thirty",
    "thirty nine",
    "forty two",
    "fifty five",
    "sixty one",
    "seventy",
    "eighty four",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def _pick(rng: random.Random, pools: tuple[list[str], list[str]], variant: int) -> str:
    return rng.choice(pools[variant])


# (pool for variant 0, pool for variant 1): disjoint paraphrases of the same behaviour.
GREETING = (
    [
        "Thank you for calling Northwind Connect, this call may be recorded for quality and training purposes. My name is {agent}, how can I help?",
        "Good {part}, you're through to Northwind Connect, calls are recorded for quality and training. I'm {agent}, what can I do for you today?",
    ],
    [
        "Hello, Northwind Connect customer services, {agent} speaking. Just so you know this call is being recorded. How can I help you today?",
        "Hi there, thanks for calling Northwind, please be aware that this conversation is recorded. You're speaking with {agent}, how may I help?",
    ],
)
GREETING_NO_NOTICE = (
    ["Thank you for calling Northwind Connect, my name is {agent}, how can I help?"],
    ["Northwind Connect, {agent} speaking, how can I help you today?"],
)
CURT_OPEN = (["Yeah, go ahead.", "Hello?"], ["Yep, what is it?", "Northwind."])
VERIFY = (
    [
        "Thanks {first}. For security can you confirm your date of birth and the last four digits of the account?",
        "Before I look at anything, can you confirm your date of birth and the postcode on the account?",
    ],
    [
        "Lovely, {first}. Could you verify your identity for me with your date of birth and the last four digits of your card?",
        "Just for security, can you tell me your date of birth and your account PIN?",
    ],
)
VERIFIED = (
    ["Perfect, that's all confirmed.", "Thank you, you're verified."],
    ["Great, that matches, thanks.", "Lovely, all verified."],
)
PROBE = (
    [
        "When did you first notice the problem?",
        "Which charge on the bill are you asking about exactly?",
        "Is it happening on all your devices or just the one?",
        "What does the light on the hub look like right now?",
        "How long has this been going on for?",
        "What amount were you expecting to pay this month?",
    ],
    [
        "Roughly what date did this start?",
        "Can you read me the exact wording of the charge?",
        "Does it affect the phone and the laptop or only one of them?",
        "Have you restarted the router since it began?",
        "Is it worse at a particular time of day?",
        "What did your last bill come to, roughly?",
    ],
)
CONFIRM = (
    ["So if I understand correctly, {issue}?", "Just to make sure I've got this right, {issue}?"],
    ["So what you're saying is {issue}, is that right?", "Okay, let me check I've understood: {issue}?"],
)
EMPATHY = (
    [
        "I'm really sorry about that, I can see why you're frustrated.",
        "I completely understand, that must be really annoying.",
        "I'm so sorry you've had to chase this.",
    ],
    [
        "That sounds really stressful, and I'm sorry it's happened.",
        "I can imagine how inconvenient that's been for you, I do apologise.",
        "I totally understand how fed up you must be.",
    ],
)
FIX = (
    [
        "I've applied a credit of {amount} pounds to your account.",
        "I've removed the charge and cancelled the add-on for you.",
        "I've reset the line from our side and booked an engineer for {day} morning.",
        "I've processed the refund of {amount} pounds back to your card.",
    ],
    [
        "Right, I've taken the {amount} pounds off the bill and added it as a credit.",
        "I've switched you to the correct tariff from today.",
        "I've raised a repair and an engineer will come out on {day} between eight and one.",
        "I've sent {amount} pounds back to the card you paid with.",
    ],
)
EXPECT = (
    [
        "You'll see that on your next bill, and I'll email you a confirmation within the hour.",
        "The engineer will text you thirty minutes before they arrive.",
    ],
    [
        "It'll show on the next statement, and a confirmation text is on its way to you now.",
        "The refund takes three to five working days to reach your card.",
    ],
)
CHECK = (
    ["Does that all make sense?", "Are you happy with that?"],
    ["Has that answered everything for you?", "Is that okay for you?"],
)
RECAP = (
    ["Just to summarise, {recap}.", "So to recap, {recap}."],
    ["Let me quickly go over what we've agreed: {recap}.", "Just to sum up, {recap}."],
)
ANYTHING = (
    ["Is there anything else I can help you with today?"],
    ["Can I help with anything else while you're on?"],
)
GOODBYE = (
    [
        "Thank you for calling Northwind Connect {first}, have a lovely day.",
        "Thanks {first}, take care and have a great evening.",
    ],
    [
        "You're very welcome {first}, enjoy the rest of your day.",
        "Thanks for your time {first}, bye for now.",
    ],
)
CURT_CLOSE = (["Okay.", "Right, bye."], ["Okay then.", "Bye."])
DISMISSIVE = (
    ["There's nothing I can do about that.", "Like I said, you'll just have to wait."],
    [
        "That's not really my problem, it's the billing team.",
        "You should have read the terms and conditions.",
    ],
)
HOLD_ASK = (
    ["Is it okay if I place you on a brief hold while I check that?"],
    ["Would it be alright if I put you on hold for a minute or two?"],
)
HOLD = (["Thank you, I'm placing you on hold now."], ["Thanks, I'm putting you on hold now."])
HOLD_RUDE = (["Hang on, I'm putting you on hold."], ["I'm going to place you on hold now."])
HOLD_BACK = (["Thanks for holding {first}."], ["Thanks for waiting {first}."])
PROMISE = (["I guarantee you'll get a full refund by {day}."], ["I promise this will never happen again."])
FILLER = (
    ["Okay.", "Right.", "Sure.", "Let me just bring that up.", "Bear with me one second.", "Mm-hmm, yeah."],
    ["Okay.", "Right.", "Yep.", "Let me have a look.", "One moment.", "Sure, yeah."],
)

SCENARIOS: list[dict[str, Any]] = [
    {
        "intent": "billing_inquiry",
        "open": [
            "Hi, my bill's gone up by about {amount} pounds and nobody told me why.",
            "I've been charged twice for the same thing this month.",
        ],
        "issue": "your bill is {amount} pounds higher than usual and you weren't told why",
        "recap": "I've applied the credit and it'll show on your next bill",
    },
    {
        "intent": "technical_support",
        "open": [
            "My broadband keeps cutting out every evening and I work from home.",
            "The internet's been dead since {day}, the hub's got a red light.",
        ],
        "issue": "the connection keeps dropping, mostly in the evenings",
        "recap": "there's a line fault, an engineer is booked for {day} and you'll get a credit",
    },
    {
        "intent": "cancellation",
        "open": [
            "I want to cancel, I've found a cheaper deal elsewhere.",
            "I'm thinking of leaving, the price has gone up again.",
        ],
        "issue": "you want to leave because the price has gone up",
        "recap": "you're staying on the loyalty price and nothing has been cancelled",
    },
    {
        "intent": "complaint",
        "open": [
            "This is the third time I've called about the same charge and nobody's fixed it.",
            "I'm really unhappy, I was promised a callback that never came.",
        ],
        "issue": "you've called several times and the charge still hasn't been removed",
        "recap": "the charge is removed and a refund is on its way",
    },
]
CUSTOMER_NEUTRAL = [
    "Okay.",
    "Yes, that's right.",
    "It's the {date}.",
    "Yeah, about a week ago I think.",
    "Both of them, yeah.",
    "It's {first} {last}.",
    "Sure, it's the fourteenth of March eighty six.",
    "Right, okay.",
    "I think so, yes.",
]
CUSTOMER_NEGATIVE = [
    "Honestly this is ridiculous, I'm really fed up with it.",
    "That's not good enough, I've wasted hours on this.",
    "This is the worst service I've had, I'm furious.",
    "I'm so annoyed, nobody ever sorts anything out.",
]
CUSTOMER_HAPPY = [
    "Oh that's great, thank you so much.",
    "Brilliant, that's really helpful.",
    "Lovely, thanks, that's sorted then.",
]
CUSTOMER_UNHAPPY = [
    "I don't believe a word of it.",
    "Whatever, I'll probably just leave.",
    "Fine. This is hopeless.",
]


@dataclass
class Knobs:
    """What the agent does on this call (True = does it well)."""

    greeting: bool = True
    notice: bool = True
    verify: bool = True
    probes: int = 2
    confirm: bool = True
    empathy: bool = True
    fix: bool = True
    expect: bool = True
    check: bool = True
    recap: bool = True
    anything_else: bool = True
    goodbye: bool = True
    dismissive: bool = False
    hold: str = "none"  # none | asked | unasked
    promise: bool = False
    happy_end: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def random_knobs(rng: random.Random, quality: float) -> Knobs:
    """Each behaviour happens with a probability that follows the agent's quality (0..1)."""

    def does(p: float = 1.0) -> bool:
        return rng.random() < min(0.98, quality * p + 0.1)

    fix = does(1.1)
    return Knobs(
        greeting=does(1.2),
        notice=does(1.1),
        verify=does(1.2),
        probes=rng.choice([0, 1, 2, 3]) if does() else rng.choice([0, 1]),
        confirm=does(0.9),
        empathy=does(),
        fix=fix,
        expect=fix and does(),
        check=does(0.8),
        recap=does(0.9),
        anything_else=does(1.1),
        goodbye=does(1.2),
        dismissive=rng.random() > quality + 0.45,
        hold=rng.choice(["none", "none", "asked" if does() else "unasked"]),
        promise=rng.random() > quality + 0.55,
        happy_end=fix and rng.random() < 0.3 + quality * 0.7,
    )


def build_call(
    rng: random.Random, knobs: Knobs, *, variant: int = 0, turns: int = 40
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """(utterances, customer profile, intent) of one call of about ``turns`` utterances."""
    scenario = rng.choice(SCENARIOS)
    first, last, agent = rng.choice(FIRST), rng.choice(LAST), rng.choice(AGENTS)
    slots = {
        "first": first,
        "last": last,
        "agent": agent,
        "amount": rng.choice(NUMBERS),
        "day": rng.choice(DAYS),
        "part": rng.choice(["morning", "afternoon"]),
        "date": f"{rng.randint(1, 28)}th",
    }

    def fill(text: str) -> str:
        slots["issue"] = scenario["issue"].format(**slots)
        slots["recap"] = scenario["recap"].format(**slots)
        return text.format(**slots)

    lines: list[tuple[str, str]] = []
    say = lambda speaker, pools: lines.append((speaker, fill(_pick(rng, pools, variant))))  # noqa: E731
    cust = lambda pool: lines.append(("customer", fill(rng.choice(pool))))  # noqa: E731

    if knobs.greeting:
        say("agent", GREETING if knobs.notice else GREETING_NO_NOTICE)
    else:
        say("agent", CURT_OPEN)
    cust(scenario["open"])
    if knobs.empathy:
        say("agent", EMPATHY)
    else:
        say("agent", FILLER)
    if knobs.verify:
        say("agent", VERIFY)
        cust(CUSTOMER_NEUTRAL)
        say("agent", VERIFIED)
    for _ in range(knobs.probes):
        say("agent", PROBE)
        cust(CUSTOMER_NEUTRAL)
    cust(CUSTOMER_NEGATIVE)
    if knobs.empathy:
        say("agent", EMPATHY)
    elif knobs.dismissive:
        say("agent", DISMISSIVE)
    else:
        say("agent", FILLER)
    if knobs.confirm:
        say("agent", CONFIRM)
        cust(CUSTOMER_NEUTRAL)
    if knobs.hold != "none":
        if knobs.hold == "asked":
            say("agent", HOLD_ASK)
            cust(["Yes, that's fine.", "Sure, go ahead."])
            say("agent", HOLD)
        else:
            say("agent", HOLD_RUDE)
        say("agent", HOLD_BACK)
    if knobs.promise:
        say("agent", PROMISE)
    if knobs.fix:
        say("agent", FIX)
        cust(CUSTOMER_NEUTRAL)
        if knobs.expect:
            say("agent", EXPECT)
    else:
        say("agent", FILLER)
        cust(CUSTOMER_NEGATIVE)
        if knobs.dismissive:
            say("agent", DISMISSIVE)
    # Small talk and back-and-forth until the call has about `turns` utterances.
    while len(lines) < turns - 8:
        say("agent", FILLER)
        cust(CUSTOMER_NEUTRAL)
    if knobs.check:
        say("agent", CHECK)
    cust(CUSTOMER_HAPPY if knobs.happy_end else CUSTOMER_UNHAPPY)
    if knobs.recap:
        say("agent", RECAP)
        cust(CUSTOMER_NEUTRAL)
    if knobs.anything_else:
        say("agent", ANYTHING)
        cust(["No, that's everything, thanks.", "No, that's all."] if knobs.happy_end else CUSTOMER_UNHAPPY)
    say("agent", GOODBYE if knobs.goodbye else CURT_CLOSE)
    utterances = []
    at = 0.0
    for speaker, text in lines:
        utterances.append({"speaker": speaker, "text": text, "at": round(at, 1)})
        at += 2.0 + len(text.split()) * 0.35 + (60.0 if "hold now" in text else 0.0)
    customer = {"id": f"cust-{rng.randint(1000, 99999)}", "name": f"{first} {last}"}
    return utterances, customer, scenario["intent"]
