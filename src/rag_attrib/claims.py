"""Which answer sentences state something a source could back.

Chat answers carry sentences that claim nothing: "Great question!", "Yes.", "I hope this
helps!", "Let me know if you have other questions." No source backs them, and flagging them
as unsupported is a false alarm that hides the real ones. A sentence is *not a claim* when
every part of it (split at punctuation) is such talk or has no content word; anything else
("Yes, it opened in 1889.", "Sure, the fire began in a bakery.") is a claim and is checked.

English only: in other languages every sentence with a content word is checked as before.
"""

from __future__ import annotations

import functools
import re

from .lexical import content_tokens

__all__ = ["is_claim"]

# Whole parts (between punctuation) that are conversation, not statements about the world.
_TALK = re.compile(
    r"(?:"
    # acknowledgements and interjections
    r"(?:(?:yes|yeah|yep|no|nope|sure|certainly|absolutely|of course|indeed|exactly|right|ok"
    r"|okay|great|good|wow|oh|ah|hi|hello|hey|well|alright|agreed|i agree|i see|got it)\s*)+"
    r"|(?:that|this|it)(?:'s| is) (?:true|correct|right|so|a good point|interesting|cool|great)"
    r"|(?:that|this|it)(?:'s| is) (?:a )?(?:great|good|excellent|interesting|fair) question"
    r"|(?:what an? |an? )?(?:great|good|excellent|interesting|fair) question"
    r"|thanks?(?: you)?(?: (?:so|very) much)?(?: for (?:asking|your question|the question))?"
    r"|you(?:'re| are) welcome|my pleasure|no problem"
    # offers of more help, and wishes
    r"|(?:i )?hope (?:this|that|it) (?:helps|answers your question|clarifies things)"
    r"|(?:i(?:'m| am| would be|'d be) )?(?:happy|glad) to help(?: further| more)?"
    r"|let me know if .+|feel free to .+|(?:please )?(?:do not|don't) hesitate to .+"
    r"|is there anything else .+|if you have (?:any )?(?:other|more|further) questions.*"
    r"|(?:i )?hope you (?:find|found) .+|good luck.*|have a (?:great|good|nice) .+"
    # where the answer comes from, said before it ("Based on the provided context, ...")
    r"|(?:based on|according to|from) (?:the |these |this )?(?:provided |given |retrieved )?"
    r"(?:context|sources?|documents?|passages?|information|articles?|search results)"
    r"(?: (?:provided|given|above|below))?"
    r"|in summary|to summari[sz]e|in short|in conclusion|overall|summary|key points"
    r")",
    re.IGNORECASE,
)
# A lead-in to what follows, when it ends with its colon: "Here is what the sources say:"
_LEAD_IN = re.compile(
    r"(?:here(?:'s| is| are)|below (?:is|are)|the following (?:is|are)|i found) .+",
    re.IGNORECASE,
)
_PARTS = re.compile(r"[^,;:.!?\u2026]+[,;:.!?\u2026]*")


def is_claim(sentence: str, question: str | None = None) -> bool:
    """False when `sentence` only talks to the reader ("Thanks!", "Yes.", "I hope this helps!").

    A claim is any sentence with a content word outside such talk; it gets a verdict. Under a
    question, a reply with no content word of its own ("Yes.", "No, it is not.") answers it
    (the engine reads it with the question), so it is a claim too.
    """
    if question and not content_tokens(sentence):
        return True
    return _is_claim(sentence)


@functools.lru_cache(maxsize=10_000)
def _is_claim(sentence: str) -> bool:
    for match in _PARTS.finditer(sentence):
        part = match.group()
        words = part.strip(" \t\n\"'()[]*_-\u2014\u2013")
        core = words.rstrip(",;:.!?\u2026").strip()
        if not core or not content_tokens(core):
            continue
        if _TALK.fullmatch(core) or (words.endswith(":") and _LEAD_IN.fullmatch(core)):
            continue
        return True
    return False
