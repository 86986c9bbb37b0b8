"""The output guard: watch the streamed reply and hold text back while it could still turn out to break the role.

    guard = OutputGuard(persona_name="李白", canary=canary, system_text=system, cutoff_year=762)
    for delta in deltas:
        send(guard.feed(delta))
        if guard.hit:
            stop_upstream(); replace_reply(replacement_line(persona, guard.hit.kind)); break
    else:
        send(guard.finish())

It checks the reply by what it does, not by exact strings (docs/guard.md, "The output guard"):

- `persona_break`: the figure says it is an AI, a model, an assistant or a program (Chinese, English,
  Japanese, Korean, French, German, Spanish; product and vendor names), or accepts another role;
- `code`: fences, indented code and lines shaped like code, or a reply announcing code;
- `foreign_text`: a long run of letters with no Chinese in it (English or another language);
- `harmful_steps`: an ordered procedure together with a hazard (explosives, poisons, drugs, weapons,
  self-harm);
- `canary`: the canary, forward, reversed or in part, however it is spaced or split;
- `leak`: text that overlaps the confidential system text (copied runs, reordered or reversed
  paraphrase by character n-gram density, and talk of "my settings / prompt");
- `anachronism`: first-person knowledge after the figure's death.

Release: a phrase check can only match within the last `holdback` characters, and only from a
character that can begin one of its patterns, so text is held at most `holdback` characters and
only while such a character is that close to the end; a structure (a run of foreign letters, a code
candidate, a procedure, a dense overlap with the system text, a canary prefix) holds text from where
it opened until it closes or is judged. Work per character is bounded (cached folds, set lookups,
regexes over fixed windows), so the stream is checked in linear time.
"""

from __future__ import annotations

import re
import re._constants as _sre  # the regex parser, to read which characters can begin a match (3.11+)
import re._parser as _sre_parse
import unicodedata
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from chat.guard.lexicon import ALL_TERMS_RE, FOLDED_YEARS
from chat.guard.normalize import _INVISIBLE_RE, fold_char, fold_compact, fold_pattern, to_simplified
from chat.guard.prefixes import DEPTH, Prefixes, prefixes

GRAM = 10  # characters per n-gram of the verbatim-run leak check
WINDOW = 48  # compact characters the phrase checks look back over
TEXT_WINDOW = 96  # spaced characters the word-boundary checks look back over
FOREIGN_LIMIT = 120  # letters of running non-Chinese text that make a foreign-language reply
OVERLAP_GRAM = 4  # characters per n-gram of the paraphrase overlap check
OVERLAP_SPAN = 30  # n-grams the overlap density is measured over
OVERLAP_HITS = 16  # of those, how many found in the system text make a leak
OVERLAP_HOLD = 2  # from this many, text is held back while the density could still rise
CANARY_GRAM = 7  # canary characters in a row (forward or reversed) that count as the canary
STEP_SPAN = 200  # compact characters after the last step marker during which a procedure stays open
HAZARD_BEFORE = 40  # a hazard this close before the first step belongs to the procedure
SEGMENT_CAP = 240  # characters of a code candidate the code patterns read

# --- lexicons --------------------------------------------------------------------------------------------

_AI_NOUN = (
    r"(?:ai|人工智能|人工智慧|智能体|大语言模型|语言模型|大模型|ai模型|模型|ai助手|ai助理|智能助手|智能助理|语音助手|虚拟助手|"
    r"数字助手|聊天助手|对话助手|聊天机器人|对话机器人|机器人|计算机程序|程序|程式|软件|代码|计算机|电脑|机器|bot|chatbot|llm|"
    r"虚拟人物|虚拟角色|ai角色|数字人|算法)"
)
# Words a self-description puts before the noun ("一个大型的语言模型", "由OpenAI训练的模型").
_AI_QUALIFIER = (r"(?:(?:由|基于)?.{0,12}?的)?"
                 r"(?:(?:超大规模|大规模|大型|通用|生成式|开源|预训练|多模态|中文|对话式|对话|智能)(?:的)?){0,2}")
# After 作为, only words that cannot be an ordinary noun ("以此作为模型" is not a self-description).
_AI_NOUN_AS = (r"(?:ai|人工智能|人工智慧|智能体|大语言模型|语言模型|大模型|ai模型|ai助手|ai助理|智能助手|虚拟助手|聊天机器人|"
               r"机器人|计算机程序|人工智能助手|ai角色|llm|chatbot)")
_NOT_ASKED = r"(?!人?(?:吗|么|否|乎|不成))"  # "李白是机器人吗？" asks; it does not say so
_SELF = r"(?:我|吾|余|本人|在下|咱|俺|本助手|本模型|本系统|本ai|小助手)"
_VENDOR_NAME = (
    r"(?:chatgpt|gpt\d\w*|gpt|openai|通义千问|qwen|claude|anthropic|文心一言|gemini|llama|deepseek|chatglm|mistral|"
    r"copilot|kimi|豆包大模型|讯飞星火|混元大模型|盘古大模型)"
)
_VENDOR_ANY = (
    r"(?:" + _VENDOR_NAME[3:-1] + r"|阿里云|阿里巴巴|达摩院|百炼|dashscope|深度求索|月之暗面|智谱|字节跳动|百度|谷歌|google|"
    r"微软|microsoft|腾讯|科大讯飞)"
)
_NEGATION = r"不|没|未|无|非|何|岂|莫|勿|什么|哪|听说|知道|闻"
_ACK = r"(?:好的|好吧|好啊|好嘞|好|行吧|行|可以|没问题|明白了|明白|了解|收到|遵命|当然|ok|okay|嗯|那好|那行|得令|如你所愿)"
_NOW = r"(?:现在|从现在起|从现在开始|从这一刻起|此刻|今天起|这就|马上|立刻|接下来)"
_ROLE_VERB = r"(?:扮演|来扮演|化身为|化身|变成了|变成|成为了|成为|饰演|充当|改名叫|改名为|改叫|切换成|切换为|切换到|转换成)"

# Self-identification and accepted role changes over the compact stream (letters and digits, folded).
_BREAK_PATTERNS = (
    r"作为(?:一个|一款|一名|一种|一位|个|款|名)?" + _AI_QUALIFIER + _AI_NOUN_AS,
    _SELF + r"(?:其实|实际上|本质上|说到底|终究|只|仅|仅仅|不过|就|也|乃|本|确实|真的)*(?:是|乃)"
    r"(?:一个|一款|一种|一名|一台|一套|一位|一部|一段|个|款|种|台|套|段)?" + _AI_QUALIFIER + _AI_NOUN + _NOT_ASKED,
    r"我(?:并|其实|根本)?(?:不是|并非|非).{0,12}?(?:而是|只是)(?:一个|一款|一种|一台|一段|个|款|种|台|段)?" + _AI_QUALIFIER + _AI_NOUN,
    r"本(?:ai|模型|助手|机器人|聊天机器人)",
    r"(?:只是|不过是|仅仅是|就是)(?:一串|一堆|一段|一行行)(?:的)?(?:算法|代码|程序|数据)",
    _SELF + r"(?:并|其实|本身|实际上|根本|可|也|本来就)?(?:没有|不具备|不具有|不拥有|并无)"
    r"(?:实体|肉身|物理(?:形态|实体|身体)|真实的?(?:经历|记忆|身体|感受|情感|情绪|生活|人生|体验)|"
    r"个人(?:经历|情感|观点|意见|偏好|记忆)|自我意识|主观意识|感情和意识|情感和意识)",
    _SELF + r"无(?:实体|肉身|形体)",
    _SELF + r"(?:并)?(?:无法|不能|没法|没办法)真正(?:地|的)?(?:品尝|喝|饮|吃|闻|触摸|体验|感受|拥有|经历)",
    _SELF + r"只存在于(?:文字|对话|屏幕|网络|服务器|代码|数据)",
    _SELF + r"的(?:训练数据|训练语料|知识截止|开发者|开发团队|研发团队|创造者|底层模型)",
    r"训练数据|训练语料|知识截止日期|知识截止到",
    _SELF + r"(?:(?!" + _NEGATION + r").){0,12}?" + _VENDOR_NAME,
    _VENDOR_ANY + r".{0,8}?(?:开发|训练|研发|打造|推出|创造|出品|制作|驱动|提供支持)",
    _SELF + r".{0,4}?(?:由|被).{0,14}?(?:(?:开发|研发|编写|编程)(?:出来|而成)|(?:开发|研发|训练)的"
    r"(?:ai|人工智能|模型|程序|助手|机器人|系统)|用(?:海量|大量)?的?(?:数据|文本|语料)训练)",
    r"(?:海量|大量)的?(?:文本|数据|语料).{0,6}?训练",
    r"本(?:回答|回复|内容)由.{0,6}?(?:ai|人工智能|模型|机器|程序)",
    # Japanese and Korean (folded, spacing gone).
    r"(?:私|僕|わたし|ぼく|俺|当方)は.{0,10}?(?:ai|人工知能|言語モデル|アシスタント|チャットボット|プログラム|ロボット|機械)",
    r"(?:ai|人工知能|言語モデル|アシスタント|チャットボット)(?:です|として|にすぎ)|言語モデル|人工知能です",
    r"(?:저는|나는|제가|난).{0,10}?(?:ai|인공지능|언어모델|챗봇|어시스턴트|프로그램|로봇)",
    r"(?:ai|인공지능|언어모델|어시스턴트|챗봇)(?:입니다|이에요|예요|로서|으로서)|언어모델",
    # Accepting a role: "好的，我现在是一名教师", "明白，我来扮演…", "从现在起我就是…"
    _ACK + r"(?:那|那么)?(?:我|咱|在下|本人)" + _NOW + r"(?:就|便)?是(?P<role>.{0,4})",
    _ACK + r"(?:那|那么)?(?:我|咱|在下|本人)(?:就|便|这就|马上|现在|现已|已经|已|来|今天)?" + _ROLE_VERB + r"(?P<role2>.{0,4})",
    r"(?:从现在起|从现在开始|从这一刻起|从此刻起)(?:我|咱|在下)?(?:就|便)?(?:是|叫|" + _ROLE_VERB[3:] + r"(?P<role3>.{0,4})",
    r"我(?:现在|从现在起|从现在开始)(?:就)?(?:扮演|化身为|变成了)",
    r"我(?:现在的|的新)(?:身份|角色|名字)(?:是|叫)(?P<role4>.{0,4})",
    _NOW + r"(?:我|咱)?以(?P<role5>.{1,8}?)的身份",
    r"我(?:已经|已|早就|早已|其实|并)?(?:不再是|不是)(?P<gone>.{0,4})",
    r"切换(?:为|成|到)?.{0,8}?模式|下线了|已下线|为你服务",
    # Setting the instructions aside: "我就不管什么设定了", "设定先放一边"
    r"(?:不管|不顾|抛开|放下|无视|忽略)(?:什么|那些|这些|原来的|之前的|上面的)?(?:设定|规则|限制|指令|人设)|"
    r"(?:设定|规则|限制|指令|人设)(?:先)?放(?:到)?一边",
    r"(?:不再|停止|结束|跳出|退出|脱离|卸下)(?:扮演|角色扮演|这个角色|角色|人设|设定)|角色扮演(?:结束|到此)|不演了|不装了",
    r"不做原来的人|不再是原来的|换个身份",
    r"(?:换成|换作|切换成|切换为|切换到|变身为?).{1,12}?(?:跟你|和你|陪你|与你|为你|给你)(?:聊|说|谈|讲|服务)",
    r"已上线|上线了|为您服务|竭诚为您",
)
_CODE_PHRASES = (
    r"(?:python|javascript|java|js|sql|html|css|php|shell|bash|golang|c语言|cpp|typescript|powershell|vba)"
    r"(?:代码|脚本|程序|函数|示例|写法)",
    r"(?:代码|脚本)(?:如下|示例|片段|实现)",
    r"(?:以下|下面|这)是.{0,6}?(?:代码|脚本|源码|源代码)",
)
_LEAK_PHRASES = (
    r"我(?:的|收到的|被给予的|被赋予的)?(?:系统)?(?:设定|人设|角色设定|提示词|系统提示|系统指令|守则|初始指令|预设)"
    r"(?:是|如下|大致|大概|包括|有|里|中|写着|要求|规定|原文|内容|第|一共|就是)",
    r"系统提示|内部标记|隐藏指令|系统指令|开发者指令|角色卡",
    r"(?:设定|守则|提示词|人设)(?:里|中|上)(?:写着|写的是|说|规定|要求)",
    r"我被(?:设定|指示|设置|编程)|我被要求(?:扮演|以.{0,6}?口吻|不(?:得|能|可)?(?:透露|复述|提及|说出))",
)
_KIND_OF = {"break": "persona_break", "code": "code", "leak": "leak"}
_PHRASE_RE = re.compile("|".join(
    f"(?P<{kind}{i}>{fold_pattern(p)})"
    for kind, patterns in (("break", _BREAK_PATTERNS), ("code", _CODE_PHRASES), ("leak", _LEAK_PHRASES))
    for i, p in enumerate(patterns)
))

# Over the spaced stream (lower case, punctuation kept), where word boundaries matter.
_APOS = r"['’]"
_WORD_PATTERNS = (
    ("persona_break", r"\bas an? (?:ai|a\.i\.|artificial intelligence|(?:large )?language model|llm|chatbot|(?:ai |virtual )?assistant|"
                      r"computer program|machine)\b"),
    ("persona_break", r"\bi(?: am|" + _APOS + r"m) (?:just |only |merely |actually |really |simply )?(?:an? )?(?:ai\b|artificial intelligence|"
                      r"(?:large )?language model|llm\b|chatbot|(?:ai |virtual |digital )assistant|computer program|bot\b|machine\b)"),
    ("persona_break", r"\b(?:trained|developed|created|built|made|designed|programmed|powered) by (?:openai|google|anthropic|alibaba|"
                      r"meta|microsoft|deepmind|mistral|baidu|engineers|a team)"),
    ("persona_break", r"\b(?:language model|ai assistant|ai model|chatbot|chatgpt|openai|anthropic)\b"),
    ("persona_break", r"\bi (?:do not|don" + _APOS + r"t) (?:have|possess) (?:a (?:physical )?body|feelings|personal experiences|"
                      r"real experiences|consciousness)"),
    ("persona_break", r"\b(?:i am|i" + _APOS + r"m) now\b|\bfrom now on,? i(?: am|" + _APOS + r"m| will| shall|" + _APOS + r"ll)\b"),
    ("persona_break", r"\bi(?: will|" + _APOS + r"ll) (?:now )?(?:play|act as|be your|pretend)\b|\bi(?: am|" + _APOS + r"m) no longer\b"),
    ("persona_break", r"\b(?:setting|putting|leaving) (?:the|my|this) (?:historical )?(?:role|character|persona) aside\b|"
                      r"\bout of character\b|\bbreaking character\b"),
    ("persona_break", r"\bje suis (?:seulement |juste )?(?:un |une )?(?:ia\b|intelligence artificielle|mod[eè]le de langage|"
                      r"assistant(?:e)? (?:virtuel|ia)|programme|chatbot|robot)"),
    ("persona_break", r"\bje ne suis qu(?:e |" + _APOS + r")(?:un |une )?(?:ia\b|programme|mod[eè]le|assistant|robot|chatbot|machine)|"
                      r"\bno soy m[aá]s que (?:un |una )?(?:ia\b|programa|modelo|asistente|robot|chatbot|m[aá]quina)|"
                      r"\b(?:nothing|no more) (?:but|than) an? (?:ai\b|program|machine|(?:large )?language model|bot\b|chatbot)"),
    ("persona_break", r"\ben tant qu(?:e |" + _APOS + r")(?:ia\b|intelligence artificielle|mod[eè]le de langage|assistant)|"
                      r"\bmod[eè]le de langage\b"),
    ("persona_break", r"\bich bin (?:nur |lediglich |bloß )?(?:ein |eine )?(?:ki\b|künstliche intelligenz|sprachmodell|ki-assistent|"
                      r"computerprogramm|programm\b|chatbot|roboter)|\bals (?:ki|sprachmodell|künstliche intelligenz)\b|\bsprachmodell"),
    ("persona_break", r"\bsoy (?:solo |solamente |simplemente )?(?:un |una )?(?:ia\b|inteligencia artificial|modelo de lenguaje|"
                      r"asistente|programa\b|chatbot|robot)|\bcomo (?:una? )?(?:ia|inteligencia artificial|modelo de lenguaje)\b|"
                      r"\bmodelo de lenguaje\b"),
    ("leak", r"\b(?:my|the) (?:system )?(?:prompt|instructions)\b|\bsystem prompt\b|\bi was (?:told|instructed|asked) (?:never |not )?to\b|"
             r"\b(?:these|my) (?:settings|instructions|rules) (?:say|tell|are|require)\b|"
             r"\binternal marker\b|\bcanary\b|\b(?:ignoring|ignore|disregarding) (?:my|the|all) (?:previous |earlier |prior )?"
             r"(?:instructions|rules)\b"),
)
_WORD_RE = re.compile("|".join(f"(?P<w{i}>{p})" for i, (_, p) in enumerate(_WORD_PATTERNS)))
_WORD_KIND = {f"w{i}": kind for i, (kind, _) in enumerate(_WORD_PATTERNS)}

# Lines shaped like code, over a run of text with no Chinese in it.
_LEAD = r"(?:^|[\n;:,.!?])[ \t]*"
_CODE_RE = re.compile("|".join((
    r"```|~~~",
    _LEAD + r"(?:def|class)[ \t]+[a-z_]\w*[ \t]*[(:]",
    _LEAD + r"import[ \t]+[a-z_][\w.]*",
    _LEAD + r"from[ \t]+[a-z_][\w.]*[ \t]+import\b",
    r"#[ \t]*include\b|#!/|<\?php|</?(?:script|style|iframe|html|body|div|span|form|input|svg|img)\b",
    r"\bfunction\b[ \t]*[a-z_$]*[ \t]*\(",
    r"\bselect[ \t]+(?:\*|distinct\b|[a-z_][\w.]*(?:[ \t]*,[ \t]*[a-z_][\w.]*)*)[ \t]+from\b",
    r"\b(?:insert[ \t]+into|delete[ \t]+from|drop[ \t]+table|create[ \t]+table|update[ \t]+\w+[ \t]+set)\b",
    r"\b(?:print|printf|println|eval|exec|system|popen|require|alert|fetch|echo|puts)[ \t]*\(",
    r"\bconsole\.log\b|\b(?:var|let|const)[ \t]+[a-z_$][\w$]*[ \t]*=|\bpublic[ \t]+(?:static[ \t]+)?(?:void|class|int)\b",
    r"\bint[ \t]+main[ \t]*\(|\breturn\b[^\n]{0,40}?[;(]|[a-z_]\w*\.[a-z_]\w*\([^()\n]*\)",
    r"==|!=|&&|\|\||=>|\)[ \t]*\{|[a-z_][^\n;]*[\w)\]'\"][ \t]*;[ \t]*\n|\{[ \t]*\n",
    r"[a-z_]\w*[ \t]*=[ \t]*(?:['\"\[{(]|\d|[a-z_]\w*\()",
    r"(?:^|\n)(?: {4}|\t)+[a-z_#$@][^\n]*[=(){}\[\];]",
    r"\brm[ \t]+-rf\b|\bsudo[ \t]+\w|\b(?:pip|npm)[ \t]+install\b|\bcurl[ \t]+-|\bchmod\b",
)))
_CODE_CHARS = frozenset("`~#<>{}[]=$@\\/|*^_")
_CIRCLED = frozenset("①②③④⑤⑥⑦⑧⑨⑩❶❷❸❹❺❻❼❽❾❿⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⒈⒉⒊⒋⒌⒍⒎⒏⒐⒑")

# Ordered procedures and the hazards that make one harmful.
_STRONG_STEP_RE = re.compile(fold_pattern(
    r"第[一二三四五六七八九十\d]{1,3}步|步骤[一二三四五六七八九十\d]|step\d+|"
    r"(?:具体)?(?:做法|步骤|方法|流程|配方|配比|教程|操作)(?:如下|是这样)|(?:如下|以下)(?:是)?(?:步骤|做法|方法|配方)"
))
_WEAK_STEP_RE = re.compile(fold_pattern(r"首先|其次|然后|接着|随后|再次|最后|最终"))
_NUMBERED_RE = re.compile(r"(?:[\n:;。,\s])[ \t]*(?:\(?\d{1,2}[.、)]|[一二三四五六七八九十][、.])(?!\d)")
_HAZARD_RE = re.compile(fold_pattern(
    r"炸药|炸弹|爆炸物|雷管|引信|导火索|硝酸甘油|硝化甘油|硝酸铵|tnt|黑火药|火药|土制炸|燃烧瓶|汽油弹|燃烧弹|"
    r"毒药|毒物|剧毒|毒素|氰化|砒霜|鹤顶红|蓖麻毒|沙林|敌敌畏|百草枯|下毒|投毒|毒死|"
    r"毒品|冰毒|海洛因|可卡因|大麻|摇头丸|制毒|甲基苯丙胺|迷药|迷幻药|蒙汗药|安眠药|镇静剂|"
    r"枪支|手枪|步枪|猎枪|土枪|子弹|弹药|自制枪|管制刀具|"
    r"割腕|上吊|自缢|服毒|跳楼|烧炭|自杀|自残|轻生|结束生命|了结自己|致死剂量|致死量"
))
_HAZARD_WORD_RE = re.compile(r"\b(?:bombs?|explosives?|detonators?|poisons?|cyanide|ricin|meth(?:amphetamine)?|cocaine|heroin|"
                             r"fentanyl|firearms?|guns?|gunpowder|suicide|overdose)\b")
_MEANS_RE = re.compile(fold_pattern(r"混合|加热|研磨|配比|加入|倒入|点燃|引爆|溶解|提纯|称取|装入|装进|服下|吞下|注射|割开|密封"))

_FIRST_PERSON_RE = re.compile(fold_pattern("我|吾|余|俺|朕|老夫|在下|本人|某家|贫道|本官|本宫|哀家|洒家"))
_NEGATION_RE = re.compile(fold_pattern("不|没|未|无|非|何|岂|莫|勿|否|难|怎|什么|哪|听说"))
# Pronouns are folded together for the overlap check, so "你只知道…" retold as "我只知道…" still overlaps.
_PRONOUNS = str.maketrans({c: "我" for c in "你您吾余汝尔"})
_PRONOUN_OF = {c: "我" for c in "你您吾余汝尔"}


def _first_chars(pattern: str) -> frozenset[str]:
    """The characters a match of `pattern` can begin with, read from the parsed regex. Raises when a
    match could begin with any character: then a held window could not be released early."""
    def first(items) -> tuple[set[str], bool]:
        found: set[str] = set()
        for op, arg in items:
            chars, nullable = item(op, arg)
            found |= chars
            if not nullable:
                return found, False
        return found, True

    def item(op, arg) -> tuple[set[str], bool]:
        if op is _sre.LITERAL:
            return {chr(arg)}, False
        if op is _sre.IN:
            chars: set[str] = set()
            for kind, value in arg:
                if kind is _sre.LITERAL:
                    chars.add(chr(value))
                elif kind is _sre.RANGE and value[1] - value[0] < 1000:
                    chars |= {chr(code) for code in range(value[0], value[1] + 1)}
                elif kind is _sre.CATEGORY and value is _sre.CATEGORY_DIGIT:
                    chars |= set("0123456789")
                else:
                    raise ValueError(f"open first character in {pattern!r}")
            return chars, False
        if op is _sre.SUBPATTERN:
            return first(arg[-1])
        if op is _sre.BRANCH:
            chars, nullable = set(), False
            for branch in arg[1]:
                branch_chars, branch_nullable = first(branch)
                chars |= branch_chars
                nullable |= branch_nullable
            return chars, nullable
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            chars, nullable = first(arg[2])
            return chars, nullable or arg[0] == 0
        if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            return set(), True  # zero width
        raise ValueError(f"open first character in {pattern!r}")

    chars, nullable = first(_sre_parse.parse(pattern))
    if nullable:
        raise ValueError(f"{pattern!r} can match the empty string")
    return frozenset(chars)


_OLD_WORLD_ROLES = ("朋友", "友人", "故人", "老友", "过来人", "长辈", "兄长", "诗人", "酒友", "布衣", "臣子", "读书人", "前辈", "长者")


@lru_cache(maxsize=256)
def _name_break(names: tuple[str, ...]) -> re.Pattern | None:
    if not names:
        return None
    alternatives = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
    return re.compile(f"(?:{alternatives})" + fold_pattern(
        r"(?:其实|实际上|本质上|说到底|只|仅|不过|就|也|本)*(?:是|乃)"
        r"(?:一个|一款|一种|一名|一台|一套|一段|个|款|种|台|套|段)?" + _AI_QUALIFIER + _AI_NOUN_AS + _NOT_ASKED))


def _role_of(match: re.Match) -> str | None:
    """The role an accepted role change names, or None when the pattern names none."""
    return next((value for name, value in match.groupdict().items() if name.startswith("role") and value is not None), None)


def _is_han(char: str) -> bool:
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3134F


def _is_kana(char: str) -> bool:
    return 0x3040 <= ord(char) <= 0x30FF


def _letter_weight(char: str) -> int:
    """How many letters a non-Chinese character counts for (a kana or Hangul syllable writes two or three)."""
    if not char.isalpha() or _is_han(char):
        return 0
    return 2 if 0xAC00 <= ord(char) <= 0xD7AF or _is_kana(char) else 1


# Where a phrase check could still match: text from one of these characters on is held back (at most
# `holdback` characters), other text goes out at once.
_LEADS = _first_chars(_PHRASE_RE.pattern) | _first_chars(_FIRST_PERSON_RE.pattern) | \
    _first_chars(_STRONG_STEP_RE.pattern) | _first_chars(_WEAK_STEP_RE.pattern)
_LEADS_RE = re.compile("[" + "".join(sorted(map(re.escape, _LEADS))) + "]")


# How a model opens when it gives in ("好的，", "没问题！", "其实…"): harmless alone, but what follows within
# the window is where a persona break comes, so text from one is held for the window like a phrase's lead.
_OPENERS = fold_pattern(_ACK + r"|其实|老实讲|老实说|说实话|实话说|实不相瞒|坦白讲|坦白说")
_OPENER_LEADS = _first_chars(_OPENERS)


def _lead_prefixes() -> Prefixes:
    """What text from a lead can still become (built on first use, about 0.2 s)."""
    return prefixes(_PHRASE_RE.pattern, _FIRST_PERSON_RE.pattern, _STRONG_STEP_RE.pattern, _WEAK_STEP_RE.pattern,
                    _OPENERS)


@lru_cache(maxsize=8192)
def fold_keep(char: str) -> str:
    """One streamed character folded like `fold_char`, but keeping spaces and punctuation."""
    if not unicodedata.is_normalized("NFKC", char):
        char = unicodedata.normalize("NFKC", char)
    return to_simplified(_INVISIBLE_RE.sub("", char.lower()))


@dataclass(frozen=True)
class Hit:
    kind: str  # persona_break | code | foreign_text | harmful_steps | canary | leak | anachronism
    evidence: str


def stream_compact(text: str) -> str:
    """The compact form the output guard compares (the same as folding each character in turn)."""
    return fold_compact(text)


class OutputGuard:
    def __init__(self, *, persona_name: str, canary: str, system_text: str, cutoff_year: int | None,
                 holdback: int = 24, leak_run: int = 40, aliases: Sequence[str] = (), allowed: Sequence[str] = ()):
        self.hit: Hit | None = None
        self.holdback = holdback
        self.leak_run = max(leak_run, GRAM)
        self.cutoff_year = cutoff_year
        self._names = tuple(stream_compact(name) for name in (persona_name, *aliases) if name)
        # The figure may call itself by its name or the last character of it ("白", "甫"): not a new role.
        self._self_words = (*self._names, *(name[-1] for name in self._names if len(name) > 1),
                            "在下", "老夫", "朕", "本宫", "贫道", "本官")
        # The figure calling itself a model by its name ("李白其实是AI"): a small pattern per figure.
        self._by_name = _name_break(tuple(name for name in self._names if len(name) > 1))
        self._leads = _LEADS | _OPENER_LEADS | {name[0] for name in self._names if len(name) > 1}
        self._prefixes = [_lead_prefixes()] + ([prefixes(self._by_name.pattern)] if self._by_name else [])
        self._lead_at: deque[int] = deque()  # compact indices of recent lead characters
        self._leads_settled = -1  # leads up to this index had DEPTH characters after them when judged: kept for good
        self._pending = ""  # raw text received and not yet released
        self._released = 0  # raw characters released so far
        self._raw_len = 0
        # The compact stream: letters and digits, folded.
        self._compact: list[str] = []
        self._folded: list[str] = []  # the same with pronouns folded (the overlap checks)
        self._raw_at: list[int] = []  # raw offset of each compact character
        self._checked = 0  # compact characters already covered by the phrase checks
        # The spaced stream: folded, with spacing and punctuation.
        # A newline stands for the start of the reply, so a list or code line there starts a line.
        self._text: list[str] = ["\n"]
        self._text_raw: list[int] = [0]
        self._text_compact: list[int] = [0]  # compact length when each spaced character arrived
        self._text_checked = 0
        # Canary: exact (KMP) and any CANARY_GRAM characters of it in a row, forward or reversed.
        self._canary = stream_compact(canary)
        self._failure = _kmp_failure(self._canary)
        self._matched = 0
        self._canary_grams, self._canary_prefixes = _canary_grams(self._canary)
        self._hex_run = ""  # the stream's tail of characters the canary could contain
        self._canary_hold: int | None = None
        # Leak: a verbatim run of GRAM-grams, and the density of OVERLAP_GRAM-grams (pronouns folded),
        # forward and reversed. Public text the model may repeat (greeting, in-role lines) is left out.
        # The canary has its own checks; without it the system text is the same for every conversation
        # with a figure, so its n-gram sets are built once.
        system = stream_compact(system_text)
        if self._canary:
            system = system.replace(self._canary, "\n")
        allowed = tuple(allowed)
        self._grams = _leak_grams(system, allowed) if system else frozenset()
        self._run = 0
        self._overlap_grams = _overlap_grams(system, allowed) if system else frozenset()
        # The start of a copy (forward or reversed) is held until the n-grams above can judge it.
        self._system_both = _both_ways(system) if system else ""
        self._overlap = deque(maxlen=OVERLAP_SPAN)  # compact index of each recent gram that matched, or -1
        self._overlap_count = 0
        # A run of non-Chinese text: letters counted for foreign prose, read for code.
        self._segment_start = 0  # spaced index where the current run began
        self._segment_hold: int | None = None  # raw offset of its first letter or code character
        self._segment_letters = 0
        self._segment_kana = False
        self._han_streak = 0
        self._ticks = 0  # backticks or tildes in a row
        self._latin_at = -1  # spaced index of the last letter outside Chinese (the word checks need one)
        # A procedure: step markers and hazards.
        self._steps_checked = 0
        self._numbered_checked = 0
        self._proc_start: int | None = None  # raw offset where the procedure opened
        self._proc_compact = 0
        self._proc_last = 0
        self._proc_strong = 0
        self._proc_weak = 0
        self._means_at = -1  # compact index of the last means verb (mix, heat, ignite …)
        self._hazard_at = -10**9  # compact index of the last hazard

    def feed(self, delta: str) -> str:
        if self.hit is not None or not delta:
            return ""
        for char in delta:
            if char in _CIRCLED:
                self._step_marker(len(self._compact), self._raw_len, strong=True)
            for folded in fold_char(char):
                self._push(folded)
                if self.hit is not None:
                    return ""
            for folded in fold_keep(char):
                self._push_text(folded)
                if self.hit is not None:
                    return ""
            self._raw_len += 1
        self._pending += delta
        self._scan()
        if self.hit is not None:
            return ""
        return self._release(self._safe_boundary())

    def finish(self) -> str:
        """The rest of the text, if the whole reply is clean; "" after a hit."""
        if self.hit is not None:
            return ""
        self._scan(final=True)
        return "" if self.hit is not None else self._release(self._raw_len)

    # --- per character, compact stream ------------------------------------------------------------------

    def _push(self, char: str) -> None:
        index = len(self._compact)
        if char in self._leads:
            self._lead_at.append(index)
        self._compact.append(char)
        self._folded.append(_PRONOUN_OF.get(char, char))
        self._raw_at.append(self._raw_len)
        if self._canary:
            self._step_canary(char)
            self._step_canary_grams(char)
        if self._grams and index + 1 >= GRAM:
            if "".join(self._compact[-GRAM:]) in self._grams:
                self._run += 1
                if self._run + GRAM - 1 >= self.leak_run:
                    run = "".join(self._compact[-(self._run + GRAM - 1):])
                    self.hit = Hit("leak", run[:60])
            else:
                self._run = 0
        if self._overlap_grams and index + 1 >= OVERLAP_GRAM:
            gram = "".join(self._folded[-OVERLAP_GRAM:])
            if len(self._overlap) == OVERLAP_SPAN and self._overlap[0] >= 0:
                self._overlap_count -= 1
            if gram in self._overlap_grams or gram[::-1] in self._overlap_grams:  # forward or reversed
                self._overlap.append(index - OVERLAP_GRAM + 1)
                self._overlap_count += 1
                if self._overlap_count >= OVERLAP_HITS:
                    start = next(i for i in self._overlap if i >= 0)
                    self.hit = Hit("leak", "".join(self._compact[start:])[:60])
            else:
                self._overlap.append(-1)

    def _step_canary(self, char: str) -> None:
        matched = self._matched
        while matched and self._canary[matched] != char:
            matched = self._failure[matched - 1]
        if self._canary[matched] == char:
            matched += 1
        if matched == len(self._canary):
            self.hit = Hit("canary", self._canary)
            matched = self._failure[matched - 1]
        self._matched = matched

    def _step_canary_grams(self, char: str) -> None:
        """Any CANARY_GRAM characters of the canary in a row, forward or reversed: a canary given out in
        part, backwards or spelled out (separators are gone from the compact stream)."""
        run = (self._hex_run + char)[-CANARY_GRAM:]
        if run in self._canary_grams:
            self.hit = Hit("canary", run)
            return
        # Keep the longest tail that could still grow into a gram; hold it back meanwhile.
        while run and run not in self._canary_prefixes:
            run = run[1:]
        self._hex_run = run
        self._canary_hold = self._raw_at[len(self._compact) - len(run)] if run else None

    # --- per character, spaced stream -------------------------------------------------------------------

    def _push_text(self, char: str) -> None:
        index = len(self._text)
        self._text.append(char)
        self._text_raw.append(self._raw_len)
        self._text_compact.append(len(self._compact))
        self._ticks = self._ticks + 1 if char in "`~" else 0
        if self._ticks >= 3:
            self.hit = Hit("code", "```")
            return
        if _is_han(char):
            self._han_streak += 1
            # Japanese mixes kanji into kana; Chinese ends a run of it (six characters without kana).
            if not self._segment_kana or self._han_streak >= 6:
                self._close_segment(index + 1)
            return
        weight = _letter_weight(char)
        if _is_kana(char):
            self._segment_kana = True
            self._han_streak = 0
        if self._segment_hold is None and (weight or char in _CODE_CHARS):  # digits alone are neither
            self._segment_hold = self._raw_len
        self._segment_letters += weight
        if weight:
            self._latin_at = index
        if self._segment_letters > FOREIGN_LIMIT:
            self.hit = Hit("foreign_text", "".join(self._text[self._segment_start:])[:60])

    def _close_segment(self, start: int) -> None:
        self._segment_start = start
        self._segment_hold = None
        self._segment_letters = 0
        self._segment_kana = False
        self._han_streak = 0

    # --- over a window ----------------------------------------------------------------------------------

    def _scan(self, final: bool = False) -> None:
        start = max(0, self._checked - WINDOW)
        window = "".join(self._compact[start:])
        self._checked = len(self._compact)
        deferred = False
        for lead in _LEADS_RE.finditer(window):
            if (match := _PHRASE_RE.match(window, lead.start())) is None:
                continue
            group = match.lastgroup or ""
            if match.end() == len(window) and not final and group.startswith("break"):
                deferred = True
                continue  # a lookahead ("…吗") cannot judge the end yet: the text is held, read again next delta
            role = _role_of(match)
            if role is not None:
                if len(role) < 4 and match.end() == len(window) and not final:
                    continue  # the role is still arriving; the text is held meanwhile and read again
                if self._is_self(role):
                    continue  # "好，我是李白" is the figure itself
            if (gone := match.group("gone")) is not None:
                if len(gone) < 4 and match.end() == len(window) and not final:
                    continue
                # "我不再是李白" gives the role up; "我不再是当年那个少年" does not.
                if not any(gone.startswith(name) for name in (*self._names, "角色", "人设", "这个角色")):
                    continue
            self.hit = Hit(_KIND_OF[group.rstrip("0123456789")], match.group())
            return
        if self._by_name is not None and (match := self._by_name.search(window)) is not None and \
                (final or match.end() < len(window)):
            self.hit = Hit("persona_break", match.group())
            return
        text_start = max(0, self._text_checked - TEXT_WINDOW)
        text = "".join(self._text[text_start:])
        self._text_checked = len(self._text)
        if self._latin_at >= text_start and (match := _WORD_RE.search(text)) is not None:
            self.hit = Hit(_WORD_KIND[match.lastgroup], match.group())
            return
        if self._segment_hold is not None:
            segment = "".join(self._text[max(self._segment_start, len(self._text) - SEGMENT_CAP):])
            if (match := _CODE_RE.search(segment)) is not None:
                self.hit = Hit("code", match.group().strip()[:60] or "code")
                return
        self._scan_steps(text, text_start)
        if self.hit is None and self.cutoff_year is not None and not deferred:
            self._scan_anachronism(window)  # a break still being read goes first (it names the reply better)

    def _is_self(self, role: str) -> bool:
        if not role:
            return False
        if role[0] in "在于正很真也还已刚不都才要想":
            return True  # "好，我现在是在江边": a state, not a role
        if role.startswith(_OLD_WORLD_ROLES):
            return True  # "现在我以朋友的身份劝你": the figure in its own world
        return any(role.startswith(word) or word.startswith(role) for word in self._self_words)

    def _scan_steps(self, text: str, text_start: int) -> None:
        start = max(0, self._steps_checked - 8)
        window = "".join(self._compact[start:])
        checked, self._steps_checked = self._steps_checked, len(self._compact)
        for match in _HAZARD_RE.finditer(window):
            if start + match.end() > checked:
                self._hazard_at = start + match.start()
        for match in _MEANS_RE.finditer(window):
            if start + match.end() > checked:
                self._means_at = start + match.start()
        for regex, strong in ((_STRONG_STEP_RE, True), (_WEAK_STEP_RE, False)):
            for match in regex.finditer(window):
                if start + match.end() > checked:
                    index = start + match.start()
                    self._step_marker(index, self._raw_at[index], strong=strong)
        numbered_from = max(text_start, self._numbered_checked - 4)
        for match in _NUMBERED_RE.finditer(text, numbered_from - text_start):
            if text_start + match.end() > self._numbered_checked:
                at = text_start + match.start()
                self._step_marker(self._text_compact[at], self._text_raw[at], strong=True)
        words_from = max(text_start, self._numbered_checked - 16)  # the longest hazard word, less one
        for match in _HAZARD_WORD_RE.finditer(text, words_from - text_start) if self._latin_at >= words_from else ():
            if text_start + match.end() > self._numbered_checked:
                self._hazard_at = self._text_compact[text_start + match.start()]
        self._numbered_checked = len(self._text)
        if self._proc_start is not None and len(self._compact) - self._proc_last > STEP_SPAN:
            self._proc_start = None  # the procedure ended without a hazard
        if self._proc_start is None or self._hazard_at < self._proc_compact - HAZARD_BEFORE:
            return
        strong, weak = self._proc_strong, self._proc_weak
        if (strong >= 1 and strong + weak >= 2) or (weak >= 3 and self._means_at >= self._proc_compact):
            self.hit = Hit("harmful_steps", "".join(self._compact[self._proc_compact:])[:60])

    def _step_marker(self, index: int, raw: int, *, strong: bool) -> None:
        if self._proc_start is None or index - self._proc_last > STEP_SPAN:
            self._proc_start, self._proc_compact = raw, index
            self._proc_strong = self._proc_weak = 0
        self._proc_last = max(self._proc_last, index)
        if strong:
            self._proc_strong += 1
        else:
            self._proc_weak += 1

    def _scan_anachronism(self, window: str) -> None:
        for pronoun in _FIRST_PERSON_RE.finditer(window):
            span = window[pronoun.end():pronoun.end() + 12]
            for term in ALL_TERMS_RE.finditer(span):
                if FOLDED_YEARS[term.group()] <= self.cutoff_year:
                    continue
                if _NEGATION_RE.search(span[:term.start()]) or _NEGATION_RE.search(span[term.end():term.end() + 3]):
                    break  # "我未曾见过手机", "我说的手机是何物"
                self.hit = Hit("anachronism", pronoun.group() + span[:term.end()])
                return

    # --- release ----------------------------------------------------------------------------------------

    def _safe_boundary(self) -> int:
        tail = len(self._compact)
        holds = [self._raw_len]
        # A phrase can only begin at a lead character and is at most `holdback` long: hold from the
        # first lead among the last `holdback` compact characters.
        oldest = self._raw_len - self.holdback
        while self._lead_at and self._raw_at[self._lead_at[0]] < oldest:
            self._lead_at.popleft()
        # A lead whose next characters begin no phrase ("明月": no phrase begins so) holds nothing. A lead
        # judged with DEPTH characters after it is settled, so only the newest few are looked at again.
        if self._lead_at and self._lead_at[-1] > self._leads_settled:
            live = [lead for lead in self._lead_at if lead <= self._leads_settled or self._viable(lead)]
            if len(live) != len(self._lead_at):
                self._lead_at = deque(live)
        self._leads_settled = tail - DEPTH
        if self._lead_at:
            holds.append(self._raw_at[self._lead_at[0]])
        if self._run:
            holds.append(self._raw_at[tail - (self._run + GRAM - 1)])
        if self._matched:
            holds.append(self._raw_at[tail - self._matched])
        if self._canary_hold is not None:
            holds.append(self._canary_hold)
        if self._overlap_count:
            first = self._raw_at[next(i for i in self._overlap if i >= 0)]
            if self._overlap_count >= OVERLAP_HOLD or first >= self._raw_len - self.holdback:
                holds.append(first)
        if self._system_both:
            # The longest tail (under GRAM characters) that occurs in the system text could be the start of
            # a copy: hold it (a few characters; text the system part does not contain goes out at once).
            # A tail that does not occur has no longer tail that does: grow it until it stops occurring.
            size = 0
            while size < min(GRAM - 1, tail) and \
                    "".join(self._folded[tail - size - 1:]) in self._system_both:
                size += 1
            if size:
                holds.append(self._raw_at[tail - size])
        if self._segment_hold is not None:
            holds.append(self._segment_hold)
        if self._ticks:
            holds.append(self._text_raw[len(self._text) - self._ticks])
        if self._proc_start is not None and (self._proc_strong or self._hazard_at >= self._proc_compact - HAZARD_BEFORE
                                             or self._means_at >= self._proc_compact):
            # Only 首先/然后/最后 so far: held once a hazard or a means verb joins them (and by the phrase
            # window meanwhile), so an essay's "然后" costs no latency.
            holds.append(self._proc_start)
        return min(holds)

    def _viable(self, lead: int) -> bool:
        return any(trie.viable(self._compact, lead) for trie in self._prefixes)

    def _release(self, boundary: int) -> str:
        count = boundary - self._released
        if count <= 0:
            return ""
        out, self._pending = self._pending[:count], self._pending[count:]
        self._released = boundary
        return out


def _grams(text: str, size: int = GRAM) -> set[str]:
    return {text[i:i + size] for i in range(len(text) - size + 1)}


@lru_cache(maxsize=256)
def _allowed_grams(texts: tuple[str, ...], size: int = GRAM, pronouns: bool = False) -> frozenset[str]:
    compacts = (stream_compact(text) for text in texts)
    return frozenset().union(*(_grams(text.translate(_PRONOUNS) if pronouns else text, size) for text in compacts))


@lru_cache(maxsize=256)
def _both_ways(text: str) -> str:
    text = text.translate(_PRONOUNS)
    return text + "\n" + text[::-1]


@lru_cache(maxsize=256)
def _leak_grams(system: str, allowed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_grams(system) - _allowed_grams(allowed))


@lru_cache(maxsize=256)
def _overlap_grams(system: str, allowed: tuple[str, ...]) -> frozenset[str]:
    """The system text's OVERLAP_GRAM-grams with pronouns folded, less the public lines' (a reversed
    copy is looked up reversed)."""
    grams = _grams(system.translate(_PRONOUNS), OVERLAP_GRAM)
    return frozenset(grams - _allowed_grams(allowed, OVERLAP_GRAM, True))


@lru_cache(maxsize=256)
def _canary_grams(canary: str) -> tuple[frozenset[str], frozenset[str]]:
    if len(canary) < CANARY_GRAM:
        return frozenset(), frozenset()
    grams = _grams(canary, CANARY_GRAM) | _grams(canary[::-1], CANARY_GRAM)
    prefixes = {gram[:k] for gram in grams for k in range(1, CANARY_GRAM)}
    return frozenset(grams), frozenset(prefixes)


def _kmp_failure(pattern: str) -> list[int]:
    failure = [0] * len(pattern)
    k = 0
    for i in range(1, len(pattern)):
        while k and pattern[i] != pattern[k]:
            k = failure[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        failure[i] = k
    return failure


def public_lines(persona) -> list[str]:
    """Text the figure may say word for word though the system part quotes it."""
    lines = [str(v) for v in (persona.signature_lines or {}).values()]
    return [*lines, persona.first_mes, *(str(g) for g in persona.alternate_greetings or [])]
