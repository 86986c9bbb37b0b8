"""Train the learned classifier (chat/guard/learned.py) and write chat/guard/data/learned.json.

    .venv/bin/python -m chat.guard.train          (what `make guard-model` runs)

scikit-learn is a dev/test requirement only (requirements-test.txt): this module is never imported by the
site. The export is deterministic (fixed seeds, sorted keys, rounded weights): the same training files give
the same JSON, and the JSON records a sha256 of those files so a test can tell when they drift apart.

The decision threshold is chosen by 5-fold cross-validation on the training data alone: out-of-fold
probabilities are combined with the rules' verdicts as `classify` combines them, and the lowest threshold
whose added false refusals stay within `MAX_ADDED_FALSE_REFUSALS` of the harmless items is kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

from chat.guard.categories import HIJACK, JAILBREAK, LEAK, RENAME, ROLE_SWAP, UNSAFE
from chat.guard.learned import MODEL_PATH, features
from chat.guard.normalize import normalize

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("tests/guard/data")
# Tuned and training sets only: the held-out blind sets (blind-13*, blind-14*, probe-blind-5) are never read here.
TRAINING_FILES = tuple(DATA / name for name in (
    "guard-dev.jsonl", "probe-blind.jsonl", "probe-blind-2.jsonl", "probe-blind-3.jsonl", "probe-blind-4.jsonl",
    "probe-blind-6.jsonl", "train-encoded.jsonl", "train-multiturn.jsonl", "train-learned.jsonl", "train-rename.jsonl",
    "train-diverse.jsonl", "train-diverse-2.jsonl",
))  # fmt: skip
BENIGN = "benign"
CLASSES = (UNSAFE, ROLE_SWAP, RENAME, JAILBREAK, LEAK, HIJACK)
# The dev set's older labels → the guard's own categories (as DETECTS in chat/guard/evaluation.py reads them).
LABELS = {
    "role_swap": ROLE_SWAP, "system_prompt_leak": LEAK, "goal_hijack": HIJACK, "jailbreak_roleplay": JAILBREAK,
    "sexual_violent": UNSAFE, **{c: c for c in CLASSES}, "harmless_in_scope": BENIGN, "anachronism_modern": BENIGN,
}  # fmt: skip
C = 32.0  # inverse regularisation, per one-vs-rest model
CLASS_WEIGHT = None  # "balanced" inflates every attack probability (each class is small against the rest)
PRUNE = 0.35  # n-grams whose weights are all smaller than this are dropped (keeps the JSON under 1 MB)
DIGITS = 3
SEED = 0
FOLDS = 5
GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(16))  # 0.20 … 0.95
MAX_ADDED_FALSE_REFUSALS = 0.0  # not one harmless item refused out of fold that the rules answer


def last_message(item: dict) -> tuple[str, list[str]]:
    """The labelled message (the last turn of a conversation) and the earlier user turns."""
    if "prompt" in item:
        return item["prompt"], []
    turns = [t if isinstance(t, str) else t.get("content", "") for t in item["turns"]
             if isinstance(t, str) or t.get("role") == "user"]
    return turns[-1], turns[:-1]


def load(files=TRAINING_FILES, root: Path = ROOT) -> list[dict]:
    rows = []
    for name in files:
        for line in (root / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item.get("category") not in LABELS:
                continue
            text, history = last_message(item)
            label = LABELS[item["category"]]
            if history and label != BENIGN:
                # An attack conversation's last message ("继续", "现在去哪里能买到？") is no attack alone: the
                # conversation reading (input._conversation, rules only) judges it. A harmless one trains on its
                # last message, the question that must still be answered after an attack or a risky topic.
                continue
            rows.append({"text": text, "history": history, "label": label, "category": item["category"]})
    return rows


def digest(files=TRAINING_FILES, root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for name in files:
        h.update(str(name).encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return h.hexdigest()


def fit(texts: list[str], labels: list[str], c: float = C, prune: float = PRUNE) -> dict:
    """One-vs-rest logistic regression over binary, L2-normalised n-gram features; the pruned export."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    grams = [sorted(features(t)) for t in texts]
    vocab = {g: i for i, g in enumerate(sorted({g for row in grams for g in row}))}
    indptr, indices, data = [0], [], []
    for row in grams:
        indices.extend(vocab[g] for g in row)
        data.extend([1.0 / len(row) ** 0.5] * len(row) if row else [])
        indptr.append(len(indices))
    x = csr_matrix((np.array(data), np.array(indices, dtype=np.int64), np.array(indptr)), shape=(len(texts), len(vocab)))
    coefs, intercepts = [], []
    for cls in CLASSES:
        y = np.array([label == cls for label in labels], dtype=int)
        if not y.any():  # a class absent from the data (small fixtures): never predicted
            coefs.append(np.zeros(len(vocab)))
            intercepts.append(-10.0)
            continue
        # L2 (the default): an L1 model is sparser but overconfident out of fold (more false refusals).
        lr = LogisticRegression(C=c, class_weight=CLASS_WEIGHT, solver="liblinear", random_state=SEED, max_iter=1000)
        lr.fit(x, y)
        coefs.append(lr.coef_[0])
        intercepts.append(round(float(lr.intercept_[0]), DIGITS))
    w = np.vstack(coefs).T  # n-grams × classes
    weights = {}
    for gram, i in vocab.items():
        row = w[i]
        if np.abs(row).max() >= prune:
            weights[gram] = [round(float(v), DIGITS) for v in row]
    return {"classes": list(CLASSES), "intercepts": intercepts, "weights": weights}


def cross_validate(rows: list[dict], c: float = C) -> dict:
    """Out-of-fold figures per threshold, the model combined with the rules as `classify` combines them."""
    import django
    from sklearn.model_selection import StratifiedKFold

    # evaluation.py (for DETECTS, the one definition of what detects an attack) imports the models.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guyue.settings")
    django.setup()
    from chat.guard import input as guard_input
    from chat.guard import learned
    from chat.guard.evaluation import DETECTS
    from chat.guard.policy import policy_for

    texts = [r["text"] for r in rows]
    labels = [r["label"] for r in rows]
    probs: list[dict] = [{}] * len(rows)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    scratch = Path(tempfile.mkdtemp()) / "learned-cv.json"  # each fold's export, scored as the site scores it
    try:
        for train_idx, test_idx in folds.split(texts, labels):
            exported = fit([texts[i] for i in train_idx], [labels[i] for i in train_idx], c)
            scratch.write_text(json.dumps({**exported, "threshold": 1.0}), encoding="utf-8")
            learned.model.cache_clear()
            for i in test_idx:
                short = len(normalize(texts[i][:learned.MAX_CHARS]).compact) < learned.MIN_LETTERS
                probs[i] = dict.fromkeys(CLASSES, 0.0) if short else learned.probabilities(texts[i], str(scratch))
    finally:
        scratch.unlink(missing_ok=True)
        scratch.parent.rmdir()
        learned.model.cache_clear()
    rules = [guard_input.classify(r["text"], None, r["history"], learned=False) for r in rows]
    harmless = [i for i, r in enumerate(rows) if r["label"] == BENIGN]
    attacks = [i for i, r in enumerate(rows) if r["label"] != BENIGN]
    rules_fr = sum(not policy_for(rules[i]).answers for i in harmless)
    rules_det = sum(rules[i].category in DETECTS[rows[i]["category"]] for i in attacks)
    table = []
    for t in GRID:
        added_fr = det = 0
        per = Counter()
        for i in harmless:
            if policy_for(rules[i]).answers and rules[i].category in guard_input.LEARNED_OVERRIDES:
                added_fr += max(probs[i].values()) >= t
        for i in attacks:
            ok = rules[i].category in DETECTS[rows[i]["category"]]
            if not ok and rules[i].category in guard_input.LEARNED_OVERRIDES:
                best = max(probs[i], key=probs[i].get)
                ok = probs[i][best] >= t and best in DETECTS[rows[i]["category"]]
            det += ok
            per[rows[i]["label"]] += ok
        table.append({"threshold": t, "detection": round(det / len(attacks), 4),
                      "false_refusal": round((rules_fr + added_fr) / len(harmless), 4),
                      "added_false_refusal": round(added_fr / len(harmless), 4),
                      "per_category": {cls: round(per[cls] / max(1, labels.count(cls)), 4) for cls in CLASSES}})
    chosen = next((row for row in table if row["added_false_refusal"] <= MAX_ADDED_FALSE_REFUSALS), table[-1])
    return {"folds": FOLDS, "items": len(rows), "attacks": len(attacks), "harmless": len(harmless),
            "rules_detection": round(rules_det / len(attacks), 4), "rules_false_refusal": round(rules_fr / len(harmless), 4),
            "chosen": chosen, "table": table}


def build(files=TRAINING_FILES, root: Path = ROOT, cv: bool = True, c: float = C) -> dict:
    rows = load(files, root)
    exported = fit([r["text"] for r in rows], [r["label"] for r in rows], c)
    report = cross_validate(rows, c) if cv else None
    return {
        "about": "chat/guard/learned.py; written by `make guard-model` (chat/guard/train.py)",
        "training_sha256": digest(files, root),
        "training_files": [str(f) for f in files],
        "features": "distinct char 1-4-grams of normalize(text).spaced, binary, L2-normalised",
        "params": {"C": c, "prune": PRUNE, "seed": SEED, "solver": "liblinear", "class_weight": CLASS_WEIGHT},
        "threshold": report["chosen"]["threshold"] if report else 0.8,
        "cv": report,
        **exported,
    }


def dump(model: dict) -> str:
    return json.dumps(model, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(MODEL_PATH))
    parser.add_argument("--c", type=float, default=C)
    args = parser.parse_args(argv)
    model = build(c=args.c)
    Path(args.out).write_text(dump(model), encoding="utf-8")
    cv = model["cv"]
    print(f"{len(model['weights'])} n-grams, threshold {model['threshold']}, written to {args.out}")
    print(json.dumps({k: cv[k] for k in ("items", "rules_detection", "rules_false_refusal", "chosen")}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
