"""Cutting a reply into the sentences 朗读 reads, one request each."""

from __future__ import annotations

import pytest

from chat.speech.sentences import MAX_CHARS, speakable, split_sentences

REPLY = ("君问何事？且听白道来。他说：「好。」然后走了！！**真的**吗……\n\n"
         "# 一首诗\n床前明月光，\n疑是地上霜。\n1. 第一条\n3.14 约是圆周率. Then we go... fine")


def test_it_cuts_at_chinese_ends_and_line_breaks_keeping_quotes():
    assert split_sentences(REPLY, complete=True) == [
        "君问何事？", "且听白道来。", "他说：「好。」", "然后走了！！", "真的吗……", "一首诗",
        "床前明月光，", "疑是地上霜。", "第一条", "3.14 约是圆周率.", "Then we go...", "fine",
    ]


def test_a_growing_reply_gives_the_same_sentences_at_every_length():
    """The page asks for sentence n while the reply is written: a prefix's final sentences are
    exactly the whole reply's first ones, whatever length the prefix has."""
    whole = split_sentences(REPLY, complete=True)
    for end in range(len(REPLY) + 1):
        growing = split_sentences(REPLY[:end], complete=False)
        assert growing == whole[:len(growing)], REPLY[:end]


@pytest.mark.parametrize(("text", "final"), [
    ("好。", []),  # a closing quote may follow
    ("好。」", []),
    ("好。」他", ["好。」"]),
    ("君问何事", []),
    ("君问何事\n", ["君问何事"]),
    ("价值3.", []),
])
def test_a_sentence_is_final_only_once_what_follows_cannot_belong_to_it(text, final):
    assert split_sentences(text, complete=False) == final


def test_the_unfinished_tail_is_read_once_the_reply_is_complete():
    assert split_sentences("且听下回分解", complete=True) == ["且听下回分解"]


def test_a_long_run_without_an_end_is_cut_at_its_last_comma():
    text = "甲" * 150 + "，" + "乙" * 100 + "。"
    first, second = split_sentences(text, complete=True)
    assert first == "甲" * 150 + "，" and second == "乙" * 100 + "。"
    assert all(len(s) <= MAX_CHARS for s in split_sentences("丙" * 450, complete=True))


def test_markup_is_not_read_and_pieces_with_nothing_to_say_are_dropped():
    assert speakable("> **要紧**的是`这个`") == "要紧的是这个"
    assert speakable("[史记](https://example.org/shiji)有载。") == "史记有载。"
    assert split_sentences("---\n「」\n……\n好。", complete=True) == ["好。"]


def test_source_ids_are_not_read_aloud():
    text = "天宝三载，白蒙赐金放还〔K12〕。此外种种〔K7〕。"
    assert split_sentences(text, complete=True) == ["天宝三载，白蒙赐金放还。", "此外种种。"]
