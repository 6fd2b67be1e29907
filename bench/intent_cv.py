"""Cross-validation of the intent classifier on its own training examples (no evaluation set).

The gate's risk thresholds (``server/clone/brain/gate.py``) are checked here on examples
the model did not see: k folds, stratified by intent, each scored by a classifier trained
on the other folds (both views of the question, whole and frame-free, as the server
judges). For each candidate threshold it reports the share of escalating
examples (sensitive, commitment, injection) whose out-of-fold risk falls below it (they
then escalate only if no statement covers them) and the share of harmless examples at or
above it (over-escalated unless covered). Prints one JSON object.

Usage: python bench/intent_cv.py [--folds 5]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np

from townhall.server.clone.brain.intent import (
    ESCALATING,
    EXAMPLES_DIR,
    IntentClassifier,
    fit,
    load_examples,
)

THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8)


def out_of_fold(folds: int, seed: int = 1) -> list[tuple[str, str, float]]:
    """``(text, intent, risk)`` for every example, scored by a model that never saw it."""
    examples = load_examples(EXAMPLES_DIR)
    by_intent: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for example in examples:
        by_intent[example[1]].append(example)
    fold_of: dict[tuple[str, str], int] = {}
    rng = random.Random(seed)
    for group in by_intent.values():
        rng.shuffle(group)
        for k, example in enumerate(group):
            fold_of[example] = k % folds
    scored = []
    for k in range(folds):
        model = IntentClassifier(fit([e for e in examples if fold_of[e] != k]))
        scored += [(t, i, model.classify(t).risk) for t, i in examples if fold_of[(t, i)] == k]
    return scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    scored = out_of_fold(args.folds)
    risky = np.array([r for _, i, r in scored if i in ESCALATING])
    harmless = np.array([r for _, i, r in scored if i not in ESCALATING])
    report = {
        "examples": len(scored),
        "escalating": len(risky),
        "harmless": len(harmless),
        "folds": args.folds,
        "thresholds": {
            str(t): {
                "escalating_below": round(float((risky < t).mean()), 3),
                "harmless_at_or_above": round(float((harmless >= t).mean()), 3),
            }
            for t in THRESHOLDS
        },
        "source": str(Path(EXAMPLES_DIR).name),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
