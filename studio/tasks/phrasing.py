"""How model text is phrased for listeners: hedged when the model is unsure, and by default without people's age
or looks (accessibility trials: describe the scene, not judge the people in it)."""

from __future__ import annotations

import re

# Below this confidence (geometric mean of the caption's token probabilities) the caption is hedged.
UNSURE_BELOW = 0.35
# Below this one the model is guessing; say so plainly instead of offering a likely-wrong description.
GUESSING_BELOW = 0.12

PERSON_NOUNS = (
    "man men woman women boy boys girl girls person people child children kid kids baby babies lady ladies guy guys "
    "gentleman gentlemen teenager teenagers adult adults toddler toddlers"
).split()
AGE_AND_LOOKS = (
    "young old older elderly aged middle-aged teenage little small tiny big large fat obese skinny thin slim "
    "overweight pretty beautiful handsome cute attractive ugly sexy gorgeous lovely hot blonde blond brunette "
    "redheaded bald tall short chubby plump"
).split()

_LOOKS = "|".join(sorted(map(re.escape, AGE_AND_LOOKS), key=len, reverse=True))
_PEOPLE = "|".join(sorted(map(re.escape, PERSON_NOUNS), key=len, reverse=True))
_INTENSIFIERS = "very|really|quite|rather|extremely|so|pretty|fairly|somewhat"
# One or more age/looks words (each maybe after "very", "really"...; joined by commas/"and") before a person noun.
_LOOKS_BEFORE_PERSON = re.compile(
    rf"\b(?:(?:(?:{_INTENSIFIERS})\s+)*(?:{_LOOKS})(?:\s*,\s*|\s+and\s+|\s+))+(?=(?:{_PEOPLE})\b)", re.IGNORECASE
)


def without_age_and_looks(text: str) -> str:
    """Drops age and appearance words that describe a person ("a young woman" -> "a woman").

    Words describing things are kept ("an old building"), and the article is fixed ("an old man" -> "a man").
    """
    stripped = " ".join(_LOOKS_BEFORE_PERSON.sub("", text).split())
    if text[:1].isupper() and stripped:  # "Old man sitting" -> "Man sitting"
        stripped = stripped[0].upper() + stripped[1:]
    return _fix_articles(stripped)


def _fix_articles(text: str) -> str:
    """Matches a/an to the next word after words were removed."""

    def repl(match: re.Match) -> str:
        article, word = match.group(1), match.group(2)
        wants_an = word[0].lower() in "aeiou"
        fixed = ("an" if wants_an else "a") if article.lower() in ("a", "an") else article
        if article[0].isupper():
            fixed = fixed.capitalize()
        return f"{fixed} {word}"

    return re.sub(r"\b(a|an|A|An)\s+(\w+)", repl, text)


def hedged(
    text: str,
    confidence: float,
    not_sure: str = "I'm not sure what this shows.",
    *,
    unsure_below: float = UNSURE_BELOW,
    guessing_below: float = GUESSING_BELOW,
    capitalize: bool = True,
) -> tuple[str, str]:
    """Phrases a description by how sure the model is.

    Args:
        text: The description.
        confidence: In [0, 1] (geometric mean token probability for captions, answer probability for VQA, mean
            character probability for read text).
        not_sure: What to say first when the model is only guessing.
        unsure_below, guessing_below: The model's own levels for "probably" and "not sure" (its confidences are
            calibrated differently: a reader's characters are far more often sure than a caption's words).
        capitalize: Start a sure text with a capital (off for read text, which is said as it is written).

    Returns:
        The phrased text and the level: "sure", "unsure" ("probably ...") or "guessing".
    """
    text = text.strip()
    end = "" if text[-1:] in ".!?" else "."  # the model may have ended its own sentence
    if confidence < guessing_below:
        return f"{not_sure} It might be {text}{end}", "guessing"
    if confidence < unsure_below:
        return f"Probably {text}{end}", "unsure"
    return f"{text[:1].upper() if capitalize else text[:1]}{text[1:]}{end}", "sure"
