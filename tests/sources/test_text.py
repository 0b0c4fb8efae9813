"""Instructions as process phrases, and articles that agree (`tpru.sources.text`).

The instructions are written here in the styles of R2R (several sentences,
telegraphic, some all capitals) and GUI Odyssey (clauses joined with "and
then"); scripts/check_instructions.py runs the same rules over real releases.
"""

from __future__ import annotations

import pytest

from tpru.sources.text import (
    agree_articles,
    gerund,
    indefinite_article,
    process_phrase,
    with_article,
)

R2R_STYLE = [
    ("Walk down the stairs, turn right, and walk into the bedroom. Stop at the bed.",
     "walking down the stairs, turning right, and walking into the bedroom, stopping at the bed"),
    ("Exit the bathroom and turn left. Walk down the hall past the paintings and wait by the "
     "front door.", "exiting the bathroom and turning left"),
    ("Exit the office. Turn right. Follow corridor. Enter the empty room. Stop there.",
     "exiting the office, turning right, following corridor, entering the empty room, "
     "stopping there"),
    ("Go up the stairs and wait at the top.", "going up the stairs and waiting at the top"),
    ("Walk past the sofa and stop.", "walking past the sofa and stopping"),
    ("Walk past the table and chairs and stop at the door.",
     "walking past the table and chairs and stopping at the door"),
    ("Walk between the table and chair. Wait by the window.",
     "walking between the table and chair, waiting by the window"),
    ("Turn around then go straight into the kitchen.",
     "turning around then going straight into the kitchen"),
    ("Leave the room, then take the left door in the next room.",
     "leaving the room, then taking the left door in the next room"),
    ("Once you reach the stairs, turn left. Stop at the sink.",
     "once you reach the stairs, turning left"),
    ("With the bed on your left, exit the room through the door ahead of you, taking a left "
     "and heading towards the short flight of five steps.",
     "with the bed on your left, exiting the room through the door ahead of you"),
    ("Walk forward and take a left at the couch, then continue down the long hallway past "
     "the kitchen and the dining room until you reach the front door. Stop there.",
     "walking forward and taking a left at the couch"),
    ("Look for the moose head above the fireplace and walk to the opening to the right of the "
     "fireplace with a deer head above it.",
     "looking for the moose head above the fireplace"),
    ("TURN LEFT AND WALK THROUGH THE DOOR INTO A ROOM WITH AN OPEN WINDOW. STOP.",
     "turning left and walking through the door into a room with an open window, stopping"),
    ("GO UP THE STAIRS. WAIT.", "going up the stairs, waiting"),
    ("WALK THROUGH THE GARAGE. Walk into the house.",
     "walking through the garage, walking into the house"),
    ("Go straight,pass the shower and stop.", "going straight, passing the shower and stopping"),
    ("walk past staircase, turn left at dining table and stop in front of desk. ",
     "walking past staircase, turning left at dining table and stopping in front of desk"),
    ("You will pass offices on your left. Keep going until the exit sign.",
     "you will pass offices on your left"),
    ("Down the hall, turn right.", "down the hall, turning right"),
    ("Turn right and walk past a orange chair to a umbrella stand.",
     "turning right and walking past an orange chair to an umbrella stand"),
]

GUI_STYLE = [
    ("Enable or disable notifications for any application on your device, and then launch "
     "the Todoist app via the Settings app.",
     "enabling or disabling notifications for any application on your device"),
    ("Utilize DuckDuckGo to find the next concert and then use TickTick to set a reminder.",
     "utilizing DuckDuckGo to find the next concert and then using TickTick to set a reminder"),
    ("Open Chrome, search for a hotel in Paris and share it via Gmail.",
     "opening Chrome, searching for a hotel in Paris and sharing it via Gmail"),
    ("Pick and place the red cube in the bowl.", "picking and placing the red cube in the bowl"),
    ("Check the weather in Tokyo, then add an event to the calendar.",
     "checking the weather in Tokyo, then adding an event to the calendar"),
    ("Book a hotel room on Booking.com and then share the link on Twitter.",
     "booking a hotel room on Booking.com and then sharing the link on Twitter"),
    ("Download a e-book and open it.", "downloading an e-book and opening it"),
    ("Set an alarm for 8 AM, and turn on Do Not Disturb.",
     "setting an alarm for 8 AM, and turning on Do Not Disturb"),
    ("Put the cup on the tray.", "putting the cup on the tray"),
    ("Tap the search bar and type a address.", "tapping the search bar and typing an address"),
]

NOT_INSTRUCTIONS = [
    ("The banana goes into the mug", "the banana goes into the mug"),
    ("LEGO car on the table", "LEGO car on the table"),
    ("stacking the red block on the blue block", "stacking the red block on the blue block"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "phrase"), R2R_STYLE + GUI_STYLE + NOT_INSTRUCTIONS)
def test_instructions_become_short_process_phrases(text: str, phrase: str) -> None:
    assert process_phrase(text) == phrase


def test_a_long_instruction_is_cut_at_a_clause_and_stays_short() -> None:
    text = ("Walk along the glass wall, continue past the lounge chairs and the dining table, "
            "turn right at the end of the corridor, go down the stairs, and wait by the door.")
    phrase = process_phrase(text)
    assert phrase == "walking along the glass wall, continuing past the lounge chairs and the " \
                     "dining table"
    assert len(process_phrase(text, max_words=5).split()) <= 5


def test_gerunds_come_from_the_library() -> None:
    assert [gerund(v) for v in ("stop", "tie", "travel", "veer", "exit", "be", "panic")] == [
        "stopping", "tying", "traveling", "veering", "exiting", "being", "panicking"]


@pytest.mark.parametrize(("word", "article"), [
    ("orange", "an"), ("red", "a"), ("hour", "an"), ("user", "a"), ("one-way", "a"),
    ("8x8", "an"), ("11-stud", "an"), ("1x4", "a"), ("18", "an"), ("2x2", "a"),
    ("umbrella", "an"), ("European", "a"), ("MRI", "an"), ("honest", "an")])
def test_indefinite_articles_follow_the_sound(word: str, article: str) -> None:
    assert indefinite_article(word) == article
    assert with_article(word) == f"{article} {word}"


def test_agree_articles_fixes_swapped_words_and_keeps_the_rest() -> None:
    assert agree_articles("putting a orange marker on an blue tray") == \
        "putting an orange marker on a blue tray"
    assert agree_articles("A apple and An car") == "An apple and A car"
    assert agree_articles("building a 8x8 wall, then a 1x4 brick") == \
        "building an 8x8 wall, then a 1x4 brick"
    assert agree_articles("choose plan a or b") == "choose plan a or b"
    assert agree_articles("no article here") == "no article here"
