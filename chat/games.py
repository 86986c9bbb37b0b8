"""The salon's two verse games (docs/salon.md): 飞花令 (every line holds the chosen character) and 联句
(the figures continue a poem line by line). The site, not the model, keeps the rules.

Pure and stateless: a game is read from the shown branch (its start command and the lines after it),
so branches, regenerate and a reload all see the same game.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FEIHUA, LIANJU = "feihua", "lianju"
NAMES = {FEIHUA: "飞花令", LIANJU: "联句"}
_START = re.compile(r"^\s*/(飞花令|联句)(?:\s+(.*))?$", re.S)
_END = re.compile(r"^\s*/(?:结束|结束游戏|散席)\s*$")
_HAN = re.compile(r"[\u3400-\u9fff]")
_QUOTED = re.compile(r"[「“『\"]([^」”』\"\n]{2,40})[」”』\"]")
LINE_MIN, LINE_MAX = 4, 16  # Han characters in one line of verse


class GameRuleBroken(ValueError):
    """A user's line the site refuses, with the reason to show."""


@dataclass(frozen=True)
class Game:
    kind: str
    char: str = ""  # 飞花令's character
    length: int = 0  # 联句: characters per line, fixed by the first line (0 until then)
    lines: tuple[str, ...] = ()  # what has been said, as compared: Han characters only

    @property
    def name(self) -> str:
        return NAMES[self.kind]

    def said(self, line: str) -> Game:
        core = han(line)
        return Game(self.kind, self.char, self.length or (len(core) if self.kind == LIANJU else 0),
                    (*self.lines, core))


def han(text: str) -> str:
    return "".join(_HAN.findall(text))


def start_command(text: str) -> Game | None:
    """`/飞花令 花` or `/联句 [theme or first line]` starts a game; GameRuleBroken when unusable."""
    match = _START.match(text)
    if match is None:
        return None
    kind = FEIHUA if match.group(1) == "飞花令" else LIANJU
    argument = (match.group(2) or "").strip()
    if kind == FEIHUA:
        if len(argument) != 1 or not _HAN.fullmatch(argument):
            raise GameRuleBroken("请在 /飞花令 后写一个字作令，例如「/飞花令 月」。")
        return Game(FEIHUA, char=argument)
    game = Game(LIANJU)
    first = line_of(argument)
    # A five- or seven-character line starts the poem; anything else is only its theme.
    return game.said(first) if len(han(first)) in (5, 7) else game


def is_end(text: str) -> bool:
    return _END.match(text) is not None


def line_of(text: str) -> str:
    """The line a turn offers: the first quoted line when there is one (a figure may say a word around
    it), else the first non-empty line, without its closing punctuation."""
    quoted = _QUOTED.search(text)
    line = quoted.group(1) if quoted else next((row for row in text.splitlines() if row.strip()), "")
    return line.strip().strip("，。！？；、,.!?;：: ")


def broken(game: Game, text: str) -> str:
    """Why this turn's line breaks the game's rules ("" when it keeps them)."""
    line = line_of(text)
    core = han(line)
    if not LINE_MIN <= len(core) <= LINE_MAX:
        return f"{game.name}每次只说一句诗（{LINE_MIN}至{LINE_MAX}字）。"
    if game.kind == FEIHUA and game.char not in core:
        return f"这一句没有令字「{game.char}」，不算。"
    if game.kind == LIANJU and game.length and len(core) != game.length:
        return f"联句每句{game.length}字，这一句是{len(core)}字。"
    if core in game.lines:
        return f"「{line}」本局已经有人说过了，不能重复。"
    return ""


def game_of(messages) -> tuple[Game | None, dict[int, str]]:
    """The game running at the end of a branch (None when none is), and the site's note for each
    figure's line that broke the rules, by message id. `messages`: the branch, oldest first."""
    game, notes = None, {}
    for message in messages:
        text = message.content
        if message.role == "user":
            command = text.lstrip().startswith("/")  # a cheap test first: this runs over whole branches
            if command and is_end(text):
                game = None
                continue
            try:
                started = start_command(text) if command else None
            except GameRuleBroken:
                started = None
            if started is not None:
                game = started
            elif game is not None:
                game = game.said(line_of(text))  # the site checked it before it was saved
        elif game is not None and message.provider != "greeting" and message.status == "complete":
            reason = broken(game, text)
            if reason:
                notes[message.pk] = f"（本站裁定：{reason}）"
            else:
                game = game.said(line_of(text))
    return game, notes


def cue_note(game: Game, speaker_name: str) -> str:
    """The site's note for a figure's turn in a game (curator text: no user words in it)."""
    said = "、".join(f"「{line}」" for line in game.lines[-8:]) or "（尚无）"
    if game.kind == FEIHUA:
        return (f"此刻正在行飞花令，令字为「{game.char}」。轮到{speaker_name}：只说一句含「{game.char}」字的诗词，"
                "可以是你读过的前人诗句（须在你所处时代之前已有），也可以是你自己的句子；不要重复本局已说过的句子，"
                f"句子放在「」里，不要解释，也不要替别人接。本局已说过：{said}")
    length = f"每句{game.length}字，" if game.length else "五言或七言，"
    return (f"此刻正在联句：座中各位轮流接续同一首诗。轮到{speaker_name}：接上一句，{length}意思承接上文，"
            f"句子放在「」里，只接一句，不要解释，也不要替别人接。前面已有：{said}")
