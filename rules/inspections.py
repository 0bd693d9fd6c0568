"""Risk-based random inspection plans (双随机、一公开): random targets, random inspectors.

Pure domain code. Given the candidate population (entities with their risk class), the class
ratios, an inspector roster with conflict lists and a seed, ``draw_plan`` draws:

1. per class A, B, C, D (in that order) a random sample of ``round(ratio x population)``
   (half up) of the candidates, sorted by USCC first so that the same seed over the same
   population always gives the same sample;
2. for every target (class order, then USCC), two inspectors at random among those whose
   conflict list does not name the target, preferring the least loaded so work spreads evenly.

Everything random comes from one ``random.Random(seed)``: the seed reproduces the plan.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from rules.vocabulary import RISK_CLASSES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "catalog" / "regions.json"
INSPECTORS_PER_TARGET = 2
# Share of each class drawn when a plan request does not say (class D: everyone).
DEFAULT_RATIOS = {"A": 0.05, "B": 0.20, "C": 0.60, "D": 1.00}


class AssignmentImpossible(ValueError):
    def __init__(self, target: str, eligible: list[str]):
        who = ", ".join(eligible) if eligible else "none"
        super().__init__(f"target {target}: only {len(eligible)} inspector(s) without a conflict "
                         f"({who}); {INSPECTORS_PER_TARGET} are needed")
        self.target = target
        self.eligible = eligible


class InvalidScope(ValueError):
    pass


@dataclass(frozen=True)
class Scope:
    """Known regions (GB/T 2260) and industries, from ``catalog/regions.json``."""

    version: str
    regions: dict[str, str]
    industries: dict[str, dict]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> "Scope":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidScope(f"invalid {path}: cannot read JSON: {exc}") from exc
        problems = []
        for code in data.get("regions", {}):
            if not (len(code) == 6 and code.isdigit()):
                problems.append(f"region {code!r}: must be 6 digits")
        for name, industry in data.get("industries", {}).items():
            if "entity_types" not in industry:
                problems.append(f"industry {name!r}: needs entity_types (a list, or null for all)")
        if not data.get("regions") or not data.get("industries"):
            problems.append("needs regions and industries")
        if problems:
            raise InvalidScope(f"invalid {path}: " + "; ".join(problems))
        return cls(data.get("version", ""), data["regions"], data["industries"])

    def problems(self, region: str, industry: str) -> list[dict]:
        errors = []
        if region not in self.regions:
            errors.append({"field": "region", "problem": f"unknown region {region!r}: not a "
                                                         f"GB/T 2260 code in catalog/regions.json"})
        if industry not in self.industries:
            errors.append({"field": "industry", "problem": f"unknown industry {industry!r} "
                                                           f"(known: {', '.join(sorted(self.industries))})"})
        return errors

    def matches_industry(self, industry: str, entity_type: str | None) -> bool:
        types = self.industries[industry]["entity_types"]
        return types is None or entity_type in types


def region_prefix(code: str) -> str:
    """``350000`` -> ``35`` (province), ``350100`` -> ``3501`` (city), else the county code."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def prefix_range(prefix: str) -> tuple[str, str]:
    """``[low, high)`` of 6-digit region codes starting with ``prefix`` (a store range query)."""
    return prefix, str(int(prefix) + 1).zfill(len(prefix))


def sample_size(ratio: float, population: int) -> int:
    """``ratio x population`` rounded half up (decimal, so 5% of 10 is 1, not 0)."""
    return int((Decimal(str(ratio)) * population).to_integral_value(ROUND_HALF_UP))


def population_digest(candidates: list[tuple[str, str]]) -> str:
    """A fingerprint of the population drawn from (who can check the draw needs the same)."""
    text = "\n".join(f"{code}:{cls}" for code, cls in sorted(candidates))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def draw_plan(candidates: list[tuple[str, str]], ratios: dict[str, float], roster: list[dict],
              seed: int) -> dict:
    """``candidates``: ``(uscc, class)``; ``roster``: ``{id, conflicts}``. Returns
    ``{classes: {A: {population, ratio, sample}}, targets: [{uscc, risk_class, inspectors}]}``;
    raises ``AssignmentImpossible`` naming the first target two inspectors cannot take."""
    rng = random.Random(seed)
    ratios = {**DEFAULT_RATIOS, **(ratios or {})}
    by_class: dict[str, list[str]] = {cls: [] for cls in RISK_CLASSES}
    for code, cls in candidates:
        by_class[cls].append(code)
    classes, targets = {}, []
    for cls in RISK_CLASSES:
        pool = sorted(set(by_class[cls]))
        size = sample_size(ratios[cls], len(pool))
        chosen = sorted(rng.sample(pool, size))
        classes[cls] = {"population": len(pool), "ratio": ratios[cls], "sample": size}
        targets.extend({"uscc": code, "risk_class": cls} for code in chosen)
    conflicts = {i["id"]: set(i.get("conflicts") or ()) for i in roster}
    ids = sorted(conflicts)
    load = dict.fromkeys(ids, 0)
    for target in targets:
        eligible = [i for i in ids if target["uscc"] not in conflicts[i]]
        if len(eligible) < INSPECTORS_PER_TARGET:
            raise AssignmentImpossible(target["uscc"], eligible)
        rng.shuffle(eligible)
        eligible.sort(key=load.__getitem__)  # stable: random among the least loaded
        chosen = sorted(eligible[:INSPECTORS_PER_TARGET])
        for inspector in chosen:
            load[inspector] += 1
        target["inspectors"] = chosen
    return {"classes": classes, "targets": targets}


def plan_id(request: dict, digest: str) -> str:
    """Deterministic: the same request over the same population is the same plan."""
    canonical = json.dumps(request, sort_keys=True, default=str, ensure_ascii=False)
    return "plan-" + hashlib.sha256((canonical + digest).encode("utf-8")).hexdigest()[:20]
