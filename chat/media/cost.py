"""What a video will cost, to show before asking for it.

None of the reference documents gives a price. The only figure is Seedance's `usage.completion_tokens`
(108900 in the query example, without the request that produced it). Ark bills video by tokens,
width × height × frames per second × seconds / 1024, at 24 fps; this estimate follows that rule
and converts to yuan only when the site configures a price per million tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

FPS = 24
# Output frames by resolution and aspect ratio (Seedance 1.0's sizes).
SIZES = {
    "480p": {"16:9": (864, 480), "4:3": (736, 544), "1:1": (640, 640), "3:4": (544, 736), "9:16": (480, 864),
             "21:9": (960, 416)},
    "720p": {"16:9": (1248, 704), "4:3": (1120, 832), "1:1": (960, 960), "3:4": (832, 1120), "9:16": (704, 1248),
             "21:9": (1504, 640)},
    "1080p": {"16:9": (1920, 1088), "4:3": (1664, 1248), "1:1": (1440, 1440), "3:4": (1248, 1664),
              "9:16": (1088, 1920), "21:9": (2176, 928)},
}  # fmt: skip


@dataclass(frozen=True)
class VideoEstimate:
    tokens: int
    yuan: float | None  # None when no price is configured

    def label(self) -> str:
        """The line the page shows before the user confirms."""
        text = f"预计消耗约 {self.tokens:,} tokens"
        return text + (f"（约 ¥{self.yuan:.2f}）" if self.yuan is not None else "") + "，以实际扣费为准。"


def estimate_video(duration: int, resolution: str = "720p", aspect_ratio: str = "16:9", *,
                   yuan_per_million: float | None = None) -> VideoEstimate:
    sizes = SIZES.get(resolution.lower(), SIZES["720p"])
    width, height = sizes.get(aspect_ratio, sizes["16:9"])
    tokens = width * height * FPS * max(1, int(duration)) // 1024
    yuan = None if yuan_per_million is None else round(tokens * yuan_per_million / 1_000_000, 2)
    return VideoEstimate(tokens=tokens, yuan=yuan)
