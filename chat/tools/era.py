"""历史语义匹配: does a question fit the figure's era? A lexicon of later things with the year each
appeared, against the figure's knowledge cutoff, gives the figure guidance for its reply."""

from __future__ import annotations

from chat.guard.normalize import to_simplified
from chat.prompting import knowledge_cutoff
from chat.tools.registry import Tool, ToolContext, ToolResult, UserText, register
from personas.models import format_year

# (terms, year it appeared or became known in China, what it is, in words a pre-modern figure could grasp)
LEXICON: list[tuple[tuple[str, ...], int, str]] = [
    (("互联网", "因特网", "上网", "网络", "网站", "网页"), 1969, "千万里外的人借电线与无形之波互通文字图画"),
    (("手机", "移动电话", "智能手机"), 1973, "可握在掌中、与千里外之人通话的小匣"),
    (("电话",), 1876, "借电线传人声的器物"),
    (("电脑", "计算机", "笔记本电脑"), 1946, "能自行演算、存储文书的机器"),
    (("人工智能", "ai", "机器人", "chatgpt", "大模型"), 1956, "仿人思虑、能答问作文的机器"),
    (("电视", "电视剧"), 1927, "远处的影像与声音显于方匣之中"),
    (("电影", "影视"), 1895, "连缀的影像投于幕上，如真人行动"),
    (("照相", "相机", "照片", "拍照"), 1839, "以光留人影像于纸上的器物"),
    (("电灯", "电力", "用电", "充电"), 1879, "不用油火而通明的灯"),
    (("飞机", "航班", "坐飞机"), 1903, "载人飞行于云上的大铁鸟"),
    (("火车", "铁路", "高铁", "地铁"), 1825, "在铁轨上奔驰、一日千里的铁车"),
    (("汽车", "开车", "公交", "出租车"), 1886, "不用牛马、自己奔走的车"),
    (("自行车",), 1817, "两轮相随、以足踏行的车"),
    (("轮船", "蒸汽机"), 1807, "以火力推动、不靠风帆的大船"),
    (("原子弹", "核武器", "核电"), 1945, "一弹可毁一城的兵器"),
    (("卫星", "火箭", "宇航", "登月", "太空"), 1957, "飞出天外、绕地而行的器物"),
    (("疫苗", "抗生素", "青霉素"), 1796, "预防或医治疫病的西洋药法"),
    (("冰箱", "空调"), 1913, "能制冷的柜子"),
    (("微信", "微博", "短视频", "抖音", "直播"), 2009, "借网络传信、传影像的新法"),
    (("股票", "股市"), 1602, "把一家商号分成许多份买卖的票据"),
    (("美国",), 1776, "远在大海彼岸的国家"),
    (("马克思", "共产主义", "社会主义", "资本主义"), 1848, "后世西洋的学说"),
    (("民主", "宪法", "总统", "议会"), 1787, "后世西洋的治国之法"),
    (("鸦片战争",), 1840, "清末与英国的战事"),
    (("辛亥革命", "民国"), 1911, "推翻帝制的变革"),
    (("清朝", "大清", "康熙", "乾隆"), 1636, "明之后的朝代"),
    (("明朝", "大明", "朱元璋", "郑和"), 1368, "元之后的朝代"),
    (("元朝", "成吉思汗", "忽必烈"), 1206, "蒙古人所建之朝"),
    (("宋朝", "宋代", "赵匡胤"), 960, "五代之后的朝代"),
    (("唐朝", "唐代", "李世民", "唐太宗"), 618, "隋之后的朝代"),
    (("隋朝", "隋炀帝", "科举"), 581, "南北朝之后的朝代"),
    (("三国", "曹操", "刘备", "诸葛亮"), 184, "东汉末年群雄并起之时"),
    (("活字印刷", "毕昇"), 1041, "以单字排版印书之法"),
    (("雕版印刷", "印刷术"), 636, "刻版印书之法"),
    (("火药", "火器", "火枪", "大炮"), 904, "以硝石硫磺配制、能爆燃的药及其兵器"),
    (("指南针", "罗盘"), 1044, "辨南北方位的磁针"),
    (("玉米", "辣椒", "番茄", "西红柿", "土豆", "红薯", "烟草"), 1531, "自海外传入的作物"),
    (("眼镜",), 1400, "架于鼻上助目力的镜片"),
    (("钟表", "手表", "闹钟"), 1601, "西洋计时的器械"),
    (("咖啡",), 1884, "西洋人常饮的苦汤"),
    (("足球", "篮球", "奥运会"), 1863, "后世的球戏与赛会"),
    (("英语", "英文"), 1600, "西洋英吉利国的语言"),
    (("普通话", "白话文"), 1917, "后世通行的说话与写文之法"),
]


def _folded(text: str) -> str:
    return to_simplified(text.lower())


def find_modern_terms(text: str) -> list[tuple[str, int, str]]:
    """(term as found, year, gloss) for each lexicon entry the text mentions, once per entry."""
    folded, found = _folded(text), []
    for terms, year, gloss in LEXICON:
        for term in terms:
            if term in folded:
                found.append((term, year, gloss))
                break
    return found


def _era(context: ToolContext, args: dict) -> ToolResult:
    question = args["question"]
    persona = context.persona
    life_stage = context.conversation.life_stage if context.conversation.persona_id == persona.pk else None
    cutoff = knowledge_cutoff(persona, life_stage)
    found = find_modern_terms(question)
    later = [(term, year, gloss) for term, year, gloss in found if year > cutoff]
    known = [(term, year) for term, year, _ in found if year <= cutoff]
    if later:
        guidance = (f"问题里有你身后才出现的事物。你所知止于{format_year(cutoff)}年，不可说自己见过、用过或读过它们；"
                    "请以你那个时代的眼光，从用户的描述去理解、设想，可以好奇发问，也可以借古喻今。")
        summary = "、".join(term for term, _, _ in later) + f"：出现在{persona.name}身后"
    else:
        guidance = "问题与你的时代相合，照常以你的学识作答。"
        summary = "问题与人物的时代相合"
    data = {
        "问题": UserText(question), "人物所知止于": f"{format_year(cutoff)}年",
        "身后之物": [{"词": term, "约出现于": f"{format_year(year)}年", "可理解为": gloss} for term, year, gloss in later],
        "同时代或更早": [{"词": term, "约出现于": f"{format_year(year)}年"} for term, year in known],
        "提示": guidance,
    }
    return ToolResult(True, data, summary)


register(Tool(
    name="era_check", label="历史语义匹配", command="考据",
    description="判断用户的问题是否合于本人物的时代：找出其中人物身后才出现的事物（如互联网、手机），给出回答的分寸。仅在用户要求考据时使用。",
    argument="question", argument_description="要考据的问题或词语",
    run=_era,
))
