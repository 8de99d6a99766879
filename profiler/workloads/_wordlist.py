"""The fixed vocabulary of the ``words`` pseudo-tokenizer: common short English words, most of
which real BPE tokenizers encode as one token, so word counts stay near token counts."""

from __future__ import annotations

WORDS: tuple[str, ...] = (
    "the", "of", "and", "to", "in", "is", "was", "he", "for", "it", "with", "as", "his", "on",
    "be", "at", "by", "had", "are", "but", "from", "or", "have", "an", "they", "which", "one",
    "you", "were", "her", "all", "she", "there", "would", "their", "we", "him", "been", "has",
    "when", "who", "will", "more", "no", "if", "out", "so", "said", "what", "up", "its", "about",
    "into", "than", "them", "can", "only", "other", "new", "some", "could", "time", "these", "two",
    "may", "then", "do", "first", "any", "my", "now", "such", "like", "our", "over", "man", "me",
    "even", "most", "made", "after", "also", "did", "many", "before", "must", "through", "back",
    "years", "where", "much", "your", "way", "well", "down", "should", "because", "each", "just",
    "those", "people", "how", "too", "little", "state", "good", "very", "make", "world", "still",
    "own", "see", "men", "work", "long", "get", "here", "between", "both", "life", "being",
    "under", "never", "day", "same", "another", "know", "while", "last", "might", "us", "great",
    "old", "year", "off", "come", "since", "against", "go", "came", "right", "used", "take",
    "three", "states", "himself", "few", "house", "use", "during", "without", "again", "place",
    "american", "around", "however", "home", "small", "found", "thought", "went", "say", "part",
    "once", "general", "high", "upon", "school", "every", "does", "got", "united", "left",
    "number", "course", "war", "until", "always", "away", "something", "fact", "though", "water",
    "less", "public", "put", "think", "almost", "hand", "enough", "far", "took", "head", "yet",
    "government", "system", "better", "set", "told", "nothing", "night", "end", "why", "called",
    "value", "eyes", "find", "going", "look", "asked", "later", "knew", "point", "next", "city",
    "give", "group", "business", "toward", "young", "let", "room", "president", "side", "social",
    "present", "given", "several", "order", "national", "second", "possible", "rather", "per",
    "face", "among", "form", "important", "often", "things", "looked", "early", "white", "case",
    "john", "become", "large", "big", "need", "four", "within", "felt", "along", "children", "saw",
    "best", "church", "ever", "least", "power", "development", "light", "thing", "seemed",
    "family", "interest", "want", "members", "mind", "country", "area", "others", "done", "turned",
    "although", "open", "problem", "sense", "service", "certain", "kind", "began", "thus", "help",
    "means", "law", "real", "matter", "line", "half", "court", "community", "period", "front",
    "close", "money", "days", "level", "cost", "field", "story", "mother", "economic", "figure",
    "known", "ground", "report", "music", "voice", "table", "river", "garden", "paper", "window",
    "bridge", "market", "winter", "summer", "morning", "letter",
)
