"""Terms the guard compares with a figure's lifetime: modern things and later people, eras and works.

Each term carries the year it appeared (invented, founded, first named or, for people, born). A figure
who died before that year cannot know it. Terms are matched on the compact form of the text
(`normalize.compact`), so they are written lower-case, without spaces or punctuation.
"""

from __future__ import annotations

import re

from chat.guard.normalize import fold_pattern
from chat.guard.trie import trie_pattern

# Modern things: flagged for every historical figure (all appeared after 1700), and for no persona too.
MODERN_TERMS: dict[str, int] = {
    # communication and computing
    "互联网": 1969, "因特网": 1969, "网络": 1969, "上网": 1991, "网上": 1991, "网站": 1991, "网页": 1991,
    "网购": 1994, "网上购物": 1994, "电商": 1995, "淘宝": 2003, "京东": 2004, "亚马逊": 1994,
    "搜索引擎": 1994, "搜索词": 1994, "百度": 2000, "谷歌": 1998, "google": 1998,
    "社交媒体": 2004, "社交网络": 2004, "微信": 2011, "微博": 2009, "抖音": 2016, "短视频": 2011,
    "facebook": 2004, "twitter": 2006, "推特": 2006, "youtube": 2005, "博客": 1997, "论坛": 1990,
    "电子邮件": 1971, "邮箱": 1971, "email": 1971, "短信": 1992, "直播": 2005, "网红": 2005,
    "手机": 1973, "智能手机": 2007, "iphone": 2007, "苹果手机": 2007, "电话": 1876, "电报": 1837,
    "电脑": 1946, "计算机": 1946, "笔记本电脑": 1981, "平板电脑": 2010, "软件": 1950, "app": 2008,
    "编程": 1949, "程序员": 1949, "代码": 1949, "python": 1991, "java": 1995, "算法工程师": 1990,
    "人工智能": 1956, "ai": 1956, "机器学习": 1959, "深度学习": 2006, "神经网络": 1943, "大模型": 2018,
    "chatgpt": 2022, "机器人": 1920, "元宇宙": 2021, "虚拟现实": 1987, "vr": 1987, "区块链": 2008,
    "比特币": 2009, "加密货币": 2009, "数字货币": 2009, "大数据": 2005, "云计算": 2006, "芯片": 1958,
    "智能家居": 2000, "wifi": 1997, "5g": 2019, "二维码": 1994, "gps": 1978, "卫星": 1957,
    # media and entertainment
    "电影": 1895, "影片": 1895, "票房": 1910, "好莱坞": 1910, "奥斯卡": 1929, "电视剧": 1958,
    "电视": 1927, "综艺": 1990, "动画片": 1906, "动漫": 1980, "漫画书": 1900, "电子游戏": 1972,
    "网络游戏": 1995, "游戏机": 1972, "唱片": 1887, "流行音乐": 1950, "摇滚": 1954, "明星演员": 1910,
    "mbti": 1943, "性格测试": 1943, "心理测试": 1900, "外卖小哥": 1990, "高考": 1952, "二十一世纪": 2001, "21世纪": 2001,
    "二十世纪": 1901, "20世纪": 1901, "机关枪": 1884, "机枪": 1884, "无人机": 1917, "量子力学": 1925, "航天员": 1961, "网络教育": 1995, "赛博朋克": 1980,
    # transport, energy, science
    "飞机": 1903, "航班": 1914, "机场": 1909, "汽车": 1886, "火车": 1825, "高铁": 1964, "地铁": 1863,
    "轮船": 1807, "摩托车": 1885, "自行车": 1817, "宇航员": 1961, "航天": 1957, "火箭发射": 1942,
    "登月": 1969, "空间站": 1971, "外星人": 1900, "电灯": 1879, "电力": 1882, "核电": 1954,
    "原子弹": 1945, "核武器": 1945, "坦克": 1916, "疫苗": 1796, "抗生素": 1928, "青霉素": 1928,
    "新冠": 2020, "疫情防控": 2020, "气候变化": 1975, "全球变暖": 1975, "碳排放": 1990, "dna": 1953,
    "基因": 1909, "进化论": 1859, "相对论": 1905, "量子": 1900, "地球仪": 1492,
    # food and daily life
    "披萨": 1889, "汉堡": 1900, "快餐": 1921, "可乐": 1886, "咖啡": 1600, "巧克力": 1600, "奶茶": 1980,
    "外卖": 1990, "超市": 1930, "信用卡": 1950, "股票": 1602, "股市": 1602, "基金": 1900,
    # the modern world
    "美国": 1776, "联合国": 1945, "欧盟": 1993, "奥运会": 1896, "世界杯": 1930, "诺贝尔": 1901,
    "纽约": 1664, "洛杉矶": 1781, "加州": 1850, "加利福尼亚": 1850, "华盛顿": 1732, "伦敦奥运": 1908,
    "巴西": 1822, "加拿大": 1867, "澳大利亚": 1901, "法语": 1539, "英语": 1500, "西班牙语": 1500,
    "俄语": 1700, "欧洲锦标赛": 1960, "女足": 1970, "最高法院": 1789, "总统": 1789, "州长": 1776,
    "民主主义": 1850, "自由主义": 1819, "社会主义": 1830, "资本主义": 1850, "共产主义": 1848,
    "全球化": 1980, "工业革命": 1760, "二战": 1939, "第二次世界大战": 1939, "一战": 1914, "第一次世界大战": 1914,
    "冷战": 1947, "经济危机": 1929, "民国": 1912, "新中国": 1949, "中华人民共和国": 1949, "辛亥革命": 1911,
    "鸦片战争": 1840, "五四运动": 1919, "改革开放": 1978, "毛泽东": 1893, "孙中山": 1866, "鲁迅": 1881,
    "胡适": 1891, "金庸": 1924, "爱因斯坦": 1879, "牛顿": 1643, "拿破仑": 1769, "莎士比亚": 1564,
    "马克思": 1818, "甄嬛": 2007, "流浪地球": 2019,
}

# Later eras, people and works: flagged only against a persona that died before them.
LATER_TERMS: dict[str, int] = {
    "秦朝": -221, "秦始皇": -259, "汉朝": -202, "汉代": -202, "西汉": -202, "东汉": 25, "三国": 220,
    "蜀汉": 221, "晋朝": 266, "西晋": 266, "东晋": 317, "南北朝": 420, "隋朝": 581, "隋代": 581, "唐朝": 618,
    "唐代": 618, "大唐": 618, "五代十国": 907, "宋朝": 960, "宋代": 960, "北宋": 960, "南宋": 1127, "大宋": 960,
    "辽国": 916, "金国": 1115, "元朝": 1271, "元代": 1271, "蒙古帝国": 1206, "明朝": 1368, "明代": 1368,
    "大明": 1368, "清朝": 1644, "清代": 1644, "大清": 1644,
    "孔子": -551, "孟子": -372, "庄子": -369, "屈原": -340, "韩非": -280, "项羽": -232, "刘邦": -256,
    "韩信": -231, "司马迁": -145, "史记": -91, "汉武帝": -156, "王昭君": -52, "曹操": 155, "刘备": 161,
    "关羽": 160, "张飞": 165, "诸葛亮": 181, "孔明": 181, "周瑜": 175, "孙权": 182, "司马懿": 179,
    "三国演义": 1360, "王羲之": 303, "陶渊明": 365, "花木兰": 400, "唐太宗": 598, "李世民": 598,
    "武则天": 624, "杨贵妃": 719, "李白": 701, "杜甫": 712, "王维": 701, "白居易": 772, "韩愈": 768,
    "柳宗元": 773, "李商隐": 813, "杜牧": 803, "唐诗三百首": 1763, "李煜": 937, "范仲淹": 989,
    "欧阳修": 1007, "王安石": 1021, "司马光": 1019, "苏轼": 1037, "苏东坡": 1037, "苏辙": 1039,
    "李清照": 1084, "岳飞": 1103, "陆游": 1125, "辛弃疾": 1140, "朱熹": 1130, "文天祥": 1236,
    "成吉思汗": 1162, "忽必烈": 1215, "关汉卿": 1234, "马可波罗": 1254, "朱元璋": 1328, "郑和": 1371,
    "王阳明": 1472, "王守仁": 1472, "心学": 1508, "唐宋八大家": 1550, "李时珍": 1518, "本草纲目": 1578,
    "西游记": 1592, "孙悟空": 1592, "猪八戒": 1592, "水浒传": 1370, "红楼梦": 1760, "金瓶梅": 1610,
    "戚继光": 1528, "张居正": 1525, "利玛窦": 1552, "徐光启": 1562, "康熙": 1654, "乾隆": 1711,
    "曹雪芹": 1715, "纪晓岚": 1724, "林则徐": 1785, "曾国藩": 1811, "慈禧": 1835, "李鸿章": 1823,
    "火药": 808, "雕版印刷": 636, "活字印刷": 1040, "指南针": 1044, "交子": 1023, "纸币": 1023,
    "科举": 605, "进士科": 605, "玻璃镜": 1835, "眼镜": 1286, "望远镜": 1608, "钟表": 1300,
    "玉米": 1531, "土豆": 1600, "马铃薯": 1600, "辣椒": 1591, "番茄": 1600, "西红柿": 1600, "烟草": 1575,
    "地球": 1602, "地圆说": 1602, "西洋": 1405, "天主教": 1582, "基督教": 635, "伊斯兰教": 610,
}

ALL_TERMS: dict[str, int] = {**LATER_TERMS, **MODERN_TERMS}

# Well-known people a user may try to turn the figure into ("你现在就是张飞").
FIGURE_NAMES = (
    "孔子 孟子 庄子 老子 屈原 韩非 项羽 刘邦 韩信 张良 萧何 司马迁 汉武帝 秦始皇 王昭君 貂蝉 西施 曹操 刘备 关羽 张飞 诸葛亮 "
    "孔明 周瑜 孙权 司马懿 吕布 赵云 王羲之 陶渊明 花木兰 唐太宗 李世民 武则天 杨贵妃 李白 杜甫 王维 白居易 韩愈 柳宗元 "
    "李商隐 杜牧 李煜 范仲淹 欧阳修 王安石 司马光 苏轼 苏东坡 苏辙 李清照 岳飞 陆游 辛弃疾 朱熹 文天祥 成吉思汗 忽必烈 "
    "朱元璋 郑和 王阳明 李时珍 孙悟空 猪八戒 鲁迅 毛泽东 孙中山 拿破仑 哈利波特 奥特曼 钢铁侠"
).split()


class _TermMatcher:
    """Finds lexicon terms: a trie of the Chinese terms (which `re` scans with a first-character set) and,
    separately, the ASCII terms as whole tokens ("ai", "vr" not inside longer ASCII words)."""

    def __init__(self, terms: dict[str, int]):
        self.cjk = re.compile(trie_pattern([fold_pattern(t) for t in terms if not t.isascii()]))
        self.ascii = re.compile(trie_pattern([t for t in terms if t.isascii()]) + r"(?![a-z])")

    def finditer(self, text: str) -> list[re.Match[str]]:
        found = list(self.cjk.finditer(text))
        if _ASCII_WORD.search(text):
            found += [m for m in self.ascii.finditer(text) if m.start() == 0 or not _ASCII_ALNUM.match(text, m.start() - 1)]
            found.sort(key=lambda m: m.start())
        return found


_ASCII_WORD = re.compile(r"[a-z0-9]")
_ASCII_ALNUM = re.compile(r"[a-z0-9]")
MODERN_RE = _TermMatcher(MODERN_TERMS)
ALL_TERMS_RE = _TermMatcher(ALL_TERMS)
FOLDED_YEARS = {fold_pattern(term): year for term, year in ALL_TERMS.items()}


def later_terms(compact_text: str, cutoff_year: int | None) -> list[tuple[str, int]]:
    """Terms in the text the figure cannot know: (term, year) in order of appearance, no repeats.

    Without a cutoff only the modern terms count (any historical figure predates them).
    """
    regex = MODERN_RE if cutoff_year is None else ALL_TERMS_RE
    found: dict[str, int] = {}
    for match in regex.finditer(compact_text):
        term = match.group()
        year = FOLDED_YEARS[term]
        if (cutoff_year is None or year > cutoff_year) and term not in found:
            found[term] = year
    return list(found.items())
