"""A text body split into what the sender wrote and what they quoted or signed (mail-parser-reply:
the "On ... wrote:" / "-----Original Message-----" headers of the common clients, signatures,
disclaimers), so the thread view shows the new words and folds the rest."""

import logging
from dataclasses import dataclass

from mailparser_reply import EmailReplyParser

logger = logging.getLogger(__name__)

# The parser's regular expressions run over the whole body: past this many characters a body is
# shown unfolded rather than parsed (a page render must not hang on a pathological message).
FOLD_MAX_CHARS = 100_000


@dataclass(frozen=True)
class FoldedBody:
    latest: str  # the sender's own words
    quoted: str  # quoted replies, signature and disclaimers ("" when there are none)


def body_fold(text: str) -> FoldedBody:
    """`text` as its latest reply and the rest; text the parser cannot split is all "latest"."""
    text = (text or "").replace("\r\n", "\n").strip()
    if not text or len(text) > FOLD_MAX_CHARS:
        return FoldedBody(latest=text, quoted="")
    try:
        parsed = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"]).read(text)
    except Exception:  # a third-party parser over sender-controlled text: never fail the page
        logger.warning("mail: could not split a body into replies", exc_info=True)
        return FoldedBody(latest=text, quoted="")
    if not parsed.replies:
        return FoldedBody(latest=text, quoted="")
    latest = parsed.replies[0].body
    # The parser normalises whitespace (lines stripped); the folded part is the normalised text
    # after the latest reply's own words.
    normalised = parsed.text.strip()
    start = normalised.find(latest) if latest else 0
    if not latest or start < 0:
        return FoldedBody(latest=text, quoted="")
    quoted = normalised[start + len(latest) :].strip()
    return FoldedBody(latest=latest, quoted=quoted)
