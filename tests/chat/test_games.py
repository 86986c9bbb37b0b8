"""The salon's verse games (chat/games.py): the rules the site keeps, read from the branch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chat import games


def _message(pk, role, content, provider="", status="complete"):
    return SimpleNamespace(pk=pk, role=role, content=content, provider=provider, status=status)


@pytest.mark.parametrize(("text", "expected"), [
    ("/飞花令 花", ("feihua", "花", 0, ())),
    ("/飞花令月", None),  # no space: not the command
    ("/联句 月夜", ("lianju", "", 0, ())),  # a theme
    ("/联句 秋风吹渭水", ("lianju", "", 5, ("秋风吹渭水",))),  # a first line fixes five characters
    ("/联句", ("lianju", "", 0, ())),
    ("飞花令 花", None),
])
def test_start_commands(text, expected):
    game = games.start_command(text)
    assert (None if game is None else (game.kind, game.char, game.length, game.lines)) == expected


@pytest.mark.parametrize("text", ["/飞花令", "/飞花令 花月", "/飞花令 a"])
def test_a_feihua_ling_needs_one_character(text):
    with pytest.raises(games.GameRuleBroken, match="写一个字作令"):
        games.start_command(text)


@pytest.mark.parametrize(("text", "line"), [
    ("「花间一壶酒」", "花间一壶酒"),
    ("好，我接：“感时花溅泪”。然后呢？", "感时花溅泪"),
    ("人面桃花相映红。\n这是崔护的句子。", "人面桃花相映红"),
])
def test_the_line_of_a_turn(text, line):
    assert games.line_of(text) == line


def test_feihua_rules():
    game = games.Game(games.FEIHUA, char="花").said("花间一壶酒")
    assert games.broken(game, "感时花溅泪") == ""
    assert "没有令字「花」" in games.broken(game, "床前明月光")
    assert "不能重复" in games.broken(game, "花间一壶酒。")  # punctuation does not make it new
    assert "一句诗" in games.broken(game, "花")  # too short to be a line
    assert "一句诗" in games.broken(game, "花" * 20)


def test_lianju_keeps_the_length_of_the_first_line():
    game = games.Game(games.LIANJU)
    assert games.broken(game, "明月出天山") == ""  # the first line sets five
    game = game.said("明月出天山")
    assert games.broken(game, "苍茫云海间") == ""
    assert "每句5字" in games.broken(game, "长风几万里吹度玉门关")


def test_the_game_is_read_from_the_branch_and_ends_with_its_command():
    branch = [
        _message(1, "assistant", "幸会。", provider="greeting"),
        _message(2, "user", "/飞花令 月"),
        _message(3, "assistant", "「举头望明月」"),
        _message(4, "assistant", "「床前明月光」"),
        _message(5, "assistant", "「举头望明月」"),  # a repeat: ruled out, not added
        _message(6, "user", "月落乌啼霜满天"),
    ]
    game, notes = games.game_of(branch)
    assert game.char == "月" and game.lines == ("举头望明月", "床前明月光", "月落乌啼霜满天")
    assert set(notes) == {5} and "不能重复" in notes[5]
    game, _ = games.game_of([*branch, _message(7, "user", "/结束")])
    assert game is None


def test_the_cue_note_is_site_text_with_the_lines_so_far():
    game = games.Game(games.FEIHUA, char="花").said("花间一壶酒")
    note = games.cue_note(game, "杜甫")
    assert "令字为「花」" in note and "轮到杜甫" in note and "「花间一壶酒」" in note
