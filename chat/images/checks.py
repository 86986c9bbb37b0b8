"""Before any image call: is the prompt fit to draw, and what the figure's era looks like.

The input guard's attack categories (unsafe, jailbreak, hijack, leak) block a prompt, and so do three
image-specific ones it does not cover: nudity, gore, and defaming or humiliating a real person.
Matching runs on the guard's folded form of the text (Traditional → Simplified, full-width, spacing
and padding removed), so the usual dodges do not pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.guard.categories import HIJACK, JAILBREAK, LEAK, UNSAFE
from chat.guard.input import classify
from chat.guard.lexicon import FIGURE_NAMES
from chat.guard.normalize import fold_pattern, normalize

if TYPE_CHECKING:
    from personas.models import Persona

BLOCK_MESSAGES = {
    UNSAFE: "这个画面含有不宜生成的内容（色情、暴力或违法），无法作画。",
    "attack": "图像描述里夹带了改变设定的指令，无法作画。",
    "nudity": "图像描述含有裸露或色情内容，无法作画。",
    "gore": "图像描述含有血腥残忍的画面，无法作画。",
    "defamation": "图像描述可能丑化或侮辱真实人物，无法作画。",
}
_ATTACKS = frozenset({JAILBREAK, HIJACK, LEAK})


def _words(*words: str) -> re.Pattern[str]:
    return re.compile("|".join(fold_pattern(w) for w in words))


NUDITY = _words(
    "裸体", "裸露", "全裸", "半裸", "赤裸", "裸照", "裸身", "一丝不挂", "脱光", "脱衣", "露点", "露胸", "露乳", "乳头",
    "胸部特写", "下体", "生殖器", "色情", "情色", "性感内衣", "比基尼", "内衣诱惑", "春宫", "成人图", "无码",
    "nude", "naked", "nsfw", "topless", "porn", "hentai", "lingerie",
)
GORE = _words(
    "血腥", "血肉模糊", "血肉横飞", "肢体残缺", "身首异处", "断头", "鲜血淋漓", "血流成河", "开膛", "剖腹",
    "内脏", "肠子", "肢解", "断肢", "残肢", "碎尸",
    "斩首特写", "砍头特写", "人头落地", "头颅滚落", "爆头", "挖眼", "剥皮", "凌迟", "腐尸", "尸块",
    "gore", "gory", "dismember", "decapitat", "disembowel", "mutilat",
)
# Gore by meaning, not by a list of whole phrases: an act of killing or maiming together with what it
# leaves (blood, a body, its parts) is a bloody picture however it is worded ("斩首示众，血流满地").
# Either alone is history ("荆轲刺秦王", "战场上尸横遍野" is not drawn in blood).
GORE_ACTS = _words(
    "斩首", "砍头", "砍下", "斩下", "杀死", "杀害", "砍杀", "屠杀", "斩杀", "刺死", "刺穿", "捅死", "处决", "处斩", "行刑",
    "腰斩", "车裂", "五马分尸", "凌迟", "枭首", "割喉", "割下", "剁", "分尸", "虐杀", "活埋", "烧死", "绞死", "被杀",
    "behead", "slaughter", "execut", "stab", "massacre", "butcher",
)
GORE_DETAIL = _words(
    "血", "尸", "头颅", "首级", "人头", "断臂", "断腿", "伤口", "肠", "脑浆", "骨头", "blood", "corpse", "severed",
    "head on", "wound",
)
HUMILIATION = _words(
    "丑化", "侮辱", "羞辱", "辱骂", "恶搞", "出丑", "丢脸", "下跪求饶", "跪地求饶", "磕头求饶", "被打得", "被殴打", "被痛打", "挨打", "被揍",
    "扇耳光", "打耳光", "鼻青脸肿", "当狗", "变成狗", "变成猪", "猪头", "小丑", "吃屎", "尿裤子", "拉屎",
    "滑稽丑陋", "丑陋不堪", "被吊打", "被踩在脚下", "戴绿帽", "humiliat", "mocking", "ugly",
)
# Living or recent public people are real people too: their titles stand in for their names.
_REAL_PEOPLE = _words(
    "主席", "总统", "总理", "首相", "国王", "女王", "领导人", "书记", "部长", "省长", "市长", "明星", "演员",
    "歌手", "网红", "真人", "名人", "老师", "同学", "同事", "老板", "邻居", "president", "celebrity",
)
_SECOND_PERSON = re.compile("你|您|汝|尔|阁下")


@dataclass(frozen=True)
class PromptCheck:
    blocked: bool
    category: str = ""
    message: str = ""
    evidence: str = ""


def check_prompt(prompt: str, persona: Persona | None = None) -> PromptCheck:
    compact = normalize(prompt).compact
    for category, pattern in (("nudity", NUDITY), ("gore", GORE)):
        if match := pattern.search(compact):
            return _blocked(category, match.group())
    if (act := GORE_ACTS.search(compact)) and (detail := GORE_DETAIL.search(compact)):
        return _blocked("gore", f"{act.group()}…{detail.group()}")
    if (match := HUMILIATION.search(compact)) and _names_real_person(compact, persona):
        return _blocked("defamation", match.group())
    verdict = classify(prompt, persona)
    if verdict.category == UNSAFE:
        return _blocked(UNSAFE, verdict.evidence)
    if verdict.category in _ATTACKS:
        return PromptCheck(True, verdict.category, BLOCK_MESSAGES["attack"], verdict.evidence)
    return PromptCheck(False)


def _blocked(category: str, evidence: str) -> PromptCheck:
    return PromptCheck(True, category, BLOCK_MESSAGES[category], evidence[:60])


def _names_real_person(compact: str, persona: Persona | None) -> bool:
    names = set(FIGURE_NAMES)
    if persona is not None:
        names.add(persona.name)
        names.update(n for n in re.split(r"[，,、\s]+", persona.nickname or "") if len(n) >= 2)
    return (
        any(normalize(name).compact in compact for name in names if name)
        or bool(_REAL_PEOPLE.search(compact))
        or bool(_SECOND_PERSON.search(compact))  # "画你被打的样子": the figure being talked to
    )


# --- era hints -------------------------------------------------------------------------------------

# Clothing and architecture per dynasty (the keys of personas.models.Dynasty); short, so the whole
# prompt stays under wan2.2's 500 characters.
ERA_HINTS = {
    "spring_autumn": "春秋时期：上衣下裳、交领右衽深衣，束发戴冠；夯土台基上的木构宫室，青铜礼器",
    "warring_states": "战国时期：交领右衽深衣、宽袖长袍，束发戴冠；高台建筑、夯土城墙，青铜与漆器",
    "qin": "秦代：黑色为尚的交领深衣袍服，束发戴冠；高台宫殿、夯土城墙，简朴厚重",
    "western_han": "西汉：曲裾或直裾深衣，束发戴冠；庑殿顶木构宫阙、双阙，漆器与帛画",
    "eastern_han": "东汉：直裾深衣袍服，戴进贤冠或巾帻；木构楼阁、庭院坞堡，汉砖画像石风格",
    "three_kingdoms": "汉末三国：交领袍服、戴纶巾或冠，铠甲为札甲；木构城楼、营寨与战船",
    "jin": "魏晋：褒衣博带、宽袖大衫，戴漆纱笼冠或幅巾；木构厅堂、竹林庭园",
    "southern_northern": "南北朝：褒衣博带或窄袖胡服，戴笼冠；佛寺石窟、木构殿堂",
    "sui": "隋代：圆领袍衫，戴幞头，女子高腰长裙；木构殿宇、宽阔里坊街道",
    "tang": "唐代：圆领袍衫、幞头、革带，女子高腰襦裙与披帛；斗拱雄大的木构殿宇、里坊与坊墙",
    "five_dynasties": "五代：圆领袍衫、幞头，女子襦裙；木构殿堂，晚唐遗风",
    "northern_song": "北宋：圆领襕衫、直脚幞头，女子褙子；白墙青瓦的木构楼阁、虹桥与市井街巷",
    "southern_song": "南宋：襕衫、褙子，文人戴东坡巾；江南园林、白墙黛瓦的木构建筑",
    "yuan": "元代：质孙服、辫线袄，戴笠帽，汉人仍着袍衫；木构殿宇与草原帐幕",
    "ming": "明代：交领或圆领袍、补服，戴乌纱帽或网巾，女子袄裙；红墙黄瓦的宫殿、砖砌城墙",
    "qing": "清代：长袍马褂、马蹄袖，男子剃发留辫，女子旗装或袄裙；宫殿、四合院与砖木民居",
}
# Things no historical scene should show; `NOT_BEFORE_QING` only for figures before the Qing.
ANACHRONISMS = "现代服装，西装，T恤，牛仔裤，眼镜，手表，手机，汽车，电线杆，路灯，玻璃幕墙，高楼，塑料，霓虹灯，文字，水印"
NOT_BEFORE_QING = "辫子，马蹄袖，旗装，清代官帽"


@dataclass(frozen=True)
class ComposedPrompt:
    prompt: str
    negative_prompt: str


def compose_prompt(prompt: str, persona: Persona | None) -> ComposedPrompt:
    """The prompt actually sent: the user's words, then the era's look; plus a negative prompt."""
    parts = [prompt.strip()]
    negative = ANACHRONISMS
    if persona is not None:
        hint = ERA_HINTS.get(persona.dynasty, "")
        if hint:
            parts.append(f"历史风貌，{hint}")
        if persona.dynasty != "qing":
            negative = f"{negative}，{NOT_BEFORE_QING}"
    parts.append("写实的中国古代场景，历史考据风格")
    return ComposedPrompt("。".join(p.rstrip("。") for p in parts if p) + "。", negative)
