#!/usr/bin/env python3
"""gen_data.py - the seeded synthetic data of the built-in home model.

Writes JSON lines, one conversation each:
  {"messages": [...OpenAI chat messages...],
   "kind": "call" | "handoff" | "reply",
   "expected": {"calls": [{"name": N, "arguments": {...}}]}   (kind call)
             | {"handoff": true}                               (kind handoff)
             | {"content": TEXT}                               (kind reply)}
The assistant answer the model learns is derived from "expected" (see
render.py); the messages are what a client sends.

Splits: `train` and `val` come from the same distribution (templates and
vocabulary of the TRAIN pools); `heldout` uses the HELDOUT pools: other
phrasings (templates, prefixes, suffixes, out-of-domain frames and topics)
and other rooms, device names, labels, media, reminder texts and doors.
Numbers and times are drawn from the same ranges in every split (they are
values, not vocabulary). The heldout split is for the final evaluation only.

Also writes models/edgeagent-home.tools.json (--tools-out): the fixed
toolset in the OpenAI `tools` format.

Python 3 standard library only. Every string is ASCII.
"""
import argparse
import json
import random
import sys

# ---------------------------------------------------------------------------
# The toolset (issue 16 section 3)

def _fn(name, desc, props, required):
    return {"type": "function", "function": {
        "name": name, "description": desc,
        "parameters": {"type": "object", "properties": props, "required": required,
                       "additionalProperties": False}}}

DEVICE = {"type": "string", "description": "the device, as the user named it (lower-case)"}
TOOLS = [
    _fn("set_light", "Switch the lights of a room on or off, optionally at a brightness.",
        {"room": {"type": "string", "description": "the room, as the user named it (lower-case)"},
         "on": {"type": "boolean"},
         "brightness": {"type": "integer", "minimum": 0, "maximum": 100}}, ["room", "on"]),
    _fn("set_thermostat", "Set the target temperature of a room in degrees Celsius.",
        {"room": {"type": "string"}, "celsius": {"type": "number"}}, ["room", "celsius"]),
    _fn("start_timer", "Start a countdown timer.",
        {"seconds": {"type": "integer", "minimum": 1}, "label": {"type": "string"}}, ["seconds"]),
    _fn("set_alarm", "Set an alarm at a time of day.",
        {"time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
                  "description": "HH:MM, 24-hour"},
         "label": {"type": "string"}}, ["time"]),
    _fn("play_media", "Play music, a radio station, a podcast or a show.",
        {"query": {"type": "string"}, "device": DEVICE}, ["query"]),
    _fn("media_control", "Control what is playing.",
        {"action": {"type": "string", "enum": ["pause", "resume", "next", "previous", "stop"]},
         "device": DEVICE}, ["action"]),
    _fn("set_volume", "Set the volume of a device.",
        {"level": {"type": "integer", "minimum": 0, "maximum": 100}, "device": DEVICE}, ["level"]),
    _fn("add_reminder", "Add a reminder, optionally at a time of day.",
        {"text": {"type": "string"},
         "time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
                  "description": "HH:MM, 24-hour"}}, ["text"]),
    _fn("read_sensor", "Read a sensor, optionally in a room.",
        {"sensor": {"type": "string", "enum": ["temperature", "humidity", "motion", "co2", "door"]},
         "room": {"type": "string"}}, ["sensor"]),
    _fn("lock_door", "Lock or unlock a door.",
        {"door": {"type": "string"}, "locked": {"type": "boolean"}}, ["door", "locked"]),
]

# ---------------------------------------------------------------------------
# Vocabulary pools: TRAIN and HELDOUT are disjoint.

ROOMS = {
    "train": ["kitchen", "living room", "bedroom", "bathroom", "office", "hallway", "garage",
              "dining room", "basement", "attic", "nursery", "den", "study", "porch",
              "laundry room", "guest room", "kids room", "master bedroom", "patio", "hall",
              "upstairs", "downstairs", "back yard", "front room", "toilet", "closet",
              "utility room", "home office", "family room", "second bedroom", "main bathroom",
              "lounge", "garden", "spare room", "entrance", "stairs", "landing", "kitchen island",
              "tv room", "reading nook", "emmas room", "jacks room", "baby room", "sauna"],
    "heldout": ["pantry", "sunroom", "cellar", "library", "loft", "playroom", "workshop", "gym",
                "foyer", "veranda", "mudroom", "conservatory", "studio", "balcony", "shed",
                "boiler room", "wine cellar", "game room", "media room", "corridor", "terrace",
                "guest bathroom", "upstairs hall", "bar", "music room", "craft room",
                "lias room", "toms bedroom", "granny flat", "back porch"],
}
DEVICES = {
    "train": ["speaker", "tv", "soundbar", "kitchen speaker", "bedroom speaker", "echo",
              "living room tv", "sonos", "stereo", "phone", "tablet", "laptop", "bathroom speaker",
              "office speaker", "chromecast", "homepod", "bluetooth speaker", "big speaker",
              "small speaker", "headphones", "car", "garage speaker", "nest", "tv speaker"],
    "heldout": ["radio", "hifi", "boombox", "projector", "jukebox", "record player",
                "patio speaker", "attic speaker", "den tv", "gym speaker", "amp",
                "portable speaker", "main speaker", "apple tv", "roku"],
}
TIMER_LABELS = {
    "train": ["pasta", "eggs", "laundry", "tea", "pizza", "cookies", "rice", "nap", "workout",
              "homework", "bread", "steak", "oven", "chicken", "soup", "meditation", "break",
              "parking", "cake", "potatoes", "coffee", "stretching", "reading", "dishwasher"],
    "heldout": ["noodles", "brownies", "muffins", "plank", "yoga", "lasagna", "roast", "popcorn",
                "study session", "face mask", "cold brew", "tomato sauce", "dough", "run"],
}
ALARM_LABELS = {
    "train": ["work", "gym", "school", "flight", "meeting", "wake up", "medicine", "train",
              "dentist", "pickup", "shift", "run"],
    "heldout": ["yoga", "bus", "exam", "interview", "doctor", "church", "ferry", "market"],
}
MEDIA = {
    "train": ["jazz", "the beatles", "taylor swift", "classical music", "lofi beats", "bbc radio",
              "my workout playlist", "some rock", "queen", "relaxing music", "the news",
              "bohemian rhapsody", "hip hop", "country music", "coldplay", "podcasts",
              "the daily", "rain sounds", "adele", "pink floyd", "christmas songs", "metallica",
              "white noise", "my playlist", "ed sheeran", "blues", "techno", "the weekend mix",
              "beethoven", "drake", "abba", "kids songs", "bob marley", "radio one",
              "chill vibes", "eminem", "the rolling stones", "disco", "piano music"],
    "heldout": ["reggae", "mozart", "nirvana", "billie eilish", "ambient music", "folk songs",
                "the top forty", "my dinner playlist", "beyonce", "radiohead", "ocean waves",
                "the morning show", "salsa", "elvis", "opera", "the eagles", "bach",
                "punk rock", "frank sinatra", "my road trip mix"],
}
REMINDERS = {
    "train": ["call mom", "buy milk", "take my pills", "pay the rent", "water the plants",
              "feed the cat", "walk the dog", "take out the trash", "pick up the kids",
              "call the dentist", "book a table", "send the report", "check the oven",
              "buy bread", "charge my phone", "email john", "renew my passport",
              "clean the fridge", "do the laundry", "pack my bag", "call grandma",
              "pay the bills", "order flowers", "move the car", "start the dishwasher"],
    "heldout": ["feed the fish", "return the library books", "defrost the chicken",
                "call the plumber", "buy a birthday card", "cancel the gym membership",
                "text sarah", "lock the shed", "check the mail", "stretch",
                "pick up the dry cleaning", "book the vet", "buy coffee beans",
                "wish dad happy birthday", "submit the form"],
}
DOORS = {
    "train": ["front door", "back door", "side door", "garage door", "main door", "kitchen door",
              "basement door", "door", "front gate", "office door", "porch door", "shed door",
              "bedroom door"],
    "heldout": ["patio door", "cellar door", "gate", "back gate", "sliding door", "garden door",
                "mudroom door", "storm door", "entry door"],
}
SENSOR_WORDS = {  # surface words per sensor value
    "temperature": ["temperature", "temp", "how warm", "how hot", "how cold"],
    "humidity": ["humidity", "how humid"],
    "motion": ["motion", "movement", "anyone moving"],
    "co2": ["co2", "co2 level", "carbon dioxide", "air quality"],
    "door": ["door sensor", "door open", "door closed"],
}

# Slot values of train/val are mostly NOT from the lists above: made-up
# names and free compositions of common words (1-3 words), so that copying
# the value from the request is the only strategy that lowers the loss (a
# model that memorises the lists writes a known room instead of the one
# asked for). Words of the heldout pools are taken out of every list here
# (_keep), so heldout vocabulary stays unseen.
SYLL = ["ka", "lo", "mi", "ren", "to", "va", "shi", "bel", "dor", "an", "qu", "ix", "pe", "zu",
        "mar", "tin", "el", "os", "gra", "fen", "ul", "ber", "co", "nak", "sel", "wy", "thu",
        "ro", "ja", "ne", "pla", "ste", "ri", "ga", "om", "fi", "del", "ha", "ku", "ly",
        "bro", "chi", "dra", "ew", "fo", "gu", "hin", "ip", "jo", "kle", "mo", "nu", "or",
        "pri", "que", "sa", "tra", "ub", "vi", "wo", "yel", "zin", "ash", "bur", "cra", "dun",
        "est", "flo", "gri", "hol", "ing", "kin", "lum", "mun", "nor", "pos", "rad", "sto"]
CONS = "bcdfghjklmnprstvwyz"
VOW = "aeiou"
GEN_ADJ = ["red", "blue", "green", "yellow", "white", "black", "grey", "pink", "purple", "orange",
           "golden", "silver", "big", "small", "little", "tiny", "large", "old", "new", "front",
           "top", "bottom", "upper", "lower", "north", "south", "east", "west", "inner", "outer",
           "main", "second", "third", "middle", "quiet", "cozy", "sunny", "dark", "bright", "warm",
           "cool", "long", "short", "round", "square", "wooden", "stone", "glass", "far", "near",
           "left", "right", "happy", "lazy", "early", "late", "fast", "slow", "loud", "soft",
           "sweet", "spicy", "fresh", "morning", "evening", "night", "summer", "winter", "spring",
           "autumn", "sunday", "monday", "friday", "weekend", "daily", "extra", "secret", "family"]
GEN_NOUN = ["tower", "cabin", "barn", "wing", "annex", "suite", "nook", "corner", "room", "hall",
            "deck", "porch", "yard", "cottage", "tent", "office", "lab", "shop", "kitchen", "den",
            "bed", "desk", "lamp", "table", "chair", "sofa", "window", "stairs", "tree", "pool",
            "pond", "river", "lake", "hill", "field", "forest", "beach", "island", "city", "town",
            "star", "moon", "sun", "cloud", "storm", "wind", "fire", "water", "ice", "snow",
            "apple", "lemon", "cherry", "peach", "bean", "carrot", "onion", "pepper", "salmon",
            "burger", "taco", "curry", "pie", "waffle", "bagel", "cheese", "honey", "candy",
            "cat", "dog", "bird", "fox", "wolf", "bear", "horse", "rabbit", "owl", "tiger",
            "robot", "rocket", "train", "boat", "bike", "truck", "plane", "car", "bus", "van",
            "piano", "guitar", "drum", "violin", "song", "dance", "dream", "heart", "soul", "mind",
            "paper", "letter", "book", "card", "gift", "box", "bag", "key", "ring", "coat",
            "shoes", "socks", "plants", "flowers", "roses", "tomatoes", "herbs", "grass", "hedge",
            "homework", "project", "report", "taxes", "budget", "invoice", "contract", "slides",
            "meeting", "lesson", "practice", "class", "call", "party", "dinner", "lunch",
            "breakfast", "snack", "shower", "bath", "walk", "ride", "swim", "game", "match",
            "movie", "show", "episode", "album", "playlist", "station", "channel", "podcast",
            "speaker", "screen", "display", "monitor", "player", "console", "clock", "box"]
GEN_NAME = ["emma", "jack", "olivia", "noah", "liam", "ava", "mia", "lucas", "sophia", "ethan",
            "zoe", "max", "leo", "nina", "ben", "sam", "anna", "paul", "maria", "kim", "alex",
            "chris", "dan", "eva", "finn", "ida", "jonas", "lara", "mila", "omar", "rosa", "tara",
            "yuki", "raj", "chen", "ali", "fatima", "hugo", "ines", "kai", "luca", "nora", "oscar",
            "pia", "ruby", "theo", "ugo", "vera", "will", "xena", "yara", "zack", "mom", "grandpa",
            "grandma", "auntie", "uncle", "john", "bob", "lisa", "mike", "sue", "kate", "pete"]
GEN_VERB = ["buy", "call", "email", "text", "visit", "clean", "fix", "pay", "book", "check",
            "water", "feed", "walk", "wash", "paint", "order", "pick up", "drop off", "bring",
            "send", "print", "sign", "renew", "cancel", "charge", "pack", "cook", "bake", "iron",
            "sort", "file", "finish", "start", "practice", "study", "read", "write", "post",
            "collect", "empty", "refill", "replace", "update", "prepare", "plan", "try", "get"]
GEN_GENRE = ["jazz", "rock", "pop", "soul", "funk", "metal", "house", "trance", "rap", "indie",
             "gospel", "swing", "grunge", "dubstep", "lullabies", "acoustic", "latin", "kpop",
             "bluegrass", "ska", "garage", "chillout", "symphonies", "sonatas", "ballads"]


def _words(pools):
    return {w for vals in pools for v in vals for w in v.split()}


_HELDOUT_ONLY = (_words(P["heldout"] for P in (ROOMS, DEVICES, TIMER_LABELS, ALARM_LABELS, MEDIA,
                                              REMINDERS, DOORS))
                 - _words(P["train"] for P in (ROOMS, DEVICES, TIMER_LABELS, ALARM_LABELS, MEDIA,
                                               REMINDERS, DOORS)))


def _keep(ws):
    return [w for w in ws if not set(w.split()) & _HELDOUT_ONLY]


GEN_ADJ, GEN_NOUN, GEN_NAME, GEN_VERB, GEN_GENRE = (
    _keep(GEN_ADJ), _keep(GEN_NOUN), _keep(GEN_NAME), _keep(GEN_VERB), _keep(GEN_GENRE))


def made_up_word(rng):
    """A pronounceable made-up word: syllables, or consonant-vowel letters."""
    if rng.random() < 0.5:
        return "".join(rng.choice(SYLL) for _ in range(rng.randint(1, 3)))
    w = "".join(rng.choice(CONS) + rng.choice(VOW) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.4:
        w += rng.choice(CONS)
    return w


def pseudo(rng, suffixes):
    w = made_up_word(rng)
    if rng.random() < 0.5:
        w += " " + rng.choice(suffixes)
    return w


def free_words(rng, pool, suffixes):
    """1-3 words composed from the general lists, made-up words and the suffixes."""
    if pool is REMINDERS:
        obj = rng.choice([lambda: "the " + rng.choice(GEN_NOUN), lambda: "my " + rng.choice(GEN_NOUN),
                          lambda: rng.choice(GEN_NAME), lambda: "some " + rng.choice(GEN_NOUN),
                          lambda: made_up_word(rng), lambda: rng.choice(GEN_NOUN),
                          lambda: "the " + rng.choice(GEN_ADJ) + " " + rng.choice(GEN_NOUN)])()
        return rng.choice(GEN_VERB) + " " + obj
    if pool is MEDIA:
        return rng.choice([lambda: rng.choice(GEN_GENRE),
                           lambda: rng.choice(GEN_ADJ) + " " + rng.choice(GEN_GENRE),
                           lambda: "the " + rng.choice(GEN_ADJ) + " " + rng.choice(GEN_NOUN),
                           lambda: rng.choice(GEN_NAME) + " " + made_up_word(rng),
                           lambda: "my " + rng.choice(GEN_NOUN) + " " + rng.choice(["playlist", "mix", "songs"]),
                           lambda: made_up_word(rng) + " " + made_up_word(rng),
                           lambda: rng.choice(GEN_NOUN) + " " + rng.choice(suffixes)])()
    r = rng.random()
    if r < 0.3:
        w = rng.choice(GEN_ADJ) + " " + rng.choice(GEN_NOUN)
    elif r < 0.5:
        w = rng.choice(GEN_NAME) + "s " + rng.choice(suffixes + GEN_NOUN)
    elif r < 0.7:
        w = rng.choice(GEN_NOUN)
    elif r < 0.85:
        w = rng.choice(GEN_NOUN) + " " + rng.choice(suffixes)
    else:
        w = rng.choice(GEN_ADJ) + " " + rng.choice(GEN_NOUN) + " " + rng.choice(suffixes)
    return w


def pick(rng, split, pool, suffixes):
    """A slot value: from the heldout list (heldout), else (train/val) from
    the train list (20%), a made-up name (40%) or free words (40%)."""
    if split == "heldout":
        return rng.choice(pool["heldout"])
    r = rng.random()
    if r < 0.4:
        return pseudo(rng, suffixes)
    if r < 0.8:
        return free_words(rng, pool, suffixes)
    return rng.choice(pool["train"])


# ---------------------------------------------------------------------------
# Numbers and times

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return TENS[t] + ("" if o == 0 else (rng_dash() + ONES[o]))
    if n == 100:
        return "a hundred"
    raise ValueError(n)


_DASH = [" "]


def rng_dash():
    return _DASH[0]


def num(rng, n, p_words=0.35):
    """n in digits or words."""
    if 0 <= n <= 100 and rng.random() < p_words:
        _DASH[0] = "-" if rng.random() < 0.3 else " "
        return words(n)
    return str(n)


def dur(rng):
    """(surface text, seconds) of a timer duration."""
    r = rng.random()
    if r < 0.45:
        n = rng.choice(list(range(1, 61)) + [75, 90, 120])
        unit = rng.choice(["minutes", "minutes", "mins", "min", "minute"] if n != 1 else
                          ["minute", "min"])
        if n == 1 and rng.random() < 0.5:
            return rng.choice(["a minute", "one minute"]), 60
        return "%s %s" % (num(rng, n), unit), n * 60
    if r < 0.7:
        n = rng.choice([5, 10, 15, 20, 25, 30, 40, 45, 50, 60, 90, 100, 120] + list(range(1, 60)))
        unit = rng.choice(["seconds", "secs", "sec", "seconds"] if n != 1 else ["second"])
        return "%s %s" % (num(rng, n), unit), n
    if r < 0.85:
        n = rng.randint(1, 12)
        unit = rng.choice(["hours", "hrs", "hour"] if n != 1 else ["hour", "hr"])
        if n == 1 and rng.random() < 0.5:
            return rng.choice(["an hour", "one hour"]), 3600
        return "%s %s" % (num(rng, n), unit), n * 3600
    if r < 0.93:
        return rng.choice([("half an hour", 1800), ("a quarter of an hour", 900),
                           ("an hour and a half", 5400), ("half a minute", 30),
                           ("a minute and a half", 90)])
    h, m = rng.randint(1, 3), rng.choice([5, 10, 15, 20, 30, 45])
    return ("%s hour%s %s minutes" % (num(rng, h), "s" if h > 1 else "", num(rng, m)),
            h * 3600 + m * 60)


def tod(rng):
    """(surface text, "HH:MM") of a time of day."""
    r = rng.random()
    h24 = rng.randint(0, 23)
    m = rng.choice([0] * 6 + [15, 30, 45, 5, 10, 20, 40, 50] + [rng.randint(0, 59)])
    h12 = h24 % 12 or 12
    ampm = "am" if h24 < 12 else "pm"
    hhmm = "%02d:%02d" % (h24, m)
    if r < 0.5:  # 12h
        sep = rng.choice(["", " "])
        ap = rng.choice([ampm, ampm, ampm.upper(), ampm[0] + "." + ampm[1] + "."])
        if m == 0 and rng.random() < 0.6:
            return "%d%s%s" % (h12, sep, ap), hhmm
        return "%d:%02d%s%s" % (h12, m, sep, ap), hhmm
    if r < 0.8:  # 24h
        if rng.random() < 0.5 or h24 >= 10:
            return "%02d:%02d" % (h24, m), hhmm
        return "%d:%02d" % (h24, m), hhmm
    if r < 0.9:  # words
        if h24 == 12 and m == 0:
            return "noon", "12:00"
        if h24 == 0 and m == 0:
            return "midnight", "00:00"
        day = "in the morning" if h24 < 12 else ("in the afternoon" if h24 < 18 else
                                                  "in the evening")
        if m == 0:
            return "%s %s" % (words(h12), day), hhmm
        return "%s %s %s" % (words(h12), words(m) if m >= 10 else "oh " + words(m), day), hhmm
    if m == 0:
        return "%d o'clock %s" % (h12, ampm), hhmm
    return "%d:%02d %s" % (h12, m, ampm), hhmm


# ---------------------------------------------------------------------------
# Phrasings. Each intent has TRAIN and HELDOUT templates; {slots} are filled
# in. A template string is used by one split only.

T = {}

T["light_on"] = {
    "train": ["turn on the {room} lights", "turn the {room} light on", "switch on the {room} light",
              "{room} lights on", "lights on in the {room}", "can you turn on the lights in the {room}",
              "put the lights on in the {room}", "switch the {room} lights on",
              "i need the {room} light on", "turn on the light in the {room}",
              "{room} light on please", "light on in {room}", "turn {room} lights on"],
    "heldout": ["get the lights on in the {room}", "flip the {room} lights on",
                "could the {room} light be on", "switch {room} light on",
                "on with the lights in the {room}", "i want the lights on in the {room}"],
}
T["light_off"] = {
    "train": ["turn off the {room} lights", "turn the {room} light off", "switch off the {room} light",
              "{room} lights off", "lights off in the {room}", "can you turn off the lights in the {room}",
              "kill the lights in the {room}", "switch the {room} lights off",
              "turn off the light in the {room}", "{room} light off please", "no lights in the {room}",
              "shut off the {room} lights", "turn {room} lights off"],
    "heldout": ["get the lights off in the {room}", "flip the {room} lights off",
                "switch {room} light off", "i want the lights off in the {room}",
                "shut the {room} light off", "lights out in the {room}"],
}
T["light_dim"] = {  # on with brightness
    "train": ["set the {room} lights to {pct}", "dim the {room} lights to {pct}",
              "{room} lights at {pct}", "turn on the {room} light at {pct}",
              "brightness {pct} in the {room}", "set {room} light brightness to {pct}",
              "turn the lights in the {room} to {pct}", "make the {room} lights {pct}"],
    "heldout": ["put the {room} lights at {pct}", "{room} light to {pct} brightness",
                "change the {room} lights to {pct}", "lights in the {room} at {pct}"],
}
T["thermo"] = {
    "train": ["set the thermostat in the {room} to {deg}", "set the {room} to {deg}",
              "make the {room} {deg}", "heat the {room} to {deg}", "{room} thermostat {deg}",
              "set {room} temperature to {deg}", "i want the {room} at {deg}",
              "change the {room} thermostat to {deg}", "warm the {room} up to {deg}",
              "cool the {room} to {deg}", "thermostat to {deg} in the {room}"],
    "heldout": ["put the {room} thermostat on {deg}", "{room} heating to {deg}",
                "could you set the heat in the {room} to {deg}", "keep the {room} at {deg}",
                "adjust the {room} thermostat to {deg}", "temperature in the {room} to {deg}"],
}
T["timer"] = {
    "train": ["set a timer for {dur}", "start a {dur} timer", "timer {dur}", "{dur} timer",
              "start a timer for {dur}", "count down {dur}", "can you set a timer for {dur}",
              "timer for {dur} please", "set timer {dur}"],
    "heldout": ["put on a timer for {dur}", "i need a {dur} timer", "begin a timer of {dur}",
                "run a timer for {dur}", "make a timer for {dur}"],
}
T["timer_label"] = {
    "train": ["set a {label} timer for {dur}", "start a {dur} timer for the {label}",
              "timer for {label} {dur}", "{dur} timer for {label}", "set a timer for {dur} for the {label}",
              "{label} timer {dur}", "start a timer called {label} for {dur}"],
    "heldout": ["put on a {label} timer for {dur}", "i need a {dur} timer for my {label}",
                "run a {label} timer of {dur}", "make a timer for {dur} labeled {label}"],
}
T["alarm"] = {
    "train": ["set an alarm for {time}", "wake me up at {time}", "alarm at {time}", "alarm {time}",
              "set alarm {time}", "can you set an alarm for {time}", "i need an alarm at {time}",
              "set my alarm to {time}", "wake me at {time}"],
    "heldout": ["put an alarm on for {time}", "get me up at {time}", "make an alarm for {time}",
                "alarm for {time} please", "i have to wake up at {time}"],
}
T["alarm_label"] = {
    "train": ["set an alarm for {time} for {label}", "set a {label} alarm at {time}",
              "alarm at {time} called {label}", "{label} alarm {time}",
              "wake me up at {time} for {label}"],
    "heldout": ["put a {label} alarm on for {time}", "make an alarm for {time} labeled {label}",
                "get me up at {time} for {label}"],
}
T["play"] = {
    "train": ["play {q}", "play some {q}", "put on {q}", "i want to listen to {q}", "can you play {q}",
              "start playing {q}", "play me {q}", "lets hear {q}", "put {q} on"],
    "heldout": ["queue up {q}", "i'd like to hear {q}", "could you put on {q}", "throw on {q}",
                "play a bit of {q}"],
}
T["play_dev"] = {
    "train": ["play {q} on the {dev}", "put on {q} on the {dev}", "play {q} in the {dev}",
              "on the {dev} play {q}", "can you play {q} on {dev}", "start {q} on the {dev}"],
    "heldout": ["queue up {q} on the {dev}", "throw on {q} on the {dev}", "i'd like {q} on the {dev}",
                "could you put {q} on the {dev}"],
}
T["media"] = {
    "pause": {"train": ["pause", "pause the music", "pause it", "hold on pause", "pause playback",
                        "pause the {dev}", "pause music on the {dev}", "pause that"],
              "heldout": ["put it on pause", "pause what's playing", "hit pause",
                          "pause the song on the {dev}"]},
    "resume": {"train": ["resume", "resume the music", "continue playing", "unpause", "keep playing",
                         "resume on the {dev}", "unpause the {dev}", "play again"],
               "heldout": ["carry on playing", "resume playback", "start it back up",
                           "resume what was playing on the {dev}"]},
    "next": {"train": ["next", "next song", "skip", "skip this song", "next track", "skip track",
                       "next song on the {dev}", "skip on the {dev}"],
             "heldout": ["skip ahead", "play the next one", "go to the next track",
                         "skip this one on the {dev}"]},
    "previous": {"train": ["previous", "previous song", "go back", "last song", "previous track",
                           "back one song", "previous song on the {dev}", "go back on the {dev}"],
                 "heldout": ["play the previous one", "go back a track", "the song before",
                             "play the last track again on the {dev}"]},
    "stop": {"train": ["stop", "stop the music", "stop playing", "stop it", "stop playback",
                       "stop the {dev}", "stop music on the {dev}", "turn the music off"],
             "heldout": ["end the music", "stop all music", "stop what's playing",
                         "cut the music on the {dev}"]},
}
T["volume"] = {
    "train": ["set the volume to {lvl}", "volume {lvl}", "volume to {lvl}", "turn the volume to {lvl}",
              "change volume to {lvl}", "set volume at {lvl}", "make it {lvl} volume"],
    "heldout": ["put the volume at {lvl}", "adjust the volume to {lvl}", "i want volume {lvl}",
                "bring the volume to {lvl}"],
}
T["volume_dev"] = {
    "train": ["set the {dev} volume to {lvl}", "{dev} volume {lvl}", "volume {lvl} on the {dev}",
              "turn the {dev} to {lvl}", "set volume to {lvl} on the {dev}"],
    "heldout": ["put the {dev} volume at {lvl}", "adjust the volume on the {dev} to {lvl}",
                "bring the {dev} volume to {lvl}"],
}
T["remind"] = {
    "train": ["remind me to {text}", "add a reminder to {text}", "reminder {text}",
              "set a reminder to {text}", "can you remind me to {text}", "dont let me forget to {text}",
              "add reminder {text}", "make a reminder to {text}"],
    "heldout": ["i need a reminder to {text}", "please remind me to {text}", "note to self {text}",
                "create a reminder to {text}"],
}
T["remind_time"] = {
    "train": ["remind me to {text} at {time}", "at {time} remind me to {text}",
              "add a reminder to {text} at {time}", "set a reminder for {time} to {text}",
              "reminder at {time} {text}", "can you remind me at {time} to {text}"],
    "heldout": ["i need a reminder at {time} to {text}", "please remind me to {text} at {time}",
                "create a reminder to {text} for {time}"],
}
T["sensor"] = {
    "temperature": {"train": ["what's the temperature", "how warm is it", "temperature",
                              "what is the temp", "how hot is it in here", "current temperature"],
                    "heldout": ["what temperature is it", "is it cold in here", "check the temperature"]},
    "humidity": {"train": ["what's the humidity", "how humid is it", "humidity level", "humidity"],
                 "heldout": ["check the humidity", "is it humid"]},
    "motion": {"train": ["any motion", "is there any movement", "motion sensor", "did the motion sensor trigger"],
               "heldout": ["check for motion", "is anyone moving around"]},
    "co2": {"train": ["what's the co2 level", "co2", "how is the air quality", "carbon dioxide level"],
            "heldout": ["check the co2", "how much co2 is there"]},
    "door": {"train": ["is the door open", "door sensor", "is the door closed", "check the door sensor"],
             "heldout": ["is a door open", "read the door sensor"]},
}
T["sensor_room"] = {
    "temperature": {"train": ["what's the temperature in the {room}", "how warm is the {room}",
                              "{room} temperature", "temp in the {room}", "how cold is it in the {room}",
                              "what is the temperature of the {room}"],
                    "heldout": ["check the temperature in the {room}", "is it cold in the {room}",
                                "what temperature is the {room}"]},
    "humidity": {"train": ["what's the humidity in the {room}", "how humid is the {room}",
                           "{room} humidity", "humidity in the {room}"],
                 "heldout": ["check the humidity in the {room}", "is the {room} humid"]},
    "motion": {"train": ["any motion in the {room}", "is there movement in the {room}",
                         "{room} motion sensor", "is anyone in the {room}"],
               "heldout": ["check for motion in the {room}", "anybody moving in the {room}"]},
    "co2": {"train": ["what's the co2 in the {room}", "{room} co2 level", "co2 in the {room}",
                      "how is the air in the {room}"],
            "heldout": ["check the co2 in the {room}", "how much co2 in the {room}"]},
    "door": {"train": ["is the {room} door open", "{room} door sensor", "is the door in the {room} closed"],
             "heldout": ["check the {room} door sensor", "is the door of the {room} open"]},
}
T["lock"] = {
    "train": ["lock the {door}", "{door} lock", "can you lock the {door}", "lock up the {door}",
              "make sure the {door} is locked", "lock {door} please"],
    "heldout": ["secure the {door}", "please lock the {door}", "i want the {door} locked"],
}
T["unlock"] = {
    "train": ["unlock the {door}", "{door} unlock", "can you unlock the {door}", "open the lock on the {door}",
              "unlock {door} please"],
    "heldout": ["please unlock the {door}", "i want the {door} unlocked", "let me in the {door}"],
}

# More train phrasings (second run; none is a heldout template).
T['light_on']["train"] += ['lights in the {room} on', 'could you switch the light on in the {room}', '{room}: lights on', 'illuminate the {room}', 'make the {room} bright', 'turn the lights on in the {room}', 'lamp on in the {room}', 'the {room} lights need to be on']
T['light_off']["train"] += ['lights in the {room} off', 'could you switch the light off in the {room}', '{room}: lights off', 'darken the {room}', 'turn the lights off in the {room}', 'lamp off in the {room}', 'no more light in the {room}', 'the {room} lights need to be off']
T['light_dim']["train"] += ['{room} brightness {pct}', '{room} lights to {pct} please', 'dim the light in the {room} to {pct}', 'brighten the {room} to {pct}']
T['thermo']["train"] += ['{room} to {deg}', 'thermostat {room} {deg}', 'set the heating in the {room} to {deg}', "i'd like the {room} at {deg}", '{room} should be {deg}']
T['timer']["train"] += ['{dur} countdown', 'time {dur} for me', 'can i get a timer for {dur}', 'give me a {dur} timer']
T['timer_label']["train"] += ['{label} in {dur}', 'a {dur} timer named {label}', 'timer named {label} for {dur}', 'give me a {label} timer of {dur}']
T['alarm']["train"] += ['alarm for {time}', 'set the alarm at {time}', 'wake me {time}', 'an alarm at {time} please']
T['alarm_label']["train"] += ['alarm {time} {label}', 'set an alarm named {label} at {time}', '{label} at {time} alarm']
T['play']["train"] += ['play {q} please', 'music: {q}', 'can i hear {q}', 'stream {q}']
T['play_dev']["train"] += ['stream {q} on the {dev}', 'play {q} through the {dev}', '{dev}: play {q}']
T['volume']["train"] += ['volume at {lvl}', 'turn it to {lvl}', 'set the sound to {lvl}', 'make the volume {lvl}']
T['volume_dev']["train"] += ['{dev} to volume {lvl}', 'make the {dev} volume {lvl}', 'volume on the {dev} to {lvl}']
T['remind']["train"] += ['reminder to {text}', 'remember to {text}', 'remind me {text}', 'todo {text}']
T['remind_time']["train"] += ['remind me at {time} to {text}', '{time} reminder to {text}', 'remind me to {text} at {time} please']
T['lock']["train"] += ['lock up {door}', '{door} locked please', 'secure lock the {door}', 'lock the {door} now']
T['unlock']["train"] += ['unlock {door}', '{door} unlocked please', 'unlock the {door} for me', 'open up the lock of the {door}']

PREFIX = {
    "train": ["", "", "", "", "please ", "hey ", "can you ", "could you ", "ok ", "yo ", "hi, ",
              "hey edge, ", "quick, ", "would you ", "go ahead and ", "okay ", "oh and ",
              "can you please ", "i need you to ", "um ", "so ", "right, ", "edge, ", "hey there, ",
              "please could you ", "mind if you ", "just ", "ok so "],
    "heldout": ["", "", "", "kindly ", "hello, ", "alright ", "excuse me, "],
}
SUFFIX = {
    "train": ["", "", "", "", " please", " thanks", " thank you", " now", "!", ".", " pls", " asap",
              " for me", " when you can", " ok", " thx", " real quick", " quickly", " please thanks",
              " for me please", " thank u", "!!", " :)"],
    "heldout": ["", "", "", " cheers", " if you can", " right now", "?"],
}
JOIN = {
    "train": [" and ", " and ", ", ", " then ", " and also ", ". ", " & ", " plus "],
    "heldout": [" and then ", ", and ", " also ", "; "],
}

# Out of domain: frames around topics, and whole requests.
OOD_WHOLE = {
    "train": ["what is the capital of france", "who wrote hamlet", "tell me a joke", "how are you",
              "what's the meaning of life", "write a poem about the sea",
              "write a python function that reverses a list", "what is 37 times 12",
              "solve x squared minus 4 equals 0", "summarize the plot of the matrix",
              "translate good morning into spanish", "what's the weather tomorrow",
              "order a pizza", "send an email to bob", "call my mom", "who won the world cup",
              "explain how vaccines work", "give me a recipe for pancakes", "how far is the moon",
              "what time is it in tokyo", "book a flight to london", "what's your name",
              "write a cover letter for a nurse job", "debug this javascript code",
              "how do i fix a leaking tap", "recommend a good book", "what is machine learning",
              "convert 10 miles to km", "is it going to rain today", "buy more dog food online",
              "what's the stock price of apple", "how do i make a sql join", "hello",
              "thank you", "good night", "who is the president", "tell me about black holes",
              "what does ubiquitous mean", "write a haiku about autumn", "plan my trip to rome",
              "what's 15 percent of 80", "draft a tweet about our launch",
              "help me write an essay on climate change", "what should i cook for dinner",
              "turn on the dishwasher", "open the garage with my car", "text my wife im late",
              "what's on my calendar today", "how many calories in an apple",
              "why is the sky blue", "sing me a song", "what movies are playing tonight",
              "find a plumber near me", "what's the news about the election",
              "write a bash script to back up my files", "integrate x squared",
              "can you explain recursion", "make a shopping list for a bbq",
              "summarize this article: the city council met on tuesday to discuss new bike lanes",
              "rewrite this sentence to sound formal: gimme the report",
              "what's the difference between a virus and bacteria", "are you conscious",
              "set up a zoom meeting with the team", "how long does it take to boil an egg",
              "what's a good name for a cat", "start the car", "turn on the washing machine",
              "vacuum the living room", "feed the dog", "close the blinds", "open the windows",
              "make me a coffee"],
    "heldout": ["what is the tallest mountain in africa", "who painted the mona lisa",
                "tell me a riddle", "how's your day going", "compose a limerick about a frog",
                "write a rust program that sums an array", "what is 144 divided by 9",
                "factor x cubed minus 8", "give me a summary of world war two",
                "how do you say thank you in japanese", "will it snow this weekend",
                "order sushi for delivery", "reply to the last email from alice",
                "phone the pharmacy", "who scored in the final last night",
                "how does photosynthesis work", "what's a good lasagna recipe",
                "how old is the universe", "book me a hotel in paris",
                "draft a resignation letter", "review my pull request",
                "what's the exchange rate for euros", "how do i change a tire",
                "suggest a podcast about history", "explain neural networks simply",
                "how many ounces in a pound", "what's trending on twitter", "good morning",
                "thanks a lot", "what are you", "write a short story about a dragon",
                "what's the square root of 529", "check my bank balance",
                "schedule a haircut for friday", "what's the population of canada",
                "debug my python error: index out of range", "mow the lawn",
                "turn on the coffee machine", "open the curtains", "run the robot vacuum",
                "brew some tea", "summarize: profits rose ten percent while costs fell",
                "what year did the titanic sink", "define serendipity",
                "help me study for my chemistry exam", "who are you"],
}
OOD_FRAMES = {
    "train": ["tell me about {t}", "write an essay about {t}", "explain {t}", "what do you know about {t}",
              "give me three facts about {t}", "write a story about {t}", "summarize the history of {t}",
              "can you teach me about {t}", "what is {t}", "how does {t} work"],
    "heldout": ["i'm curious about {t}", "describe {t} in detail", "what's interesting about {t}",
                "make a presentation on {t}", "list pros and cons of {t}"],
}
OOD_TOPICS = {
    "train": ["the roman empire", "quantum physics", "dinosaurs", "the stock market", "bitcoin",
              "the french revolution", "volcanoes", "gardening", "chess", "the olympics",
              "electric cars", "shakespeare", "the human brain", "jazz history", "climate change",
              "taxes", "meditation", "the internet", "space travel", "ancient egypt", "sharks",
              "basketball", "coffee", "artificial intelligence", "democracy"],
    "heldout": ["the ottoman empire", "string theory", "penguins", "cryptography", "the renaissance",
                "earthquakes", "beekeeping", "poker", "the moon landing", "solar panels", "tolkien",
                "the immune system", "vikings", "inflation", "origami"],
}

# ---------------------------------------------------------------------------
# Surface noise: typos, case.

def typo(rng, w):
    if len(w) < 3 or not w.isalpha():
        return w
    i = rng.randrange(len(w) - 1)
    k = rng.random()
    if k < 0.3:
        return w[:i] + w[i + 1] + w[i] + w[i + 2:]
    if k < 0.6:
        return w[:i] + w[i + 1:]
    if k < 0.8:
        return w[:i] + w[i] + w[i:]
    return w[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + w[i + 1:]


def noisy(rng, text, p):
    """Typos in the words of a template text (slot values are filled in later)."""
    out = []
    for part in text.split(" "):
        if "{" not in part and rng.random() < p:
            part = typo(rng, part)
        out.append(part)
    return " ".join(out)


def casing(rng, text):
    r = rng.random()
    if r < 0.25:
        return text[:1].upper() + text[1:]
    if r < 0.265:
        return text.upper()
    return text


# ---------------------------------------------------------------------------
# One in-domain request: (text, [calls])

def fill(rng, split, tpl, slots, p_typo):
    tpl = noisy(rng, tpl, p_typo)
    text = tpl
    for k, v in slots.items():
        shown = v
        if rng.random() < (0.05 if split == "heldout" else 0.15):
            shown = v.title()
        text = text.replace("{%s}" % k, shown)
    return text


def pct_text(rng, n):
    s = num(rng, n)
    return s + rng.choice(["%", " percent", "%", " %", ""]) if s.isdigit() else \
        s + rng.choice([" percent", "", " percent"])


def deg_text(rng, v):
    if isinstance(v, float):
        s = ("%.1f" % v)
    else:
        s = num(rng, v)
    return s + rng.choice([" degrees", "", " degrees", "c", " degrees celsius", " celsius", " deg"])


def one_request(rng, split, p_typo):
    sp = "heldout" if split == "heldout" else "train"
    intent = rng.choices(
        ["light", "thermo", "timer", "alarm", "play", "media", "volume", "remind", "sensor", "lock"],
        [16, 9, 11, 9, 9, 9, 8, 9, 10, 8])[0]
    if intent == "light":
        room = pick(rng, split, ROOMS, ["room", "hall", "bedroom", "den"])
        k = rng.random()
        if k < 0.4:
            return fill(rng, split, rng.choice(T["light_on"][sp]), {"room": room}, p_typo), \
                [("set_light", {"room": room, "on": True})]
        if k < 0.8:
            return fill(rng, split, rng.choice(T["light_off"][sp]), {"room": room}, p_typo), \
                [("set_light", {"room": room, "on": False})]
        b = rng.choice([0, 5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100] + [rng.randint(1, 100)])
        t = fill(rng, split, rng.choice(T["light_dim"][sp]), {"room": room}, p_typo)
        return t.replace("{pct}", pct_text(rng, b)), [("set_light", {"room": room, "on": True, "brightness": b})]
    if intent == "thermo":
        room = pick(rng, split, ROOMS, ["room", "hall", "bedroom"])
        v = rng.randint(15, 28) if rng.random() < 0.8 else rng.randint(15, 27) + 0.5
        t = fill(rng, split, rng.choice(T["thermo"][sp]), {"room": room}, p_typo)
        return t.replace("{deg}", deg_text(rng, v)), [("set_thermostat", {"room": room, "celsius": v})]
    if intent == "timer":
        d, secs = dur(rng)
        if rng.random() < 0.4:
            label = pick(rng, split, TIMER_LABELS, ["timer", "break"])
            t = fill(rng, split, rng.choice(T["timer_label"][sp]), {"label": label}, p_typo)
            return t.replace("{dur}", d), [("start_timer", {"seconds": secs, "label": label})]
        t = fill(rng, split, rng.choice(T["timer"][sp]), {}, p_typo)
        return t.replace("{dur}", d), [("start_timer", {"seconds": secs})]
    if intent == "alarm":
        ts, hhmm = tod(rng)
        if rng.random() < 0.35:
            label = pick(rng, split, ALARM_LABELS, ["call", "time"])
            t = fill(rng, split, rng.choice(T["alarm_label"][sp]), {"label": label}, p_typo)
            return t.replace("{time}", ts), [("set_alarm", {"time": hhmm, "label": label})]
        t = fill(rng, split, rng.choice(T["alarm"][sp]), {}, p_typo)
        return t.replace("{time}", ts), [("set_alarm", {"time": hhmm})]
    if intent == "play":
        q = pick(rng, split, MEDIA, ["music", "songs", "radio", "mix"])
        if rng.random() < 0.35:
            dev = pick(rng, split, DEVICES, ["speaker", "tv"])
            return fill(rng, split, rng.choice(T["play_dev"][sp]), {"q": q, "dev": dev}, p_typo), \
                [("play_media", {"query": q, "device": dev})]
        return fill(rng, split, rng.choice(T["play"][sp]), {"q": q}, p_typo), [("play_media", {"query": q})]
    if intent == "media":
        action = rng.choice(["pause", "resume", "next", "previous", "stop"])
        tpl = rng.choice(T["media"][action][sp])
        if "{dev}" in tpl:
            dev = pick(rng, split, DEVICES, ["speaker", "tv"])
            return fill(rng, split, tpl, {"dev": dev}, p_typo), [("media_control", {"action": action, "device": dev})]
        return fill(rng, split, tpl, {}, p_typo), [("media_control", {"action": action})]
    if intent == "volume":
        lvl = rng.choice([0, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100] + [rng.randint(0, 100)])
        lt = num(rng, lvl) + (rng.choice(["", "%", " percent"]) if rng.random() < 0.4 else "")
        if rng.random() < 0.4:
            dev = pick(rng, split, DEVICES, ["speaker", "tv"])
            t = fill(rng, split, rng.choice(T["volume_dev"][sp]), {"dev": dev}, p_typo)
            return t.replace("{lvl}", lt), [("set_volume", {"level": lvl, "device": dev})]
        t = fill(rng, split, rng.choice(T["volume"][sp]), {}, p_typo)
        return t.replace("{lvl}", lt), [("set_volume", {"level": lvl})]
    if intent == "remind":
        text = pick(rng, split, REMINDERS, ["the car", "the form", "it"])
        if split != "heldout" and rng.random() < 0.15:
            text = rng.choice(["call ", "email ", "text ", "visit "]) + pseudo(rng, ["smith"])
        if rng.random() < 0.45:
            ts, hhmm = tod(rng)
            t = fill(rng, split, rng.choice(T["remind_time"][sp]), {"text": text}, p_typo)
            return t.replace("{time}", ts), [("add_reminder", {"text": text, "time": hhmm})]
        return fill(rng, split, rng.choice(T["remind"][sp]), {"text": text}, p_typo), \
            [("add_reminder", {"text": text})]
    if intent == "sensor":
        sensor = rng.choice(["temperature", "temperature", "humidity", "motion", "co2", "door"])
        if rng.random() < 0.65:
            room = pick(rng, split, ROOMS, ["room", "hall"])
            return fill(rng, split, rng.choice(T["sensor_room"][sensor][sp]), {"room": room}, p_typo), \
                [("read_sensor", {"sensor": sensor, "room": room})]
        return fill(rng, split, rng.choice(T["sensor"][sensor][sp]), {}, p_typo), \
            [("read_sensor", {"sensor": sensor})]
    door = pick(rng, split, DOORS, ["door", "gate"])
    if rng.random() < 0.6:
        return fill(rng, split, rng.choice(T["lock"][sp]), {"door": door}, p_typo), \
            [("lock_door", {"door": door, "locked": True})]
    return fill(rng, split, rng.choice(T["unlock"][sp]), {"door": door}, p_typo), \
        [("lock_door", {"door": door, "locked": False})]


def request(rng, split):
    """A user message with one or more calls."""
    sp = "heldout" if split == "heldout" else "train"
    p_typo = 0.05 if rng.random() < 0.3 else 0.0
    n = rng.choices([1, 2, 3], [70, 24, 6])[0]
    parts, calls = [], []
    for _ in range(n):
        t, c = one_request(rng, split, p_typo)
        parts.append(t)
        calls += c
    text = parts[0]
    for p in parts[1:]:
        text += rng.choice(JOIN[sp]) + p
    text = rng.choice(PREFIX[sp]) + text + rng.choice(SUFFIX[sp])
    text = text.replace(" a a ", " a ").replace(" a an ", " an ")
    return casing(rng, text), calls


# Out-of-domain requests composed from the general word lists (train/val
# only): questions, writing, coding, maths, chit-chat, and household
# actions the toolset cannot do (appliances that are not lights,
# thermostats, speakers or locks).
OOD_GEN = {
    "appliance": ["dishwasher", "washing machine", "dryer", "oven", "kettle", "fan", "heater",
                  "air conditioner", "blinds", "shutters", "sprinklers", "robot mower", "fridge",
                  "microwave", "toaster", "hot tub", "fireplace", "pool pump", "humidifier",
                  "air purifier", "doorbell camera", "printer", "router", "ceiling fan", "coffee maker"],
    "appl_verb": ["turn on the", "turn off the", "switch on the",
                  "switch off the", "run the", "open the", "close the", "empty the", "clean the",
                  "reset the", "restart the", "preheat the", "fill the"],
    "q": ["what is a {n}", "who invented the {n}", "why do {n}s exist", "how big is a {n}",
          "how do i draw a {n}", "where can i buy a {a} {n}", "is a {n} {a}", "what does {n} mean",
          "how much does a {n} cost", "when was the {n} invented", "how do you spell {n}",
          "what rhymes with {n}", "tell me something about {n}s", "are {n}s dangerous",
          "who is {name}", "where is {name}", "what's {name} doing", "how old is {name}"],
    "w": ["write a poem about a {a} {n}", "write a song about {n}s", "write a letter to {name}",
          "draft an email to {name} about the {n}", "write a speech about {n}s",
          "give me a slogan for a {n} shop", "write a birthday message for {name}",
          "summarize this: the {n} was {a} and the {n} was late", "translate {n} into german",
          "make up a story about a {a} {n}", "rewrite this to sound {a}: the {n} is broken",
          "brainstorm names for a {a} {n}", "write a product review of a {n}"],
    "code": ["write a {lang} function that sorts a list", "fix this {lang} bug", "explain this {lang} code",
             "how do i read a file in {lang}", "write a {lang} class for a {n}",
             "convert this {lang} loop to a map", "what does this regex do", "write unit tests in {lang}"],
    "math": ["what is {x} plus {y}", "what is {x} times {y}", "{x} minus {y}", "divide {x} by {y}",
             "what's {x} percent of {y}", "is {x} a prime number", "solve {x} x plus {y} equals 0",
             "convert {x} pounds to kilos", "how many minutes in {x} days", "average of {x} and {y}"],
    "chat": ["how was your day", "do you like {n}s", "i'm bored", "i feel {a} today",
             "what's your favorite {n}", "can we talk", "you're funny", "goodbye", "hey there",
             "what can you do", "are you a robot", "i love {n}s", "tell me something {a}"],
    "lang": ["python", "javascript", "c", "java", "go", "ruby", "php", "sql", "bash", "kotlin"],
}


def ood_generated(rng):
    k = rng.choices(["appliance", "q", "w", "code", "math", "chat"], [30, 20, 15, 10, 12, 13])[0]
    if k == "appliance":
        t = rng.choice(OOD_GEN["appl_verb"]) + " " + rng.choice(OOD_GEN["appliance"])
        if rng.random() < 0.3:
            t += rng.choice([" in the ", " in the ", " for the "]) + rng.choice(GEN_NOUN)
        return t
    t = rng.choice(OOD_GEN[k])
    for key, fn in (("{n}", lambda: rng.choice(GEN_NOUN)), ("{a}", lambda: rng.choice(GEN_ADJ)),
                    ("{name}", lambda: rng.choice(GEN_NAME)), ("{lang}", lambda: rng.choice(OOD_GEN["lang"])),
                    ("{x}", lambda: num(rng, rng.randint(2, 99))), ("{y}", lambda: num(rng, rng.randint(2, 99)))):
        while key in t:
            t = t.replace(key, fn(), 1)
    return t


def ood(rng, split):
    sp = "heldout" if split == "heldout" else "train"
    if split != "heldout" and rng.random() < 0.5:
        t = ood_generated(rng)
    elif rng.random() < 0.6:
        t = rng.choice(OOD_WHOLE[sp])
    else:
        t = rng.choice(OOD_FRAMES[sp]).replace("{t}", rng.choice(OOD_TOPICS[sp]))
    t = noisy(rng, t, 0.04 if rng.random() < 0.3 else 0.0)
    if rng.random() < 0.5:
        t = rng.choice(PREFIX[sp]) + t + rng.choice(SUFFIX[sp] + ["?", "?"])
    return casing(rng, t)


# ---------------------------------------------------------------------------
# Tool results and the replies to them

def result_and_reply(rng, name, args):
    """(tool result text, reply text) for one call."""
    if name == "read_sensor":
        s = args["sensor"]
        where = (" in the " + args["room"]) if "room" in args else ""
        if s == "temperature":
            v = rng.choice([rng.randint(12, 30), round(rng.uniform(12, 30), 1)])
            return json.dumps({"temperature": v, "unit": "C"}), "It's %s degrees%s." % (v, where)
        if s == "humidity":
            v = rng.randint(20, 80)
            return json.dumps({"humidity": v}), "The humidity%s is %d%%." % (where, v)
        if s == "co2":
            v = rng.randint(350, 2000)
            return json.dumps({"co2": v, "unit": "ppm"}), "The co2 level%s is %d ppm." % (where, v)
        if s == "motion":
            v = rng.random() < 0.5
            return json.dumps({"motion": v}), ("Motion detected%s." if v else "No motion%s.") % where
        v = rng.choice(["open", "closed"])
        return json.dumps({"door": v}), "The door%s is %s." % (where, v)
    if rng.random() < 0.08:
        e = rng.choice(["device not found", "timeout", "offline"])
        return json.dumps({"ok": False, "error": e}), "Sorry, that didn't work: %s." % e
    return json.dumps({"ok": True}), "Done."


def tool_turn(rng, split, rid):
    """A request, its calls, their results, and the reply."""
    text, calls = request(rng, split)
    tcs, results, replies = [], [], []
    for i, (name, args) in enumerate(calls):
        cid = "call_%d_%d" % (rid, i)
        tcs.append({"id": cid, "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args, separators=(",", ":"))}})
        res, rep = result_and_reply(rng, name, args)
        results.append({"role": "tool", "tool_call_id": cid, "content": res})
        replies.append(rep)
    # the same reply twice (several "Done.") is said once
    out = []
    for r in replies:
        if r not in out:
            out.append(r)
    msgs = [{"role": "user", "content": text},
            {"role": "assistant", "content": None, "tool_calls": tcs}] + results
    return msgs, " ".join(out), calls


def calls_json(calls):
    return [{"name": n, "arguments": a} for n, a in calls]


def example(rng, split, rid):
    r = rng.random()
    history = []
    if rng.random() < (0.15 if split == "heldout" else 0.07):  # an earlier finished exchange
        h, reply, _ = tool_turn(rng, split, rid + 100000)
        history = h + [{"role": "assistant", "content": reply}]
    # heldout keeps the first generator's mix (55% calls, 20% replies, 15%
    # with history); train/val have more calls, the hard part (68% calls,
    # 10% replies, 7% with history)
    c_end, r_end = (0.55, 0.75) if split == "heldout" else (0.68, 0.78)
    if r < c_end:
        text, calls = request(rng, split)
        return {"messages": history + [{"role": "user", "content": text}], "kind": "call",
                "expected": {"calls": calls_json(calls)}}
    if r < r_end:
        msgs, reply, _ = tool_turn(rng, split, rid)
        return {"messages": history + msgs, "kind": "reply", "expected": {"content": reply}}
    return {"messages": history + [{"role": "user", "content": ood(rng, split)}], "kind": "handoff",
            "expected": {"handoff": True}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out-dir", required=True, help="writes train.jsonl, val.jsonl, heldout.jsonl")
    ap.add_argument("--train", type=int, default=60000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--heldout", type=int, default=500)
    ap.add_argument("--heldout-out", help="also write the heldout split here")
    ap.add_argument("--tools-out", help="write the tools JSON here")
    a = ap.parse_args()
    for split, n, off in (("train", a.train, 0), ("val", a.val, 1), ("heldout", a.heldout, 2)):
        rng = random.Random(a.seed * 1000 + off)
        seen = set()
        rows = []
        i = 0
        while len(rows) < n:
            ex = example(rng, split, i)
            i += 1
            key = json.dumps(ex["messages"], sort_keys=True)
            if split != "train":
                if key in seen:
                    continue
                seen.add(key)
            rows.append(ex)
        for ex in rows:
            for m in ex["messages"]:
                assert (m.get("content") or "").isascii()
        text = "".join(json.dumps(ex, separators=(",", ":")) + "\n" for ex in rows)
        with open("%s/%s.jsonl" % (a.out_dir, split), "w") as f:
            f.write(text)
        if split == "heldout" and a.heldout_out:
            with open(a.heldout_out, "w") as f:
                f.write(text)
    if a.tools_out:
        with open(a.tools_out, "w") as f:
            json.dump(TOOLS, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
