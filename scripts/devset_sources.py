"""Where the dev set's pictures come from, and which category each one shows (hand-checked tables).

Two Debian packages supply the pictures; nothing is drawn for this set:
- gcompris-qt-data: photographs (public domain / CC0 / CC-BY-SA, each listed in a README next to it inside
  the .rcc) used by GCompris' activities. The table below names each file and what it shows.
- fonts-noto-color-emoji + unicode-data: Noto Color Emoji glyphs, mapped to a category by their Unicode
  emoji subgroup (emoji-test.txt), minus the names listed in EMOJI_DROP as ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CATEGORIES = (
    "animals", "food", "plants", "vehicles", "clothes",
    "tools", "buildings", "sports", "music", "household objects",
)  # fmt: skip


@dataclass(frozen=True)
class SourcePaths:
    """Files the registry packages put on disk (Debian paths by default)."""

    gcompris_rcc: Path = Path("/usr/share/gcompris-qt/rcc")  # gcompris-qt-data
    emoji_font: Path = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # fonts-noto-color-emoji
    emoji_test: Path = Path("/usr/share/unicode/emoji/emoji-test.txt")  # unicode-data


@dataclass(frozen=True)
class PictureItem:
    """One picture of one thing: the unit the split is decided on (all its clips share its half)."""

    item_id: str  # 'gcompris:lang:dog', 'emoji:bicycle'
    category: str
    description: str  # the English words spoken about it: 'A dog.'
    origin: str  # 'gcompris' or 'emoji'
    ref: str  # gcompris: '<rcc stem>|<entry path>'; emoji: the emoji's characters
    source: str  # package and file, for the manifest


# (rcc file stem, entry path under /gcompris/src/activities/<stem>/, category, description).
_A, _F, _T, _B, _S, _M, _H = "animals", "food", "tools", "buildings", "sports", "music", "household objects"
_LANG_ANIMALS = (
    "bear", "bee", "beetle", "bird", "bull", "butterfly", "camel", "cat", "chicken", "cow", "dog", "dolphin",
    "duck", "fox", "frog", "giraffe", "gorilla", "hedgehog", "hippopotamus", "horse", "kangaroo", "lizard",
    "mosquito", "mouse", "owl", "panda", "pig", "rabbit", "rhinoceros", "shark", "sheep", "snail", "snake",
    "spider", "turkey", "turtle", "whale", "wolf",
)  # fmt: skip
_LANG_FOOD = (
    "apple", "apricot", "coconut", "kiwi", "lemon", "melon", "orange", "peach", "pear", "plum", "raspberry",
    "strawberry",
)  # fmt: skip
_ERASE_ANIMALS = {
    "alpaca": "An alpaca.", "cheetah": "A cheetah.", "crab": "A crab.", "flying_fox": "A flying fox.",
    "gibbon": "A gibbon.", "goat": "A goat.", "heron": "A heron.", "kingfisher": "A kingfisher.",
    "meerkats": "Meerkats.", "penguin": "A penguin.", "red_panda": "A red panda.", "squirrel": "A squirrel.",
    "swans": "Swans.", "toucan": "A toucan.", "caterpillar": "A caterpillar.", "kitten": "A kitten.",
}  # fmt: skip
_WORLD_ANIMALS = {
    "bison": "A bison.", "chameleon": "A chameleon.", "crocodile": "A crocodile.", "jaguar": "A jaguar.",
    "koala": "A koala.", "lemur": "A lemur.", "moose": "A moose.", "narwhal": "A narwhal.",
    "polar_bear": "A polar bear.", "scarlet_macaw": "A scarlet macaw.",
}  # fmt: skip
_TOOLS = {
    "hammer": "A hammer.", "measuringTape": "Measuring tape.", "multimeter": "A multimeter.",
    "plier": "Pliers.", "scissors": "Scissors.", "screwDriver": "A screwdriver.", "sickle": "A sickle.",
    "sideCutter": "Side cutters.", "tweezer": "Tweezers.", "wrench": "A wrench.",
}  # fmt: skip
_TOOL_FILES = (
    "hammer1", "hammer2", "hammer3", "hammer4", "hammer5", "hammer6", "hammer7", "hammer8", "hammer9",
    "measuringTape1", "measuringTape2", "measuringTape3", "measuringTape4", "measuringTape5",
    "measuringTape6",
    "multimeter1", "multimeter2", "multimeter3", "plier1", "plier2", "plier3", "plier4", "scissors1",
    "scissors2", "scissors3", "scissors4", "screwDriver", "screwDriver1", "screwDriver2", "screwDriver3",
    "sickle", "sideCutter1", "tweezer", "tweezer1", "wrench", "wrench1",
)  # fmt: skip
_MONUMENTS = {
    "IndiaGate": "India Gate.", "arcDeTriomphe": "The Arc de Triomphe.",
    "brandenburgGate": "The Brandenburg Gate.",
    "burj": "The Burj Khalifa.", "christTheRedeemer": "Christ the Redeemer.", "colosseum": "The Colosseum.",
    "eiffelTower": "The Eiffel Tower.", "empireState": "The Empire State Building.",
    "greatPyramid": "The Great Pyramid.", "greatWall": "The Great Wall of China.",
    "leaningTowerOfPisa": "The Leaning Tower of Pisa.", "operaHouse": "The Sydney Opera House.",
    "parthenon": "The Parthenon.", "statueOfLiberty": "The Statue of Liberty.", "tajMahal": "The Taj Mahal.",
    "usCapitol": "The United States Capitol.", "victoriaMemorial": "The Victoria Memorial.",
    "kutubMinar": "The Qutub Minar.", "cathedral": "A cathedral.",
}  # fmt: skip
_MORE_MONUMENTS = {
    "france/chateaudeChambord": "The castle of Chambord.", "france/montStMichel": "Mont Saint Michel.",
    "germany/neuschwansteinCastle": "Neuschwanstein Castle.", "germany/berlinCathedral": "Berlin Cathedral.",
    "india/hawaMahal": "The Hawa Mahal.", "india/mysorePalace": "Mysore Palace.",
    "usa/lincolnMemorial": "The Lincoln Memorial.", "wonders/machuPicchu": "Machu Picchu.",
    "wonders/petra": "Petra.", "wonders/chichenItza": "Chichen Itza.",
}  # fmt: skip
_OTHERS = {
    "baseball": (_S, "A baseball."), "volleyball": (_S, "A volleyball."), "bucket": (_H, "A bucket."),
    "bulb": (_H, "A light bulb."), "chair": (_H, "A chair."), "cup": (_H, "A cup."),
    "knife": (_H, "A kitchen knife."), "pan": (_H, "A frying pan."), "pillow": (_H, "A pillow."),
    "plate": (_H, "A plate."), "spoons": (_H, "Spoons."),
}  # fmt: skip

_MUSIC = {  # explore_world_music's photos; 'italy' (singers on a stage) is left out as unclear
    "orchestra": "An orchestra.", "america": "A drum kit and a guitar.", "australia": "A didgeridoo.",
    "japan": "Taiko drums.", "africa": "African drums.", "ireland": "Folk musicians playing.",
    "mexico": "A mariachi band.", "middleeast": "A long-necked lute.",
}  # fmt: skip


def _gcompris_table() -> list[tuple[str, str, str, str]]:
    """The hand-checked GCompris photo table: (rcc stem, entry under the activity, category, description)."""
    rows = [("lang", f"resource/words_sample/{n}.webp", _A, _article(n)) for n in _LANG_ANIMALS]
    rows += [("lang", f"resource/words_sample/{n}.webp", _F, _article(n)) for n in _LANG_FOOD]
    rows += [("erase", f"resource/{n}.webp", _A, d) for n, d in _ERASE_ANIMALS.items()]
    rows += [
        ("explore_world_animals", f"resource/animals/{n}.webp", _A, d) for n, d in _WORLD_ANIMALS.items()
    ]
    for name in _TOOL_FILES:
        rows.append(
            ("categorization", f"resource/images/tools/{name}.webp", _T, _TOOLS[name.rstrip("0123456789")])
        )
    rows += [("categorization", f"resource/images/monuments/{n}.webp", _B, d) for n, d in _MONUMENTS.items()]
    rows += [("explore_monuments", f"resource/{n}.webp", _B, d) for n, d in _MORE_MONUMENTS.items()]
    rows += [("categorization", f"resource/images/others/{n}.webp", c, d) for n, (c, d) in _OTHERS.items()]
    rows += [("explore_world_music", f"resource/music/{n}.webp", _M, d) for n, d in _MUSIC.items()]
    return rows


def _names(text: str) -> frozenset[str]:
    """'a;b;\n c' -> {'a', 'b', 'c'}: long name lists written as text."""
    return frozenset(name.strip() for name in text.split(";"))


# Unicode emoji subgroup -> category. Subgroups not listed (people, flags, symbols...) are not used.
EMOJI_SUBGROUPS = {
    "animal-mammal": _A, "animal-bird": _A, "animal-amphibian": _A, "animal-reptile": _A,
    "animal-marine": _A, "animal-bug": _A, "plant-flower": "plants", "plant-other": "plants",
    "food-fruit": _F, "food-vegetable": _F, "food-prepared": _F, "food-asian": _F, "food-sweet": _F,
    "transport-ground": "vehicles", "transport-water": "vehicles", "transport-air": "vehicles",
    "clothing": "clothes", "tool": _T, "place-building": _B, "place-religious": _B, "sport": _S,
    "musical-instrument": _M, "music": _M, "household": _H, "dishware": _H,
}  # fmt: skip
# Names dropped as ambiguous: faces/parts, not the thing, signs and places that are no vehicle, objects
# that belong to two categories or to none, weapons in 'tool', fantasy creatures.
EMOJI_DROP = _names(
    """monkey face;dog face;cat face;tiger face;horse face;cow face;pig face;pig nose;mouse face;rabbit face;
    paw prints;unicorn;mammoth;dodo;feather;wing;dragon face;dragon;sauropod;T-Rex;spiral shell;coral;microbe;
    spider web;guide dog;service dog;black cat;black bird;hatching chick;front-facing baby chick;bouquet;
    rosette;wilted flower;sheaf of rice;empty nest;nest with eggs;mushroom;leaf fluttering in wind;
    cooking;salt;canned food;bento box;takeout box;fortune cookie;oden;fish cake with swirl;dango;
    station;bus stop;motorway;railway track;oil drum;fuel pump;wheel;police car light;
    horizontal traffic light;vertical traffic light;stop sign;construction;anchor;ring buoy;
    airplane departure;airplane arrival;seat;
    parachute;satellite;flying saucer;oncoming bus;oncoming police car;oncoming taxi;oncoming automobile;
    manual wheelchair;motorized wheelchair;roller skate;skateboard;kick scooter;mountain railway;
    suspension railway;glasses;sunglasses;goggles;folding hand fan;purse;handbag;clutch bag;shopping bags;
    backpack;hair pick;crown;prayer beads;lipstick;ring;gem stone;woman’s clothes;military helmet;
    rescue worker’s helmet;graduation cap;lab coat;safety vest;dagger;crossed swords;bomb;boomerang;
    bow and arrow;shield;gear;balance scale;white cane;link;chains;hook;hammer and pick;hammer and wrench;
    brick;rock;wood;building construction;wedding;love hotel;Japanese post office;Tokyo tower;
    Statue of Liberty;kaaba;shinto shrine;stadium;classical building;flag in hole;goal net;running shirt;
    martial arts uniform;diving mask;fishing pole;level slider;control knobs;radio;musical note;
    headphone;microphone;elevator;door;window;mirror;
    mouse trap;plunger;lotion bottle;safety pin;bubbles;fire extinguisher;shopping cart;amphora;jar;
    fork and knife with plate;roll of paper"""
)
# Spoken words for emoji whose Unicode name is not what a person would say.
EMOJI_SAYS = {
    "tennis": "A tennis ball.", "cricket game": "A cricket bat and ball.", "ping pong": "A ping pong paddle.",
    "bowling": "Bowling.", "ice hockey": "An ice hockey stick.", "field hockey": "A field hockey stick.",
    "lacrosse": "A lacrosse stick.", "badminton": "A badminton racket.", "curling stone": "A curling stone.",
    "ear of corn": "An ear of corn.", "couch and lamp": "A couch and a lamp.", "skis": "Skis.",
    "drum": "A drum.", "long drum": "A long drum.", "musical keyboard": "A keyboard.",
    "kiwi fruit": "A kiwi.", "pot of food": "A pot of food.", "shallow pan of food": "A pan of food.",
    "fork and knife": "A fork and knife.", "spouting whale": "A whale.", "cherries": "Cherries.",
    "grapes": "Grapes.", "blueberries": "Blueberries.", "peanuts": "Peanuts.", "beans": "Beans.",
    "pancakes": "Pancakes.", "french fries": "French fries.", "houses": "Houses.",
    "chopsticks": "Chopsticks.", "man’s shoe": "A shoe.", "woman’s sandal": "A sandal.",
    "woman’s boot": "A boot.", "woman’s hat": "A hat.",
    "thong sandal": "A flip-flop.", "briefs": "Underpants.", "sari": "A sari.", "hindu temple": "A temple.",
    "Japanese castle": "A Japanese castle.", "ballet shoes": "Ballet shoes.", "socks": "Socks.",
    "gloves": "Gloves.", "jeans": "Jeans.", "shorts": "Shorts.", "toolbox": "A toolbox.",
    "pick": "A pickaxe.", "herb": "Herbs.", "automobile": "A car.", "light rail": "A light rail train.",
    "metro": "A metro train.", "railway car": "A railway carriage.", "articulated lorry": "A lorry.",
    "mountain cableway": "A cable car.", "ewe": "A sheep.", "one-piece swimsuit": "A swimsuit.",
    "house with garden": "A house with a garden.", "tram car": "A tram.", "meat on bone": "Meat on the bone.",
    "cut of meat": "A piece of meat.", "leafy green": "Leafy greens.", "cheese wedge": "A piece of cheese.",
    "poultry leg": "A chicken leg.", "stuffed flatbread": "A stuffed flatbread.", "rice ball": "A rice ball.",
    "musical score": "Sheet music.", "musical notes": "Musical notes.", "maracas": "Maracas.",
    "american football": "An American football.", "steaming bowl": "A bowl of noodles.",
    "bowl with spoon": "A bowl with a spoon.", "soap": "Soap.", "soft ice cream": "Soft serve ice cream.",
    "baguette bread": "A baguette.", "pea pod": "A pea pod.",
}  # fmt: skip
# Foods said without an article ('Popcorn.', not 'A popcorn.').
_MASS_NOUNS = _names(
    """bread;popcorn;butter;spaghetti;cooked rice;sushi;bacon;green salad;curry rice;candy;broccoli;garlic;
    ginger root;custard;shaved ice;ice cream;falafel;flatbread;fried shrimp;roasted sweet potato"""
)


def _article(name: str) -> str:
    """'hammer' -> 'A hammer.', 'owl' -> 'An owl.' (names here are singular nouns)."""
    words = name.replace("_", " ")
    article = "An" if words[0].lower() in "aeiou" else "A"
    return f"{article} {words}."


def parse_emoji_test(text: str) -> list[tuple[str, str, str]]:
    """Fully-qualified emoji from Unicode's emoji-test.txt as (characters, subgroup, name), in file order."""
    rows: list[tuple[str, str, str]] = []
    subgroup = ""
    line_re = re.compile(r"^([0-9A-F ]+?)\s*;\s*fully-qualified\s*#\s*\S+\s+E[\d.]+\s+(.+)$")
    for line in text.splitlines():
        if line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
            continue
        match = line_re.match(line)
        if match:
            chars = "".join(chr(int(cp, 16)) for cp in match.group(1).split())
            rows.append((chars, subgroup, match.group(2).strip()))
    return rows


def emoji_items(rows: Iterable[tuple[str, str, str]], source: str) -> list[PictureItem]:
    """Picture items for the emoji whose subgroup maps to a category and whose name is not dropped."""
    items = []
    for chars, subgroup, name in rows:
        category = EMOJI_SUBGROUPS.get(subgroup)
        if category is None or name in EMOJI_DROP:
            continue
        description = EMOJI_SAYS.get(name) or (
            f"{name.capitalize()}." if name in _MASS_NOUNS else _article(name)
        )
        codepoints = " ".join(f"U+{ord(c):04X}" for c in chars)
        items.append(
            PictureItem(f"emoji:{name}", category, description, "emoji", chars,
                        f"fonts-noto-color-emoji:NotoColorEmoji.ttf {codepoints} ({subgroup})")
        )  # fmt: skip
    return items


def gcompris_items(available: set[tuple[str, str]] | None = None) -> list[PictureItem]:
    """Picture items of the GCompris table; `available` ((stem, entry path)) keeps only files that exist."""
    items = []
    for stem, entry, category, description in _gcompris_table():
        path = f"/gcompris/src/activities/{stem}/{entry}"
        if available is not None and (stem, path) not in available:
            continue
        name = entry.rsplit("/", 1)[1].rsplit(".", 1)[0]
        items.append(
            PictureItem(f"gcompris:{stem}:{name}", category, description, "gcompris", f"{stem}|{path}",
                        f"gcompris-qt-data:{stem}.rcc{path}")
        )  # fmt: skip
    return items
