"""GUI episodes: an app window where a form is filled in and submitted, a
to-do list grows, or settings switches are turned on."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from tpru.sources.synthetic.draw import (
    COLOURS,
    INK,
    WHITE,
    Plan,
    between,
    default_font,
    gradient,
    mix,
    pick,
    sample,
    to_image,
)
from tpru.sources.text import join_words, with_article

EPISODE_TASKS = ("form", "todo", "settings")
"""The kinds of episode drawn here, in turn (an episode's ``meta.task``); not the
sample tasks of `tpru.schema.TASKS`."""

THEMES = ("blue", "green", "purple")
"""A small pool of accent colours shared by all gui episodes, so other episodes' screens are
plausible candidates by look and only the app's content tells them apart."""
_FIRST = ("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas",
          "Kira", "Leo", "Maya", "Noah", "Olga", "Pablo")
_LAST = ("Berg", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
         "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Patel", "Rossi")
_CITIES = ("Oslo", "Lyon", "Porto", "Kyoto", "Austin", "Cairo", "Lima", "Perth", "Turin", "Seoul")
_FORMS = ("New contact", "Sign up", "Job application", "Guest list", "Member profile")
_TODOS = ("buy milk", "call the dentist", "water the plants", "pay the rent",
          "book train tickets", "return library books", "fix the bike", "send the invoice",
          "clean the kitchen", "walk the dog", "renew the passport", "bake bread", "email Sam",
          "plan the trip", "buy a gift", "recycle bottles", "back up photos", "cancel the gym")
_LISTS = ("Today", "Weekend", "Errands", "This week", "Home", "Before the trip")
_SETTINGS = ("Wi-Fi", "Bluetooth", "Dark mode", "Airplane mode", "Location", "Notifications",
             "Auto-brightness", "Do not disturb", "Battery saver", "Hotspot", "Auto-update",
             "Sync", "Night light", "Screen lock")


def _form_values(rng: np.random.Generator) -> dict[str, str]:
    first, last = pick(rng, _FIRST), pick(rng, _LAST)
    domain = pick(rng, ["mail.com", "post.org", "inbox.net"])
    return {
        "Name": f"{first} {last}",
        "Email": f"{first.lower()}.{last.lower()}@{domain}",
        "Phone": "+" + "".join(str(between(rng, 0, 9)) for _ in range(10)),
        "City": pick(rng, _CITIES),
        "Company": pick(rng, ["Acme", "Globex", "Initech", "Hooli", "Vandelay", "Soylent"]),
        "Job title": pick(rng, ["Engineer", "Designer", "Teacher", "Nurse", "Chef", "Pilot"]),
        "Birthday": (f"{between(rng, 1, 28):02d}/{between(rng, 1, 12):02d}/"
                     f"{between(rng, 1950, 2005)}"),
        "Username": f"{first.lower()}{between(rng, 10, 99)}",
        "Website": f"{last.lower()}.example.org",
        "Country": pick(rng, ["Norway", "France", "Japan", "Peru", "Kenya", "Canada"]),
    }


def plan(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> Plan:
    """An app window; each frame fills a field, adds list items or turns switches on."""
    w, h = size
    accent_name = pick(rng, THEMES)
    accent = COLOURS[accent_name]
    pale, m = mix(accent, WHITE, 0.7), 10
    y0, y1 = m + 22 + 8, h - m - 8                  # the window's content area
    steps: list[str]
    total = max(n - 1, 4)                           # list items or switches, over n - 1 steps

    def count_at(i: int) -> int:
        return (i * total) // (n - 1)

    def added(i: int) -> list[int]:
        return list(range(count_at(i - 1), count_at(i)))
    if task == "form":
        title = pick(rng, _FORMS)
        values = _form_values(rng)
        labels = ["Name", *sorted(sample(rng, list(values)[1:], n - 3), key=list(values).index)]
        shown = [f"{label} '{values[label]}'" for label in labels]
        description = (f"filling in the '{title}' form of {with_article(accent_name)} app: "
                       f"{join_words(shown)}, then pressing Submit")
        steps = ([f"The '{title}' form is empty."]
                 + [f"{labels[i]} filled in: '{values[labels[i]]}' ({i + 1} of {len(labels)} "
                    "fields)." for i in range(len(labels))]
                 + ["Submit pressed: the form shows 'Saved'."])
        rows = len(labels) + 1
    elif task == "todo":
        title = pick(rng, _LISTS)
        labels = sample(rng, _TODOS, total)
        description = (f"adding {total} tasks to the '{title}' list of "
                       f"{with_article(accent_name)} to-do app, in order: "
                       f"{join_words([repr(t) for t in labels])}")
        steps = [f"The '{title}' list is empty."] + [
            f"Task{'s' if len(new) > 1 else ''} {join_words([str(j + 1) for j in new])} added: "
            f"{join_words([repr(labels[j]) for j in new])}." for new in map(added, range(1, n))]
        rows = total + 1
    else:
        title = "Settings"
        labels = sample(rng, _SETTINGS, min(len(_SETTINGS), total + between(rng, 0, 2)))
        order = [int(j) for j in rng.permutation(len(labels))[:total]]
        description = (f"turning on {total} of the {len(labels)} switches in "
                       f"{with_article(accent_name)} Settings window, in this order: "
                       f"{join_words([labels[j] for j in order])}")
        steps = [f"All {len(labels)} switches are off."] + [
            f"{join_words([repr(labels[order[j]]) for j in new])} switched on "
            f"({new[-1] + 1} of {total})." for new in map(added, range(1, n))]
        rows = len(labels)
    row_h = min(28.0, (y1 - y0) / rows)
    font = default_font(max(9, min(13, int(row_h * 0.55))))
    desktop = gradient(size, mix(accent, (20, 20, 30), 0.6), mix(accent, WHITE, 0.3))
    background = to_image(desktop)
    d = ImageDraw.Draw(background)
    d.rectangle((m, m, w - m, h - m), fill=(248, 248, 246), outline=INK)
    d.rectangle((m, m, w - m, m + 22), fill=accent)
    d.text((m + 8, m + 5), title if task != "todo" else f"To-do: {title}", fill=WHITE,
           font=default_font(12))
    for j, colour in enumerate(((240, 90, 80), (240, 190, 60), (90, 190, 90))):
        d.ellipse((w - m - 18 - 14 * j, m + 6, w - m - 8 - 14 * j, m + 16), fill=colour)

    def row_box(j: int) -> tuple[float, float, float, float]:
        top = y0 + j * row_h
        return m + 8, top + 2, w - m - 8, top + row_h - 2

    def render(i: int) -> Image.Image:
        img = background.copy()
        d = ImageDraw.Draw(img)
        if task == "form":
            filled = min(i, len(labels))
            for j, label in enumerate(labels):
                x1, t1, x2, t2 = row_box(j)
                d.text((x1, t1 + 2), label, fill=INK, font=font)
                box = (x1 + 80, t1, x2, t2)
                if j < filled:
                    d.rectangle(box, fill=accent if j == filled - 1 else pale, outline=INK)
                    d.text((box[0] + 4, t1 + 2), values[label], font=font,
                           fill=WHITE if j == filled - 1 else INK)
                else:
                    d.rectangle(box, fill=WHITE, outline=(150, 150, 150))
            x1, t1, x2, t2 = row_box(len(labels))
            if i == n - 1:
                d.rectangle((x1, t1 - 2, x2, t2 + 2), fill=(40, 150, 70))
                d.text((x1 + 8, t1 + 2), f"Saved: {values['Name']}", fill=WHITE, font=font)
            else:
                d.rectangle((x2 - 80, t1, x2, t2), fill=accent, outline=INK)
                d.text((x2 - 70, t1 + 2), "Submit", fill=WHITE, font=font)
        elif task == "todo":
            if i == 0:
                d.text((m + 16, y0 + 8), "No tasks yet", fill=(140, 140, 140), font=font)
            for j in range(count_at(i)):
                x1, t1, x2, t2 = row_box(j)
                newest = i > 0 and j in added(i)
                d.rectangle((x1, t1, x2, t2), fill=accent if newest else pale)
                d.rectangle((x1 + 4, t1 + 3, x1 + 4 + (t2 - t1 - 6), t2 - 3), outline=INK,
                            fill=WHITE)
                d.text((x1 + t2 - t1 + 8, t1 + 2), labels[j], font=font,
                       fill=WHITE if newest else INK)
        else:
            on = order[:count_at(i)]
            fresh = [order[j] for j in added(i)] if i > 0 else []
            for j, label in enumerate(labels):
                x1, t1, x2, t2 = row_box(j)
                if j in on:
                    d.rectangle((x1, t1, x2, t2), fill=accent if j in fresh else pale)
                d.text((x1 + 6, t1 + 2), label, fill=INK, font=font)
                pill = (x2 - 44, t1 + 2, x2 - 6, t2 - 2)
                knob = t2 - t1 - 6
                d.rounded_rectangle(pill, radius=knob / 2 + 1, outline=INK,
                                    fill=(60, 170, 90) if j in on else (190, 190, 190))
                kx = pill[2] - knob - 2 if j in on else pill[0] + 2
                d.ellipse((kx, t1 + 4, kx + knob, t2 - 4), fill=WHITE, outline=INK)
        return img

    return Plan(task, description, tuple(steps), render, accent_name)

