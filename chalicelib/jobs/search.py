"""The list's text search `q` over resourceName and filename, as an indexed word-prefix match. Pure.

An unanchored case-insensitive regex (`contains`) cannot use an index: MongoDB reads every document.
Instead each job keeps `searchWords`, the lower-cased words of its resourceName and filename
(written at creation, multikey-indexed), and `q` matches a job when every word of `q` starts one of
its words: `north`, `Northern li` and `lights` find "Northern Lights", `orthern` does not. Each word
becomes an anchored, case-sensitive prefix regex on lower-cased words, which MongoDB (Atlas
included) answers with a bounded index scan; mongomock and mongoeco accept the same query.
"""

from __future__ import annotations

import re
from typing import Any

SEARCH_FIELD = "searchWords"
# Letters and digits; underscores separate words as in file names ("northern_lights.mp4").
WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The lower-cased words of `text` (runs of letters and digits)."""
    return WORD.findall(text.lower())


def search_words(*texts: str | None) -> list[str]:
    """The distinct words of the given texts, in order of first appearance (the stored field)."""
    found: dict[str, None] = {}
    for text in texts:
        found.update(dict.fromkeys(words(text or "")))
    return list(found)


def search_query(q: str) -> dict[str, Any]:
    """The MongoDB filter for `q`: every word of it is the start of a stored word.

    A `q` without any word (only punctuation or spaces) filters nothing."""
    prefixes = [{SEARCH_FIELD: {"$regex": f"^{re.escape(word)}"}} for word in dict.fromkeys(words(q))]
    if not prefixes:
        return {}
    return prefixes[0] if len(prefixes) == 1 else {"$and": prefixes}
