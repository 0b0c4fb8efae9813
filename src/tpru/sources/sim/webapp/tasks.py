"""What ``sim:gui`` does on the web app: one planner per task type.

A planner turns a seeded generator and a number of actions into a `Script`:
the app's content (``window.APP_CONFIG``: user, theme colour from the shared
`THEMES`, list names, products, ...), the actions (each a few browser
operations followed by one screenshot, with a sentence for that frame) and a
description of the whole process. Every script starts on the home screen and
opens its app first; the description covers what is done in the app
("adding 'bake bread' and 'water the plants' to the 'This week' to-do list,
then ticking 'bake bread'").

Operations are tuples the simulator runs with Playwright: ``("click", css)``,
``("fill", css, text)`` and ``("press", css, key)``.

Example:
    >>> import numpy as np
    >>> script = PLANNERS["todo"](np.random.default_rng(1), 4)
    >>> done, then = script.description.split(", then ")
    >>> done
    "adding 'fix the bike' and 'recycle bottles' to the 'Home' to-do list"
    >>> then
    "ticking 'fix the bike'"
    >>> for op in script.actions[1].ops:
    ...     print(op)
    ('fill', '#new-item', 'fix the bike')
    ('press', '#new-item', 'Enter')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tpru.sources.text import join_words

Op = tuple[str, ...]

THEMES = {"indigo": "#4338ca", "rust": "#c2410c", "teal": "#0f766e"}
"""A small pool of accent colours shared by all episodes, so other episodes' screens are
plausible candidates by look (the home screens of one theme differ only by the user's
name); all dark enough that white text and a filled field stand out."""

USERS = ("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kira", "Leo", "Maya", "Noah", "Olga", "Pablo")
SURNAMES = ("Berg", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
            "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Patel", "Rossi")
CITIES = ("Oslo", "Lyon", "Porto", "Kyoto", "Austin", "Cairo", "Lima", "Perth", "Turin", "Seoul")
STREETS = ("Elm Street", "Harbour Road", "Mill Lane", "Station Road", "Park Avenue",
           "Church Street", "Bridge Road", "Orchard Way")
TODO_LISTS = ("Today", "Weekend", "Errands", "This week", "Home", "Before the trip")
TODO_ITEMS = ("buy milk", "call the dentist", "water the plants", "pay the rent",
              "book train tickets", "return library books", "fix the bike", "send the invoice",
              "clean the kitchen", "walk the dog", "renew the passport", "bake bread",
              "email Sam", "plan the trip", "buy a gift", "recycle bottles", "back up photos",
              "cancel the gym", "defrost the freezer", "order new glasses")
SETTINGS = ("Wi-Fi", "Bluetooth", "Dark mode", "Airplane mode", "Location", "Notifications",
            "Auto-brightness", "Do not disturb", "Battery saver", "Hotspot", "Auto-update",
            "Sync", "Night light", "Screen lock")
SHOPS = ("Maple & Co", "The Corner Store", "Blue Door Goods", "Kettle & Crumb", "Nordic Home",
         "Paper Lantern", "Market Hall")
PRODUCTS = (("blue mug", "blue mugs", "#2563eb"), ("linen towel", "linen towels", "#a16207"),
            ("green teapot", "green teapots", "#15803d"), ("red notebook", "red notebooks",
                                                            "#dc2626"),
            ("scented candle", "scented candles", "#d946ef"), ("wool scarf", "wool scarves",
                                                               "#7c3aed"),
            ("oak spoon", "oak spoons", "#92400e"), ("glass jar", "glass jars", "#0891b2"),
            ("cotton tote", "cotton totes", "#65a30d"), ("desk lamp", "desk lamps", "#ea580c"),
            ("photo frame", "photo frames", "#475569"), ("yoga mat", "yoga mats", "#db2777"),
            ("coffee grinder", "coffee grinders", "#1e293b"), ("plant pot", "plant pots",
                                                              "#b45309"))
ORGS = ("Acme support", "Globex help desk", "Initech service", "Hooli care", "Vandelay sales",
        "Soylent support")
COMPANIES = ("Acme", "Globex", "Initech", "Hooli", "Vandelay", "Soylent")
TOPICS = ("Billing", "Delivery", "Returns", "Technical", "Other")
REPLIES = ("Email", "Phone", "Post")
MESSAGES = ("My parcel has not arrived yet", "Please send a copy of my last invoice",
            "The lid of my kettle is cracked", "Could I change my delivery address",
            "I was charged twice for one order", "My password reset link has expired")
NOTE_COLOURS = {"yellow": "#facc15", "green": "#22c55e", "blue": "#3b82f6", "pink": "#ec4899",
                "orange": "#f97316", "purple": "#a855f7"}
NOTE_TITLES = ("Trip to Lyon", "Birthday ideas", "Book list", "Garden plan", "Meeting notes",
               "Recipe: soup", "Gym routine", "Gift ideas", "Film list", "Packing list",
               "Budget", "Party menu")
NOTE_BODIES = ("book the hotel near the station", "a scarf, a novel or concert tickets",
               "finish the chapter on Rome", "plant tulips along the fence",
               "ask about the new timetable", "leeks, potatoes and a little cream",
               "three sets of squats, then stretch", "bring the charger and the passport",
               "check the prices on Friday", "call Maya about the date")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six")


@dataclass(frozen=True)
class Action:
    """Browser operations followed by one screenshot; `step` says what that frame shows."""

    step: str
    ops: tuple[Op, ...]


@dataclass(frozen=True)
class Script:
    """The app's content, what to do on it, and the texts."""

    config: dict[str, Any]
    actions: tuple[Action, ...]
    description: str
    meta: dict[str, Any] = field(default_factory=dict)


HOME_STEP = "the home screen with the to-do, settings, shop, contact and notes apps"
"""The step text of every episode's first frame."""


def _pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def _sample(rng: np.random.Generator, items: Sequence[Any], count: int) -> list[Any]:
    return [items[int(i)] for i in rng.permutation(len(items))[:count]]


def _base_config(rng: np.random.Generator) -> dict[str, Any]:
    theme = str(_pick(rng, sorted(THEMES)))
    return {"user": str(_pick(rng, USERS)), "accent": THEMES[theme], "theme": theme}


def _open(app: str, step: str) -> Action:
    return Action(step, (("click", f"#open-{app}"),))


def _q(text: str) -> str:
    return f"'{text}'"


def _then(clauses: Sequence[str]) -> str:
    """Clauses in order: ``"a, then b, then c"``."""
    return ", then ".join(clauses)


def todo(rng: np.random.Generator, count: int) -> Script:
    """Open a to-do list, add items (typing, Enter), then tick some of them off."""
    config = _base_config(rng)
    title = str(_pick(rng, TODO_LISTS))
    pool = _sample(rng, TODO_ITEMS, len(TODO_ITEMS))
    existing = pool[:int(rng.integers(0, 3))]
    ticks_n = (count - 1) // 3
    adds = pool[len(existing):len(existing) + count - 1 - ticks_n]
    ticks = _sample(rng, adds, ticks_n)
    config["todo"] = {"title": title, "items": existing}
    actions = [_open("todo", f"opening the {_q(title)} to-do list")]
    actions += [Action(f"adding {_q(item)} to the list",
                       (("fill", "#new-item", item), ("press", "#new-item", "Enter")))
                for item in adds]
    actions += [Action(f"ticking {_q(item)} as done",
                       (("click", f"#tick-{len(existing) + adds.index(item)}"),))
                for item in ticks]
    if adds:
        description = f"adding {join_words([_q(i) for i in adds])} to the {_q(title)} to-do list"
        if ticks:
            description += f", then ticking {join_words([_q(i) for i in ticks])}"
    else:
        description = f"opening the {_q(title)} to-do list"
    return Script(config, tuple(actions), description,
                  {"list": title, "existing": existing, "added": adds, "ticked": ticks})


def settings(rng: np.random.Generator, count: int) -> Script:
    """Open the settings and flip switches one by one."""
    config = _base_config(rng)
    names = [s for s in SETTINGS if s in set(_sample(rng, SETTINGS, max(10, count - 1)))]
    states = [bool(rng.integers(2)) for _ in names]
    config["settings"] = [{"name": n, "on": on} for n, on in zip(names, states, strict=True)]
    flips = [int(i) for i in rng.permutation(len(names))[:count - 1]]
    actions = [Action("opening the settings", (("click", "#open-settings"),))]
    clauses: list[tuple[str, list[str]]] = []
    for i in flips:
        verb = "turning off" if states[i] else "turning on"
        actions.append(Action(f"{verb} {_q(names[i])}", (("click", f"#switch-{i}"),)))
        if clauses and clauses[-1][0] == verb:
            clauses[-1][1].append(_q(names[i]))
        else:
            clauses.append((verb, [_q(names[i])]))
    if clauses:
        description = _then([f"{verb} {join_words(items)}" for verb, items in clauses]) + \
            " in the settings"
    else:
        description = "opening the settings"
    return Script(config, tuple(actions), description,
                  {"settings": config["settings"], "flipped": [names[i] for i in flips]})


def shop(rng: np.random.Generator, count: int) -> Script:
    """Open a shop, put products into the cart (a quantity each), then open the cart, check
    out, enter a delivery address and place the order, as far as the actions go."""
    config = _base_config(rng)
    name = str(_pick(rng, SHOPS))
    products = _sample(rng, PRODUCTS, 6)
    prices = [int(rng.integers(3, 40)) for _ in products]
    config["shop"] = {"name": name, "currency": "€", "products": [
        {"name": p[0].capitalize(), "colour": p[2], "price": price}
        for p, price in zip(products, prices, strict=True)]}
    rest = count - 1
    tail = min(4, max(0, rest - 1))
    chosen = [int(i) for i in rng.permutation(len(products))[:rest - tail]]
    buyer = f"{_pick(rng, USERS)} {_pick(rng, SURNAMES)}"
    street = f"{int(rng.integers(1, 90))} {_pick(rng, STREETS)}"
    city = str(_pick(rng, CITIES))
    actions = [_open("shop", f"opening the shop {_q(name)}")]
    bought = []
    for i in chosen:
        qty = int(rng.integers(1, 4))
        single = products[i][0]
        what = f"{NUMBERS[qty]} {products[i][1]}" if qty > 1 else \
            f"{'an' if single[0] in 'aeiou' else 'a'} {single}"
        bought.append(what)
        actions.append(Action(f"adding {what} to the cart",
                              (("fill", f"#qty-{i}", str(qty)), ("click", f"#add-{i}"))))
    steps = [
        (Action("opening the cart", (("click", "#cart-link"),)), "opening the cart"),
        (Action("proceeding to checkout", (("click", "#checkout"),)), "checking out"),
        (Action(f"entering the delivery address: {buyer}, {street}, {city}",
                (("fill", "#name", buyer), ("fill", "#street", street), ("fill", "#city", city))),
         f"entering a delivery address in {city} for {buyer}"),
        (Action("placing the order", (("click", "#place-order"),)), "placing the order"),
    ][:tail]
    actions += [a for a, _ in steps]
    if bought:
        description = f"putting {join_words(bought)} into the cart at {_q(name)}"
        if steps:
            description += ", then " + join_words([c for _, c in steps])
    else:
        description = f"opening the shop {_q(name)}"
    return Script(config, tuple(actions), description,
                  {"shop": name, "bought": bought, "address": [buyer, street, city]
                   if tail >= 3 else None})


_CONTACT_FIELDS = ("name", "email", "phone", "company", "order", "newsletter", "topic",
                   "reply", "message")
"""The contact form's fields in page order."""


def contact(rng: np.random.Generator, count: int) -> Script:
    """Open the contact form, fill in some of its fields (in page order), then send it."""
    config = _base_config(rng)
    org = str(_pick(rng, ORGS))
    config["contact"] = {"org": org, "topics": list(TOPICS), "replies": list(REPLIES)}
    rest = count - 1
    send = rest >= 2
    n_fields = rest - 1 if send else rest
    if n_fields > len(_CONTACT_FIELDS):
        raise ValueError(f"the contact form has {len(_CONTACT_FIELDS)} fields; "
                         f"{count} actions were asked")
    wanted = set(_sample(rng, _CONTACT_FIELDS[1:], max(0, n_fields - 1)))
    fields = [f for f in _CONTACT_FIELDS if f == "name" or f in wanted][:n_fields]
    first, last = str(_pick(rng, USERS)), str(_pick(rng, SURNAMES))
    values = {"name": f"{first} {last}",
              "email": f"{first.lower()}.{last.lower()}@{_pick(rng, ('mail.com', 'post.org'))}",
              "phone": "+" + "".join(str(int(d)) for d in rng.integers(0, 10, 10)),
              "company": str(_pick(rng, COMPANIES)),
              "order": f"A-{int(rng.integers(10000, 99999))}"}
    topic, reply = int(rng.integers(len(TOPICS))), int(rng.integers(len(REPLIES)))
    message = str(_pick(rng, MESSAGES))
    actions = [_open("contact", f"opening the contact form of {_q(org)}")]
    phrases = []
    for f in fields:
        if f in values:
            label = "order number" if f == "order" else f
            actions.append(Action(f"typing {_q(values[f])} into the {label} field",
                                  (("fill", f"#c-{f}", values[f]),)))
            phrases.append(f"{label} {_q(values[f])}")
        elif f == "newsletter":
            actions.append(Action("ticking 'Send me the newsletter'",
                                  (("click", "#newsletter"),)))
            phrases.append("a newsletter sign-up")
        elif f == "topic":
            actions.append(Action(f"choosing the topic {_q(TOPICS[topic])}",
                                  (("click", f"#topic-{topic}"),)))
            phrases.append(f"topic {_q(TOPICS[topic])}")
        elif f == "reply":
            actions.append(Action(f"asking for a reply by {REPLIES[reply].lower()}",
                                  (("click", f"#reply-{reply}"),)))
            phrases.append(f"a reply by {REPLIES[reply].lower()}")
        else:
            actions.append(Action(f"writing the message {_q(message)}",
                                  (("fill", "#c-message", message),)))
            phrases.append(f"the message {_q(message)}")
    if send:
        actions.append(Action("sending the form", (("click", "#send"),)))
    description = (f"filling in the contact form of {_q(org)} with {join_words(phrases)}"
                   if phrases else f"opening the contact form of {_q(org)}")
    if send:
        description += ", then sending it"
    return Script(config, tuple(actions), description,
                  {"org": org, "fields": fields, "sent": send})


def notes(rng: np.random.Generator, count: int) -> Script:
    """Open the notes, then create notes: new, title, text, colour, as far as the actions go."""
    config = _base_config(rng)
    titles = _sample(rng, NOTE_TITLES, len(NOTE_TITLES))
    bodies = _sample(rng, NOTE_BODIES, len(NOTE_BODIES))
    colours = sorted(NOTE_COLOURS)
    config["noteColours"] = NOTE_COLOURS
    config["notes"] = [{"title": titles.pop(), "body": bodies.pop(), "colour": _pick(rng, colours)}
                       for _ in range(2)]
    actions = [Action("opening the notes", (("click", "#open-notes"),))]
    made: list[str] = []
    left = count - 1
    while left > 0:
        title, body, colour = titles.pop(), bodies.pop(), str(_pick(rng, colours))
        plan = [Action("creating a new note", (("click", "#new-note"),)),
                Action(f"titling it {_q(title)}", (("fill", "#note-title", title),)),
                Action(f"writing {_q(body)}", (("fill", "#note-body", body),)),
                Action(f"colouring it {colour}", (("click", f"#colour-{colour}"),))][:left]
        actions += plan
        left -= len(plan)
        phrase = "creating a note" + (f" titled {_q(title)}" if len(plan) > 1 else "")
        if len(plan) > 2:
            phrase += f" that reads {_q(body)}"
        if len(plan) > 3:
            phrase += f" and colouring it {colour}"
        made.append(phrase)
    description = _then(made) if made else "opening the notes"
    return Script(config, tuple(actions), description, {"notes": made})


PLANNERS: dict[str, Callable[[np.random.Generator, int], Script]] = {
    "todo": todo, "settings": settings, "shop": shop, "contact": contact, "notes": notes,
}
"""Task name -> planner(rng, actions): the actions include opening the app."""

MAX_ACTIONS = 11
"""Every planner can script this many actions (the contact form has nine fields)."""
