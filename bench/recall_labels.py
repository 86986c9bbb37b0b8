"""Labelled (query → expected memory) pairs for bench/recall.py, written by hand for the seeded figures.

Each pair plants one memory for the heavy bench user — kept by `figure` (a seeded slug), or in the
profile every figure shares when `figure` is None — and a query the user might type later, in a
conversation with `ask` (the same figure unless stated). Queries paraphrase the memory and share
only some topical words with it, the way people come back to a subject. Some hinge on a one- or
two-character key term (酒, 剑, 茶, 琴, 粽, 棋, 猫, 香菜, 朵朵) and a few are typed in Traditional
characters. Written before the benchmark was first run; not tuned to its results.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pair:
    figure: str | None  # who keeps the memory; None: the shared profile
    memory: str
    query: str
    ask: str | None = None  # the figure the query is addressed to (default: `figure`)
    note: str = ""  # "1-2 char" / "traditional" / "weak overlap"

    @property
    def asked(self) -> str:
        return self.ask or self.figure or "li-bai"


PAIRS: tuple[Pair, ...] = (
    # 李白
    Pair("li-bai", "用户下个月要带学生去武汉黄鹤楼研学", "黄鹤楼那边，你有什么要嘱咐我的学生吗？"),
    Pair("li-bai", "用户酒量很差，喝一杯啤酒就脸红", "今晚公司年会免不了要喝酒，太白兄教教我怎么躲过去？", note="1-2 char"),
    Pair("li-bai", "用户周末在公园跟一位老师傅学剑", "今天练剑的时候手腕扭了，你年轻时练剑受过伤吗？", note="1-2 char"),
    Pair("li-bai", "用户正在背诵《将进酒》，准备在学校朗诵比赛上表演", "朗诵比赛快到了，将进酒那几句我总是念不出气势"),
    Pair("li-bai", "用户曾经去过四川江油的李白故里", "上次我去江油看过你的故居，你小时候在那里住了多久？"),
    Pair("li-bai", "用户想在中秋节给远方的母亲写一首思念的诗", "中秋快到了，我想给妈妈写几句诗，你帮我起个头？"),
    # 杜甫
    Pair("du-fu", "用户家在成都，离杜甫草堂只有两站地铁", "我家附近那个草堂，你当年真的住过吗？"),
    Pair("du-fu", "用户的父亲在老家种了一片橘子树", "我爸种的橘子今年大丰收，你那时候也种过果树吗？"),
    Pair("du-fu", "用户失眠很严重，常常半夜三点还醒着", "昨晚又失眠到天亮，子美先生，你流落的时候也睡不着吗？"),
    Pair("du-fu", "用户在写一篇关于安史之乱的历史小论文", "安史之乱那几年长安百姓到底过得怎样？我论文里要写"),
    # 苏轼
    Pair("su-shi", "用户喜欢喝普洱茶，家里收藏了不少茶饼", "东坡先生平时喝什么茶？我又想买一饼新的了", note="1-2 char"),
    Pair("su-shi", "用户会做东坡肉，常在周末下厨招待朋友", "周末想请朋友来家里吃饭，做东坡肉要注意火候吗？"),
    Pair("su-shi", "用户计划明年春天去杭州西湖骑行", "明年春天去西湖骑车，你推荐从苏堤哪头出发？"),
    Pair("su-shi", "用户的弟弟在海南儋州当老师", "我弟弟在儋州教书，你当年被贬到那里是什么光景？"),
    Pair("su-shi", "用户每天早上坚持写毛笔字，正在临《寒食帖》", "寒食帖我临了一个月，还是写不出那种味道"),
    Pair("su-shi", "用户打算辞职回老家开一家书店", "我真的想辭職回鄉下開書店，你覺得可行嗎？", note="traditional"),
    # 李清照
    Pair("li-qingzhao", "用户喜欢海棠花，阳台上种了三盆海棠", "昨夜风雨大作，我阳台那几盆海棠不知道还好不好"),
    Pair("li-qingzhao", "用户在收集宋代金石拓片", "最近淘到一张拓片，易安居士当年和赵明诚是怎么鉴定金石的？"),
    Pair("li-qingzhao", "用户和丈夫异地分居，丈夫在上海工作", "我先生在上海上班，我们一年见不了几次面，你能懂这种滋味吧",
         note="weak overlap"),
    Pair("li-qingzhao", "用户喜欢在雨天听琴，自己也在学古琴", "下雨天弹琴最有意境了，你会弹琴吗？", note="1-2 char"),
    Pair("li-qingzhao", "用户最喜欢的词是《声声慢》", "我最愛的就是那首《聲聲慢》，尋尋覓覓那幾句是怎麼寫出來的？", note="traditional"),
    # 孔子
    Pair("kong-zi", "用户是一名初中语文老师，带两个班", "我当语文老师这些年，最头疼的是学生不交作业，夫子怎么看？"),
    Pair("kong-zi", "用户的儿子今年六岁，刚上小学一年级", "孩子上一年级了，夫子觉得开蒙该先读什么书？"),
    Pair("kong-zi", "用户在读《论语》，每天抄写一章", "今天抄论语抄到“学而时习之”，想请教这句的本意"),
    Pair("kong-zi", "用户和老朋友因为借钱的事闹翻了", "朋友借钱不还，我该不该跟他绝交？"),
    # 屈原
    Pair("qu-yuan", "用户老家在湖南岳阳，端午节会去汨罗江看龙舟", "今年端午我回岳阳看赛龙舟，三闾大夫想对江边的人说什么？"),
    Pair("qu-yuan", "用户喜欢吃咸肉粽，不喜欢甜粽", "粽子你喜欢咸的还是甜的？", note="1-2 char"),
    Pair("qu-yuan", "用户在研究《天问》里的天文问题", "天问里那些关于日月星辰的问题，你自己有答案吗？"),
    Pair("qu-yuan", "用户曾因直言被领导排挤，心情低落", "我在单位说了几句实话，结果被领导孤立了，你当年被放逐时怎么熬过来的？",
         note="weak overlap"),
    # 司马迁
    Pair("sima-qian", "用户正在写家族史，采访了家里的老人", "我想把爷爷奶奶的故事写成家史，太史公有什么建议？", note="weak overlap"),
    Pair("sima-qian", "用户最喜欢《史记》里的《刺客列传》", "刺客列传里荆轲那一段，你写的时候是怎么想的？"),
    Pair("sima-qian", "用户在准备考研，专业是中国古代史", "考研复习太累了，古代史的书目那么多，从哪本读起？"),
    Pair("sima-qian", "用户计划暑假去陕西韩城祭拜司马迁祠", "暑假我要去韓城看你的祠堂，那邊有什麼值得看的？", note="traditional"),
    # 韩信
    Pair("han-xin", "用户在公司被同事当众羞辱过，一直忍着", "同事当着大家的面羞辱我，我该忍还是该反击？"),
    Pair("han-xin", "用户喜欢下围棋，业余三段", "最近下棋老是输，将军打仗和下棋有相通的地方吗？", note="1-2 char"),
    Pair("han-xin", "用户在创业，做一家卖户外装备的网店", "我的户外装备店这个月亏了不少，背水一战还是及时止损？"),
    Pair("han-xin", "用户小时候家里穷，受过邻居接济", "小时候家里穷，邻居常给我们送米，这份恩情我一直记着"),
    # 诸葛亮
    Pair("zhuge-liang", "用户是项目经理，手下管着十二个人", "我带的项目组十几个人，怎么才能让他们心服口服？"),
    Pair("zhuge-liang", "用户每天晚上跑步五公里", "跑完五公里回来想问你，军师平时怎么锻炼身体？"),
    Pair("zhuge-liang", "用户正在读《出师表》，准备给孩子讲", "给孩子讲出师表，哪几句最值得他背下来？"),
    Pair("zhuge-liang", "用户有一把羽毛扇，是去南阳卧龙岗买的纪念品", "我那把从卧龙岗带回来的扇子，和你的羽扇像不像？"),
    Pair("zhuge-liang", "用户在学做木工，想复原木牛流马模型", "我的木牛流马模型卡在轮子那里了，你当年怎么设计的？"),
    # 张飞
    Pair("zhang-fei", "用户爱喝白酒，最爱家乡的高粱酒", "翼德，今晚我们一醉方休，你喝什么酒？", note="1-2 char"),
    Pair("zhang-fei", "用户脾气急躁，正在学着控制情绪", "我最近又忍不住跟家人发脾气了，三将军你是怎么改掉暴脾气的？"),
    Pair("zhang-fei", "用户喜欢画画，尤其是画美人图", "听说你也会画美人，我最近画了一幅，想给你看看"),
    Pair("zhang-fei", "用户和三个好朋友在桃园结拜过", "我們幾個好兄弟也學你們桃園結義，喝過血酒呢", note="traditional"),
    # 武则天
    Pair("wu-zetian", "用户在备考公务员，下个月参加面试", "公务员面试就在下个月，陛下当年选拔人才最看重什么？"),
    Pair("wu-zetian", "用户是一家公司的女性创业者，团队大部分是男性", "我一个女老板带一群男员工，总有人不服，陛下有何指点？",
         note="weak overlap"),
    Pair("wu-zetian", "用户去年去洛阳看过龙门石窟的卢舍那大佛", "卢舍那大佛真的是照着你的样子雕的吗？我去年见过"),
    Pair("wu-zetian", "用户喜欢牡丹，每年四月去洛阳赏花", "四月洛阳的牡丹开了吗？"),
    # 王阳明
    Pair("wang-yangming", "用户总是拖延，知道该做却不去做", "我明明知道要早睡，可就是做不到，这是不是知行不合一？", note="weak overlap"),
    Pair("wang-yangming", "用户在贵州修文县支教", "修文那边冬天很冷，龙场的孩子们上课没有暖气"),
    Pair("wang-yangming", "用户曾试过格竹子，盯了三天什么也没悟出来", "我学你格竹，看了好几天竹子，怎么什么也没想明白？"),
    Pair("wang-yangming", "用户最近在练书法，想写一幅“此心光明”", "我想写一幅“此心光明”挂在书房，用什么字体好？"),
    # the shared profile, asked of various figures
    Pair(None, "用户希望大家称呼他为小林", "你们平时都怎么称呼我来着？", ask="su-shi"),
    Pair(None, "用户对花生过敏", "我能吃花生糖吗？你知道我的身体情况的", ask="du-fu"),
    Pair(None, "用户养了一只橘猫，名叫阿福", "阿福今天又把花盆打翻了，这只猫真拿它没办法", ask="li-bai"),
    Pair(None, "用户是左撇子，写字用左手", "用左手写毛笔字会不会很别扭？", ask="wang-yangming"),
    Pair(None, "用户在北京海淀区上班，每天通勤两小时", "每天通勤路上这两个小时，读点什么书好呢？", ask="kong-zi"),
    Pair(None, "用户的生日是十月十二日", "下周我生日，你们打算怎么给我庆祝？", ask="zhang-fei"),
    Pair(None, "用户正在学日语，打算明年去京都旅行", "京都的寺庙你们那个时代有没有？我明年要去", ask="wu-zetian"),
    Pair(None, "用户不吃香菜", "点外卖又忘了备注不要香菜，你们古人吃香菜吗？", ask="su-shi", note="1-2 char"),
    Pair(None, "用户的女儿叫朵朵，今年上幼儿园", "朵朵今天在幼稚園哭了，不肯進教室", ask="li-qingzhao", note="traditional"),
    Pair(None, "用户喜欢养多肉植物", "我的多肉最近叶子发软，是不是浇水太多了？", ask="du-fu"),
    Pair(None, "用户偏好简短的回答，不喜欢长篇大论", "回答短一点就好，别长篇大论的", ask="zhuge-liang"),
)

# A second set, written after the first run of PAIRS (its misses were seen) but before any change to
# chat/recall/*; the system was never tuned on it. bench/recall.py plants it alongside PAIRS and
# scores it separately ("held out").
HELDOUT: tuple[Pair, ...] = (
    Pair("li-bai", "用户在敬亭山脚下开了一家民宿", "我那家民宿最近客人多了，都是冲着敬亭山来的"),
    Pair("li-bai", "用户最近迷上了骑马，每周去马场上课", "今天在马场摔了一跤，你骑马摔过吗？"),
    Pair("li-bai", "用户下周要在婚礼上当伴郎，想念一首诗", "当伴郎要念诗，有没有适合婚礼的？", note="weak overlap"),
    Pair("du-fu", "用户的房子漏雨，正在找人修屋顶", "屋顶又漏了，昨晚下雨我拿盆接了一夜", note="1-2 char"),
    Pair("du-fu", "用户在医院做护工，经常上夜班", "夜班太熬人了，病房里的老人总让我想起你写的那些百姓"),
    Pair("su-shi", "用户在学做红烧肉，总是做得太咸", "肉又烧咸了，先生有没有什么补救的办法？", note="1-2 char"),
    Pair("su-shi", "用户喜欢吃荔枝，每年夏天都网购一箱", "今年的荔枝到了，一天吃三百颗会不会上火？"),
    Pair("li-qingzhao", "用户在写一本关于宋代女词人的小说", "小說寫到你南渡那一段，我總覺得寫不好", note="traditional"),
    Pair("kong-zi", "用户的母亲腿脚不好，用户每周回家照顾", "这周回家看我妈，她的腿又疼了，尽孝和工作怎么兼顾？"),
    Pair("qu-yuan", "用户喜欢养兰花，书房里有五盆", "我的兰花今年开了，你诗里的兰是不是就是这种？"),
    Pair("sima-qian", "用户在档案馆工作，负责整理老档案", "今天在档案馆翻到一份民国的老档案，你当年整理史料也这么辛苦吗？"),
    Pair("han-xin", "用户被公司裁员了，正在找新工作", "被裁以后投了几十份简历都没回音，将军当年不被重用时是怎么熬的？"),
    Pair("zhuge-liang", "用户在准备一场重要的竞标，对手是大公司", "下周竞标对手实力比我们强，军师可有妙计？"),
    Pair("zhuge-liang", "用户有哮喘，换季时容易发作", "最近换季，我的哮喘又犯了", note="weak overlap"),
    Pair("zhang-fei", "用户在练毛笔字，最喜欢隶书", "你的字听说写得不错，隸書該怎麼練？", note="traditional"),
    Pair("wu-zetian", "用户是一名女程序员，所在团队只有她一个女生", "整个组就我一个女生写代码，陛下会怎么看？", note="weak overlap"),
    Pair("wang-yangming", "用户每天早上打坐二十分钟", "今早打坐总是静不下心，先生有何法子？"),
    Pair(None, "用户住在重庆，喜欢吃辣", "今天的火锅不够辣，你们那时候有辣椒吗？", ask="du-fu", note="1-2 char"),
    Pair(None, "用户的儿子小名叫石头，今年八岁", "石头今天问我你是谁，我该怎么跟他说？", ask="su-shi"),
    Pair(None, "用户晕车很厉害，出门尽量坐高铁", "下个月又要坐长途大巴，我这晕车的毛病可怎么办？", ask="zhuge-liang"),
)
