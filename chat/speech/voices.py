"""Which voice reads a figure: the curator's choice (Persona.voice), else a default by figure.

The seed has no field for a figure's sex, so the defaults are a table by slug for the seed
figures; any other figure reads in the neutral voice. Names are OpenAI's /audio/speech voices,
which OpenAI-compatible relays accept too.
"""

from __future__ import annotations

VOICES = (
    ("alloy", "alloy（中性，平稳）"),
    ("echo", "echo（男声，清朗）"),
    ("fable", "fable（男声，富于表情）"),
    ("onyx", "onyx（男声，低沉）"),
    ("nova", "nova（女声，明亮）"),
    ("shimmer", "shimmer（女声，柔和）"),
    ("ash", "ash（男声，新音色）"),
    ("coral", "coral（女声，新音色）"),
    ("sage", "sage（女声，沉静，新音色）"),
)
NEUTRAL = "alloy"
DEFAULTS = {
    "li-bai": "fable",  # 飘逸豪放
    "su-shi": "fable",
    "du-fu": "echo",
    "qu-yuan": "echo",
    "sima-qian": "echo",
    "wang-yangming": "echo",
    "zhuge-liang": "echo",
    "kong-zi": "onyx",  # 温厚持重
    "han-xin": "onyx",
    "zhang-fei": "onyx",  # 声若巨雷
    "li-qingzhao": "shimmer",
    "wu-zetian": "nova",
    "lao-zi": "onyx", "zhuang-zi": "fable", "qin-shihuang": "onyx", "xiang-yu": "onyx", "zhang-qian": "echo",
    "zhang-heng": "echo", "cao-cao": "onyx", "wang-xizhi": "fable", "zu-chongzhi": "echo", "tang-taizong": "onyx",
    "xuan-zang": "echo", "li-yu": "fable", "shen-kuo": "echo", "xin-qiji": "onyx", "guo-shoujing": "echo",
    "zheng-he": "onyx", "xu-xiake": "echo", "lin-zexu": "echo",
    "ban-zhao": "sage", "cai-wenji": "shimmer", "xie-daoyun": "nova", "shangguan-waner": "nova",
    "xue-tao": "shimmer", "liang-hongyu": "coral",
}


def voice_for(persona) -> str:
    return persona.voice.strip() or DEFAULTS.get(persona.slug, NEUTRAL)
