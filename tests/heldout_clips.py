"""Held-out labelled clips: never used to choose any setting (temperatures, floors, templates, bridges).

tests/labelled_clips.py's clips chose settings (models/zero_shot.py and models/predictor.py say which), so
scoring them measures the tuning, not the product. These are scored by tests/test_analyze.py only. Keep
them out of every tuning script: a setting chosen on them makes their accuracy meaningless.

Three kinds, so that each path is seen deciding:
- SPEECH_CLIPS: new sentences about a topic, without the category names, over a synthetic pattern (the
  picture says nothing): the transcript decides the category, the words their sentiment.
- PICTURE_CLIPS: pictures never used for tuning (scikit-image, scikit-learn and matplotlib wheels), no
  audio: vision alone decides.
- OFF_TOPIC_CLIPS: the same kind of pictures with speech that names no topic: vision must still decide
  the category, the speech only the sentiment.
Labels are what a person sees and hears, set before any model was run on the clip.
"""

from __future__ import annotations

from tests.labelled_clips import LabelledClip

SPEECH_CLIPS: tuple[LabelledClip, ...] = (
    LabelledClip("h_kitten", None, "The kitten purrs on the sofa and chases the red ball all afternoon. She is the sweetest little thing.", "animals & pets", "positive"),
    LabelledClip("h_parrot", None, "The parrot screams from dawn until dusk and bit my finger twice today. I regret buying it.", "animals & pets", "negative"),
    LabelledClip("h_dough", None, "Knead the dough for five minutes, let it rise for an hour, then bake it at two hundred degrees.", "food & cooking", "neutral"),
    LabelledClip("h_soup", None, "The soup was salty, the bread was stale and the waiter ignored us. Never again.", "food & cooking", "negative"),
    LabelledClip("h_marathon", None, "She ran the marathon in under three hours and set a personal record. What a fantastic race!", "sports & fitness", "positive"),
    LabelledClip("h_orchestra", None, "The orchestra played the symphony beautifully and the violin solo gave me chills.", "music & dance", "positive"),
    LabelledClip("h_train", None, "The train to the coast was delayed for six hours and our hotel room smelled of smoke. A miserable trip.", "travel & outdoors", "negative"),
    LabelledClip("h_truck", None, "The new electric truck charges quickly, and the brakes feel solid on wet roads. I am impressed.", "vehicles", "positive"),
    LabelledClip("h_laptop", None, "My laptop crashes every time I open the browser, and the software update made it even worse.", "technology", "negative"),
    LabelledClip("h_dragon", None, "In this level you collect the coins, defeat the dragon with your sword and unlock the next world. Great fun.", "gaming", "positive"),
    LabelledClip("h_scarf", None, "This jacket fits perfectly and the silk scarf matches my shoes. I feel elegant.", "beauty & fashion", "positive"),
    LabelledClip("h_banana", None, "He slipped on a banana peel, and the whole audience laughed until they cried. A hilarious show.", "comedy", "positive"),
    LabelledClip("h_fractions", None, "This lesson explains fractions: the top number counts the parts, and the bottom number says how many make a whole.", "education & talks", "neutral"),
    LabelledClip("h_minister", None, "The minister resigned this morning after the report was published, and elections are expected in the spring.", "news", "neutral"),
    LabelledClip("h_twins", None, "Grandma read bedtime stories to the twins, and they fell asleep holding hands.", "family & kids", "positive"),
    LabelledClip("h_sweater", None, "I knitted this sweater from blue wool and carved the buttons out of wood.", "art & crafts", "positive"),
    LabelledClip("h_glacier", None, "The glacier has melted and the mountain lake is drying out. It is heartbreaking to see.", "nature", "negative"),
)  # fmt: skip

PICTURE_CLIPS: tuple[LabelledClip, ...] = (
    LabelledClip("p_flower", "sklearn:flower.jpg", "", "nature", "neutral"),
    LabelledClip("p_moon", "moon", "", "nature", "neutral"),
    LabelledClip("p_hubble", "hubble_deep_field", "", "nature", "neutral"),
    LabelledClip("p_temple", "sklearn:china.jpg", "", "travel & outdoors", "neutral"),
    LabelledClip("p_board", "checkerboard", "", "gaming", "neutral"),
    LabelledClip("p_astronaut", "astronaut", "", "technology", "neutral"),
)  # fmt: skip

OFF_TOPIC_CLIPS: tuple[LabelledClip, ...] = (
    LabelledClip("o_flower", "sklearn:flower.jpg", "Hi everyone, thanks for stopping by. Let me know what you think in the comments.", "nature", "neutral"),
    LabelledClip("o_temple", "sklearn:china.jpg", "I am so happy today. Everything went well and I feel wonderful.", "travel & outdoors", "positive"),
    LabelledClip("o_board", "checkerboard", "Okay, so this one is from last week. I was really tired and annoyed that day.", "gaming", "negative"),
)  # fmt: skip
