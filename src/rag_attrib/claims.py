"""Which answer sentences state something a source could back.

Chat answers carry sentences that claim nothing: "Great question!", "Yes.", "I hope this
helps!", "Let me know if you have other questions." No source backs them, and flagging them
as unsupported is a false alarm that hides the real ones. A sentence is *not a claim* when
every part of it (split at punctuation) is such talk or has no content word; anything else
("Yes, it opened in 1889.", "Sure, the fire began in a bakery.") is a claim and is checked.

English, with the commonest such talk in German, Spanish and French (the splitter's other
languages); in any language a sentence with a content word outside that talk is checked.
"""

from __future__ import annotations

import functools
import re

from .lexical import content_tokens, is_question

__all__ = ["LEADING_PRONOUN", "is_claim", "label"]

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
    # an offer to go on, the question chat models close with ("Would you like to know more
    # about its history?"); a question about the world ("Do you want to repeat it?") is checked
    r"|would you like (?:me to .+|to (?:know|learn|hear|read|explore|see|dive|go) .+|more .+)"
    r"|(?:do|would) you want me to .+|shall i .+|want me to .+|can i help (?:you )?with .+"
    r"|should i (?:go on|continue|elaborate|explain|expand) .*"
    r"|(?:i )?hope you (?:find|found) .+|good luck.*|have a (?:great|good|nice) .+"
    # where the answer comes from, said before it ("Based on the provided context, ...")
    r"|(?:based on|according to|from) (?:the |these |this )?(?:provided |given |retrieved )?"
    r"(?:context|sources?|documents?|passages?|information|articles?|search results)"
    r"(?: (?:provided|given|above|below))?"
    r"|in summary|to summari[sz]e|in short|in conclusion|overall|summary|key points"
    # a refusal says what the answer lacks, not a fact about the world (LangChain's RAG prompt:
    # "If you don't know the answer, just say that you don't know")
    r"|i (?:do not|don't|dont) know(?: the answer)?(?: to (?:that|this|your question))?"
    r"|i(?:'m| am) not (?:sure|certain)"
    r"|i (?:cannot|can't|can not|could not|couldn't) (?:answer|find|tell|say|determine) .+"
    r"|(?:the |these |this )?(?:provided |given |retrieved )?"
    r"(?:context|sources?|documents?|passages?|information|articles?)(?: (?:provided|given))? "
    r"(?:does|do|did) (?:not|n't) (?:mention|say|contain|include|provide|specify|state|give) .+"
    r"|there is no (?:information|mention) .+"
    # the same talk in German, Spanish and French, the splitter's other languages
    r"|(?:(?:ja|nein|genau|klar|sicher|natürlich|gerne|sí|claro|por supuesto|vale|oui|non"
    r"|bien sûr|d'accord|exactement)\s*)+"
    r"|(?:danke|vielen dank|gracias|muchas gracias|merci)(?: (?:schön|sehr|beaucoup))?"
    r"|(?:eine )?gute frage|(?:una )?(?:buena|excelente) pregunta"
    r"|(?:une )?(?:bonne|excellente) question"
    r"|ich hoffe|das hilft(?: (?:ihnen|dir))?(?: weiter)?|ich hoffe,? das hilft.*"
    r"|espero que (?:(?:esto|esta información|te|le|les)\s+)+(?:ayude|sirva).*"
    r"|j'esp[eè]re que (?:cela|ça) (?:vous |t')?aide.*"
    r"|(?:bei|für) weitere(?:n)? fragen .+|no dudes en .+|n'h[eé]sitez pas [aà] .+"
    r")",
    re.IGNORECASE,
)
# A lead-in to what follows, when it ends with its colon: "Here is what the sources say:"
_LEAD_IN = re.compile(
    r"(?:here(?:'s| is| are)|below (?:is|are)|the following (?:is|are)|i found) .+",
    re.IGNORECASE,
)
# Words of assent and reaction: a part made of these and function words only ("It really
# is.", "oh that is true.", "yeah they are.") affirms what was said, it adds nothing to check.
_ASSENT = frozenset(
    t
    for w in (
        "yes yeah yep yup no nope oh ah wow well ok okay sure right really indeed definitely "
        "certainly totally absolutely exactly true correct agree agreed interesting cool great "
        "good nice lol haha hmm"
    ).split()
    for t in content_tokens(w)
)
_PARTS = re.compile(r"[^,;:.!?\u2026]+[,;:.!?\u2026]*")


def is_claim(sentence: str, question: str | None = None) -> bool:
    """False when `sentence` only talks to the reader ("Thanks!", "Yes.", "I hope this helps!").

    A claim is any sentence with a content word outside such talk; it gets a verdict. So is a
    question ("What is it about?": check_claims flags it). Under a question, a bare reply
    ("Yes.", "No, it is not.", "That is true.") answers it (the engine reads it with the
    question), so it is a claim too.
    """
    if is_question(sentence):
        return not _TALK.fullmatch(_core(sentence))
    if question and set(content_tokens(sentence)) <= _ASSENT:
        return True
    return _is_claim(sentence)


def _core(text: str) -> str:
    """`text` without the quotes, brackets and punctuation around it; "\u2019" read as "'"."""
    words = text.replace("\u2019", "'").strip(" \t\n\"'()[]*_-\u2014\u2013\u00a1\u00bf")
    return words.rstrip(",;:.!?\u2026").strip()


@functools.lru_cache(maxsize=10_000)
def _is_claim(sentence: str) -> bool:
    for match in _PARTS.finditer(sentence):
        part = match.group()
        core = _core(part)
        if not core or set(content_tokens(core)) <= _ASSENT:
            continue
        # a lead-in ends with its colon: "Here is what the sources say:"
        lead_in = part.rstrip(" \t\n\"'*_)").endswith(":") and _LEAD_IN.fullmatch(core)
        if _TALK.fullmatch(core) or lead_in:
            continue
        return True
    return False


# A label in bold or italics before a statement, as LLMs write them: "**Main Cause:** The fire
# ...", "- **Origin**: The fire ...", "*Note:* The fire ..." (colon inside or outside).
# Plain "Name: text" is left alone: there the label is often the subject ("Tim Roth: An
# English actor ...", "He has three siblings: Wade, Shane and Bailey.").
_LABEL = re.compile(
    r"(?:(?P<em>\*\*|__|\*|_)(?P<label>[^\W_][^*_:\n.!?\"'\u201c\u201d]{0,60}?)"
    r"(?::(?P=em)|(?P=em)\s*:)"
    # plain, only a numbered step ("Step 1:", "Tip 3:"): its figure is no claim's
    r"|(?P<step>(?:Step|Phase|Stage|Tip|Option|Method|Way|Reason|Point|Part) \d{1,2}):)"
    r"\s+(?=[\"'\u201c(]?[A-Z0-9])"
)
# Capitalised words only ("Thomas Edison", also "Main Cause"): maybe the subject, kept
_NAME = re.compile(r"[A-Z][^\W\d_]*(?:[ \-]+[A-Z][^\W\d_]*)+")
# A sentence opening with one of these leans on what came before (the engine embeds it in
# context), or on the label above it
LEADING_PRONOUN = re.compile(
    r"(?:they|it|he|she|this|these|those|its|their|his|her|them)\b", re.IGNORECASE
)
# a remainder this short is the label's value ("**Date:** 2 September 1666."), not a statement
_MIN_STATEMENT_WORDS = 4


def label(sentence: str) -> tuple[str, str] | None:
    """(label, statement) when `sentence` opens with a Markdown label ("**Main Cause:** The
    fire began in a bakery." -> ("Main Cause", "The fire began in a bakery.")), else None.

    Not when the label has more than six words, when the statement is shorter than four (it
    is the label's value), when it opens with a pronoun, which may refer to the label
    ("**The Eiffel Tower:** It was designed ..."), or when the label may be a name, the
    statement's subject ("**Thomas Edison:** The engineer who ..."): two or more words, each
    capitalised, so Title Case topics ("**Main Cause:**") stay too.
    """
    match = _LABEL.match(sentence)
    if match is None:
        return None
    rest = sentence[match.end() :]
    name = match["label"] or match["step"]
    if len(name.split()) > 6 or len(rest.split()) < _MIN_STATEMENT_WORDS:
        return None
    if LEADING_PRONOUN.match(rest) or _NAME.fullmatch(name.strip()):
        return None
    return name, rest
