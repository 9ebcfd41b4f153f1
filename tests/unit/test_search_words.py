"""The list's `q` as an indexed word-prefix match (chalicelib/jobs/search.py): pure."""

from __future__ import annotations

from chalicelib.jobs.search import SEARCH_FIELD, search_query, search_words


def test_words_are_lower_cased_split_on_punctuation_and_distinct() -> None:
    assert search_words("Northern Lights: Part II", "northern.lights.fr.vtt") == [
        "northern",
        "lights",
        "part",
        "ii",
        "fr",
        "vtt",
    ]
    assert search_words("northern_lights_2.mp4") == ["northern", "lights", "2", "mp4"]
    assert search_words(None, None) == []
    assert search_words("Éclair Noir") == ["éclair", "noir"]


def test_each_word_of_q_is_an_anchored_prefix_on_the_indexed_field() -> None:
    assert search_query("North") == {SEARCH_FIELD: {"$regex": "^north"}}
    assert search_query("northern li") == {
        "$and": [{SEARCH_FIELD: {"$regex": "^northern"}}, {SEARCH_FIELD: {"$regex": "^li"}}]
    }


def test_regex_characters_in_q_are_literal() -> None:
    assert search_query("a+b") == {"$and": [{SEARCH_FIELD: {"$regex": "^a"}}, {SEARCH_FIELD: {"$regex": "^b"}}]}
    assert search_query("n.1") == {"$and": [{SEARCH_FIELD: {"$regex": "^n"}}, {SEARCH_FIELD: {"$regex": "^1"}}]}


def test_a_q_without_words_filters_nothing() -> None:
    assert search_query(" -- ") == {}
