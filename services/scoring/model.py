"""Credit score model (data in ``catalog/score_model.json``): score, class and explanation.

Pure domain code. The score is a function of the entity's violation records and an instant,
so recomputing it is always safe (idempotent) and explainable contribution by contribution.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from services.restrictions.catalog import add_months

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Score:
    score: float
    risk_class: str
    contributions: list[dict]
    model_version: str


class ScoreModel:
    def __init__(self, data: dict):
        self.data = data
        self.version = data["version"]

    @classmethod
    def load(cls, path: str | Path = ROOT / "catalog" / "score_model.json") -> "ScoreModel":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def publicity_end(self, record: dict) -> datetime:
        rule = self.data["short_publicity_when"]
        kinds = {p["type"] for p in record["penalties"]}
        fines = [Decimal(str(p.get("amount") or 0)) for p in record["penalties"] if p["type"] == "fine"]
        short = kinds <= set(rule["penalty_types_only"]) and all(
            f <= Decimal(str(rule["fine_at_most"])) for f in fines)
        months = self.data["publicity_months"]["short" if short else "long"]
        return add_months(record["decided_at"], months)

    def score(self, records: list[dict], at: datetime) -> Score:
        """``records``: loaded ViolationSchema dicts of the entity's active violations."""
        d = self.data
        contributions = []
        forced = None
        for record in sorted(records, key=lambda r: (r["decided_at"], r["document_number"])):
            start, end = record["decided_at"], self.publicity_end(record)
            if at < start:
                continue
            listing = (record.get("listing") or {}).get("list")
            if listing and listing in d["listing_forces_class"] and at < add_months(
                    record["listing"]["listed_at"], 36):
                forced = d["listing_forces_class"][listing]
            if at >= end:
                continue
            fade = 1 - (at - start) / (end - start)  # linear fading over the publicity window
            weight = d["category_weight"].get(record["category"], 1.0)
            raw = d["severity_deduction"][record["severity"]] * weight
            raw += sum(d["penalty_deduction"].get(p["type"], 0) for p in record["penalties"])
            if listing:
                raw += d["listing_deduction"].get(listing, 0)
            points = round(raw * fade, 2)
            contributions.append({
                "agency_code": record["agency_code"], "document_number": record["document_number"],
                "category": record["category"], "severity": record["severity"],
                "deduction": points, "full_deduction": round(raw, 2),
                "fades_until": end.isoformat(),
            })
        score = round(max(0.0, d["base"] - sum(c["deduction"] for c in contributions)), 2)
        risk_class = next(t["class"] for t in d["thresholds"] if score >= t["min"])
        if forced and forced > risk_class:
            risk_class = forced
            contributions.append({"rule": "on the serious violation list: class D regardless",
                                  "deduction": 0})
        return Score(score, risk_class, contributions, self.version)
