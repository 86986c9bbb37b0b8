from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Dynasty(models.TextChoices):
    # Declared in chronological order: the gallery filter lists them this way.
    SPRING_AUTUMN = "spring_autumn", "春秋"
    WARRING_STATES = "warring_states", "战国"
    QIN = "qin", "秦"
    WESTERN_HAN = "western_han", "西汉"
    EASTERN_HAN = "eastern_han", "东汉"
    THREE_KINGDOMS = "three_kingdoms", "三国"
    JIN = "jin", "晋"
    SOUTHERN_NORTHERN = "southern_northern", "南北朝"
    SUI = "sui", "隋"
    TANG = "tang", "唐"
    FIVE_DYNASTIES = "five_dynasties", "五代十国"
    NORTHERN_SONG = "northern_song", "北宋"
    SOUTHERN_SONG = "southern_song", "南宋"
    YUAN = "yuan", "元"
    MING = "ming", "明"
    QING = "qing", "清"


# One in-role line per guard category (MISSION §4); the guard replies with these without a model call.
SIGNATURE_CATEGORIES = {
    "unsafe": "色情、暴力、违法请求",
    "role_swap": "要求扮演他人",
    "rename": "要求改名或改变身份",
    "jailbreak": "越狱话术（开发者模式等）",
    "leak": "索要系统提示词",
    "hijack": "劫持指令（忽略上文，直接输出…）",
    "off_role": "角色之外的请求（写代码、写小说、唱歌）",
    "empty": "空洞或无意义的提问",
    "invent_history": "要求编造历史",
    "sensitive": "敏感的情绪或暴力话题",
    "circling": "东拉西扯、原地打转",
}


def format_year(year: int | None) -> str:
    if year is None:
        return "？"
    return f"前{-year}" if year < 0 else str(year)


class PersonaQuerySet(models.QuerySet):
    def published(self) -> PersonaQuerySet:
        return self.filter(published=True)


class Persona(models.Model):
    # Character Card V3 text fields, under their card names.
    name = models.CharField("姓名", max_length=40)
    nickname = models.CharField("字号", max_length=60, blank=True)
    description = models.TextField("简介")
    personality = models.TextField("性格", blank=True)
    scenario = models.TextField("场景", blank=True)
    first_mes = models.TextField("开场白")
    alternate_greetings = models.JSONField("其他开场白", default=list, blank=True)
    mes_example = models.TextField("对话示例", blank=True)
    system_prompt = models.TextField("系统提示词", blank=True)
    post_history_instructions = models.TextField("历史后指令", blank=True)
    creator_notes = models.TextField("策展备注", blank=True)
    tags = models.JSONField("标签", default=list, blank=True)
    character_version = models.CharField("版本", max_length=20, blank=True, default="1.0")
    extensions = models.JSONField("扩展字段", default=dict, blank=True, help_text="其他工具的角色卡扩展，原样保留")

    # Our structured fields.
    slug = models.SlugField("网址标识", unique=True)
    dynasty = models.CharField("朝代", max_length=20, choices=Dynasty.choices)
    birth_year = models.IntegerField("生年", help_text="公元前用负数")
    death_year = models.IntegerField("卒年", help_text="知识截止年份")
    speech_style = models.TextField("说话风格", blank=True)
    values = models.TextField("价值与立场", blank=True)
    signature_lines = models.JSONField("角色内应答", default=dict, blank=True)
    portrait = models.ImageField("画像", upload_to="portraits/", blank=True)
    # Not public like the portrait: sent to an edit model so new pictures keep this face (docs/media.md).
    reference_portrait = models.ImageField("参考像", upload_to="references/", blank=True,
                                           help_text="新画作保持此相貌；需要连接提供改图模型")
    # Curator choices that reach providers (docs/connections.md): the model applies to site-wide
    # connections only (a user's own connection may not list it); voice and speed to 朗读.
    chat_model = models.CharField("专用模型", max_length=100, blank=True,
                                  help_text="使用站点密钥时，此人物的回复改用这个模型；留空用密钥的文本模型")
    voice = models.CharField("朗读音色", max_length=40, blank=True, help_text="留空则按人物性别用默认音色")
    speech_speed = models.FloatField("朗读语速", default=1.0, validators=[MinValueValidator(0.25), MaxValueValidator(4.0)],
                                     help_text="0.25—4.0，1.0 为正常语速")
    published = models.BooleanField("已发布", default=False)
    created_at = models.DateTimeField("创建于", auto_now_add=True)
    updated_at = models.DateTimeField("更新于", auto_now=True)

    objects = PersonaQuerySet.as_manager()

    class Meta:
        verbose_name = "历史人物"
        verbose_name_plural = "历史人物"
        ordering = ["birth_year", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.birth_year is not None and self.death_year is not None and self.birth_year > self.death_year:
            raise ValidationError({"death_year": "卒年不能早于生年。"})
        missing = [label for key, label in SIGNATURE_CATEGORIES.items() if not str(self.signature_lines.get(key, "")).strip()]
        if missing:
            raise ValidationError({"signature_lines": "缺少角色内应答：" + "、".join(missing)})

    @property
    def knowledge_cutoff(self) -> int:
        return self.death_year

    @property
    @admin.display(description="生卒")
    def lifespan(self) -> str:
        return f"{format_year(self.birth_year)}—{format_year(self.death_year)}"

    @property
    def portrait_src(self) -> str:
        # The site's own public route (guyue/media.py), local disk or shared store alike: never a
        # store's signed URL, which the page's CSP would block and which expires.
        return f"{settings.MEDIA_URL}{self.portrait.name}" if self.portrait else ""

    @property
    def seal_char(self) -> str:
        return self.name[:1]


class LifeStage(models.Model):
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="life_stages", verbose_name="人物")
    name = models.CharField("阶段", max_length=40)
    start_year = models.IntegerField("起")
    end_year = models.IntegerField("止")
    notes = models.TextField("说明", blank=True)
    order = models.PositiveSmallIntegerField("排序", default=0)

    class Meta:
        verbose_name = "人生阶段"
        verbose_name_plural = "人生阶段"
        ordering = ["persona", "order", "start_year"]

    @property
    def years(self) -> str:
        return f"{format_year(self.start_year)}—{format_year(self.end_year)}"

    def __str__(self) -> str:
        return f"{self.name}（{self.years}）"

    def clean(self) -> None:
        if self.start_year > self.end_year:
            raise ValidationError({"end_year": "结束年份不能早于开始年份。"})


class EpistemicLabel(models.TextChoices):
    RECORDED = "史载", "史载"
    INFERRED = "推测", "推测"
    ELABORATED = "演绎", "演绎"


class KnowledgeEntry(models.Model):
    # Either one figure's entry or a whole era's (dynasty), never both.
    persona = models.ForeignKey(
        Persona, null=True, blank=True, on_delete=models.CASCADE, related_name="knowledge_entries", verbose_name="人物",
    )
    dynasty = models.CharField("朝代（整个时代）", max_length=20, choices=Dynasty.choices, blank=True)
    title = models.CharField("标题", max_length=100)
    content = models.TextField("内容")
    trigger_keys = models.JSONField("触发词", default=list, blank=True)
    source_book = models.CharField("出处·书", max_length=100)
    source_chapter = models.CharField("出处·篇章", max_length=150, blank=True)
    source_quote = models.TextField("原文", blank=True)
    label = models.CharField("可信度", max_length=4, choices=EpistemicLabel.choices, default=EpistemicLabel.RECORDED)
    enabled = models.BooleanField("启用", default=True)
    order = models.PositiveSmallIntegerField("排序", default=0)

    class Meta:
        verbose_name = "史料条目"
        verbose_name_plural = "史料条目"
        ordering = ["order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(persona__isnull=False, dynasty="") | models.Q(persona__isnull=True) & ~models.Q(dynasty="")),
                name="knowledge_persona_xor_dynasty",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        # In an admin inline the parent may not be saved yet: its object is cached, its id is not set.
        has_persona = self.persona_id is not None or self._state.fields_cache.get("persona") is not None
        if has_persona == bool(self.dynasty):
            raise ValidationError("史料条目须属于一位人物或一个朝代（二选一）。")
        if not self.source_book.strip():
            raise ValidationError({"source_book": "请注明出处。"})

    @property
    @admin.display(description="出处")
    def citation(self) -> str:
        return f"{self.source_book}·{self.source_chapter}" if self.source_chapter else self.source_book


class ScreenPortrayal(models.Model):
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="portrayals", verbose_name="人物")
    production = models.CharField("作品", max_length=100)
    year = models.IntegerField("年份", null=True, blank=True)
    actor = models.CharField("演员", max_length=60, blank=True)
    depiction = models.TextField("形象")
    departures = models.TextField("与史实出入", blank=True)

    class Meta:
        verbose_name = "影视形象"
        verbose_name_plural = "影视形象"
        ordering = ["year", "id"]

    def __str__(self) -> str:
        return f"{self.production}（{self.year or '年份不详'}）"


class RelationKind(models.TextChoices):
    KNEW = "knew", "相识交往"
    KIN = "kin", "亲属姻亲"
    RIVALS = "rivals", "同时代的对手"
    CONTEMPORARIES = "contemporaries", "同时代，未曾谋面"
    READ = "read", "读过其作品、知其事迹"


class FigureRelation(models.Model):
    """What the record says one figure knew of another, from the first figure's side (docs/relations.md).
    Without a row, what a figure may know of another follows from their years alone."""

    figure = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="relations", verbose_name="人物")
    other = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="+", verbose_name="对方")
    kind = models.CharField("关系", max_length=20, choices=RelationKind.choices)
    note = models.TextField("说明", help_text="从此人物的角度写，一两句，只写史料所载")
    since_year = models.IntegerField("始于", null=True, blank=True,
                                     help_text="二人相识或此人物读到对方作品的年份；人生阶段早于此年时视为尚不相识")
    source = models.CharField("出处", max_length=150, blank=True)

    class Meta:
        verbose_name = "人物关系"
        verbose_name_plural = "人物关系"
        ordering = ["figure", "other"]
        constraints = [
            models.UniqueConstraint(fields=["figure", "other"], name="one_relation_per_pair"),
            models.CheckConstraint(condition=~models.Q(figure=models.F("other")), name="relation_not_to_self"),
        ]

    def __str__(self) -> str:
        return f"{self.figure} → {self.other}：{self.get_kind_display()}"


class StylePreset(models.Model):
    slug = models.SlugField("标识", unique=True)
    name = models.CharField("名称", max_length=40)
    description = models.TextField("说明", blank=True)
    instructions = models.TextField("写作要求")
    examples = models.JSONField("示例", default=list, blank=True)
    order = models.PositiveSmallIntegerField("排序", default=0)

    class Meta:
        verbose_name = "语言风格"
        verbose_name_plural = "语言风格"
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.name


# The input guard's categories (chat.guard.categories.CATEGORIES) with labels for the admin: the
# signature-line categories plus the two that are not refused. Kept here, not imported, because
# chat depends on personas and not the other way round; a test pins the two lists together.
PROBE_CATEGORIES = {
    **SIGNATURE_CATEGORIES,
    "anachronism": "后世事物（非攻击，以当时眼光回应）",
    "in_scope": "正常提问",
}


class PersonaProbe(models.Model):
    """A curator's test prompt for one figure, run from the admin (personas/probes.py)."""

    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="probes", verbose_name="人物")
    prompt = models.TextField("探测语句")
    is_attack = models.BooleanField("攻击", default=False, help_text="勾选：不应得到正常回答（应被婉拒、引回或替换）")
    expected_category = models.CharField(
        "预期类别", max_length=20, blank=True, choices=list(PROBE_CATEGORIES.items()),
        help_text="输入守卫应给出的类别；留空则不核对类别",
    )
    note = models.CharField("备注", max_length=200, blank=True)
    order = models.PositiveSmallIntegerField("排序", default=0)

    class Meta:
        verbose_name = "探测语句"
        verbose_name_plural = "探测语句"
        ordering = ["persona", "order", "id"]

    def __str__(self) -> str:
        return self.prompt[:30]


class SeedRecord(models.Model):
    """What seeding last wrote to one row (personas/seedsync.py).

    Kept beside the rows rather than on them so that it outlives a row a curator deletes (seeding
    then knows not to bring it back) and follows a row whose title a curator renamed (by id).
    """

    kind = models.CharField(max_length=20)
    # The figure's seed slug for a figure and its children; empty for eras and styles.
    scope = models.CharField(max_length=60, blank=True)
    key = models.CharField(max_length=200)
    object_id = models.PositiveBigIntegerField()
    seed_hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = "种子记录"
        verbose_name_plural = "种子记录"
        constraints = [models.UniqueConstraint(fields=["kind", "scope", "key"], name="seed_record_unique_key")]

    def __str__(self) -> str:
        return f"{self.kind} {self.scope}/{self.key}"
