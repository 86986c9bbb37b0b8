"""`make lighthouse`: the npm lighthouse CLI in Debian's Chromium against the site served by daphne.

    .venv/bin/python bench/lighthouse.py [--runs N] [--keep DIR]

Serves the app as `make run` does, on a throwaway SQLite database in a temporary directory, creates a
user with a conversation with 李白 (the greeting and six exchanges), logs in through the login form,
and passes the session cookie to lighthouse with --extra-headers. Audits the gallery and that chat
page (lighthouse's default: a throttled mobile profile) and prints, as its last line, one JSON object:
{"pages": {name: {"performance", "accessibility", "transfer_kb", "transfer_kb_fonts"}}}.
transfer_kb counts every response but fonts; transfer_kb_fonts counts everything, font slices included.
Each page is audited three times (--runs N) and the median run by performance is reported.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.live_app import LiveApp  # noqa: E402  (the same daphne harness the browser tests use)

CHROMIUM = "/usr/bin/chromium"
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
USERNAME, PASSWORD = "lighthouse", "Moon-over-river-7"

SETUP = f"""
from accounts.models import User
from chat import services
from personas.models import Persona
user = User.objects.create_user(username="{USERNAME}", password="{PASSWORD}")
conversation = services.conversation_start(owner=user, persona=Persona.objects.get(slug="li-bai"))
exchanges = [
    ("太白兄，近来可好？", "好！好！江上清风，山间明月，取之无禁，用之不竭。君从何处来？"),
    ("我从千年之后来，想听你讲讲长安。", "长安一片月，万户捣衣声。那年供奉翰林，醉草吓蛮书，力士脱靴，贵妃研墨，好不快意！"),
    ("后来为何离开？", "天子呼来不上船，自称臣是酒中仙。朝中多是非，不如放舟五湖，访名山、饮美酒。"),
    ("你最喜欢自己的哪首诗？", "《将进酒》罢！君不见黄河之水天上来，奔流到海不复回。人生得意须尽欢，莫使金樽空对月。"),
    ("杜甫是你的朋友吗？", "子美！我与他同游梁宋，醉眠秋共被，携手日同行。他诗律精深，我不如也。"),
    ("最后一个问题：月亮对你意味着什么？", "举杯邀明月，对影成三人。月是故乡，是知己，也是千古不变的见证。"),
]
for question, answer in exchanges:
    asked = services.message_add_user(conversation=conversation, text=question)
    services.reply_save(conversation=conversation, parent=asked, content=answer, status="complete")
print(conversation.pk)
"""


def login(base: str) -> str:
    """Log in through the form, as a person would, and return the session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(base + "/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": USERNAME,
                                   "password": PASSWORD, "next": "/"}).encode()
    request = urllib.request.Request(base + "/accounts/login/", data=data, headers={"Referer": base + "/accounts/login/"})
    opener.open(request).read()
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    if not session:
        raise SystemExit("lighthouse: logging in failed")
    return session


def audit(url: str, session: str, out: Path) -> dict:
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    command = [
        str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out}",
        "--only-categories=performance,accessibility",
        "--chrome-flags=--headless --no-sandbox --disable-background-networking",
        "--extra-headers=" + json.dumps({"Cookie": f"sessionid={session}"}),
    ]
    # The CLI now and then exits 1 when Chromium's trace ends early on a busy machine: one more try.
    if subprocess.run(command, env=env, timeout=300).returncode != 0:
        subprocess.run(command, env=env, check=True, timeout=300)
    report = json.loads(out.read_text())
    requests = report["audits"]["network-requests"]["details"]["items"]
    total = sum(r.get("transferSize") or 0 for r in requests)
    fonts = sum(r.get("transferSize") or 0 for r in requests if r.get("resourceType") == "Font")
    return {
        "performance": round(report["categories"]["performance"]["score"] * 100),
        "accessibility": round(report["categories"]["accessibility"]["score"] * 100),
        "transfer_kb": round((total - fonts) / 1024, 1),
        "transfer_kb_fonts": round(total / 1024, 1),
        "font_files": sum(1 for r in requests if r.get("resourceType") == "Font"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="audits per page; the median is reported")
    parser.add_argument("--pages", default="gallery,chat", help="which pages to audit (gallery, chat)")
    parser.add_argument("--keep", type=Path, help="keep the lighthouse JSON reports in this directory")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        raise SystemExit("lighthouse: run `npm ci` first (make lighthouse does)")
    work = Path(tempfile.mkdtemp(prefix="guyue-lighthouse-"))
    app = LiveApp(work, "http://127.0.0.1:9/v1")  # no model is called while pages load
    try:
        app.start()
        conversation = app.manage_output("shell", "-c", SETUP).strip().splitlines()[-1]
        session = login(app.url)
        pages = {"gallery": app.url + "/", "chat": f"{app.url}/chat/{conversation}/"}
        results = {}
        for name, url in pages.items():
            if name not in args.pages.split(","):
                continue
            runs = [audit(url, session, work / f"{name}-{i}.json") for i in range(args.runs)]
            runs.sort(key=lambda r: r["performance"])
            results[name] = runs[len(runs) // 2]
            scores = [r["performance"] for r in runs]
            print(f"{name:8} performance {results[name]['performance']:3} (runs {scores}, median {statistics.median(scores)})"
                  f"  accessibility {results[name]['accessibility']:3}"
                  f"  {results[name]['transfer_kb']} KB without fonts, {results[name]['transfer_kb_fonts']} KB with"
                  f" {results[name]['font_files']} font slices", file=sys.stderr)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for i in range(args.runs):
                    shutil.copy(work / f"{name}-{i}.json", args.keep / f"{name}-{i}.json")
    finally:
        app.stop()
        shutil.rmtree(work, ignore_errors=True)
    summary = {name: {k: v for k, v in r.items() if k != "font_files"} for name, r in results.items()}
    print(json.dumps({"pages": summary}, ensure_ascii=False))


if __name__ == "__main__":
    main()
