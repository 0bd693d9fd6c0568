"""Which agency may record what, against whom. Data in ``catalog/agencies.json``.

This is the place where authentication will plug in (issue: reliability and security): the
caller's credential will name the agency, and this check refuses records outside its remit.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    categories: frozenset[str]
    regions: tuple[str, ...]


class Jurisdictions:
    def __init__(self, agencies: dict[str, Agency]):
        self.agencies = agencies

    @classmethod
    def load(cls, path: str | Path = ROOT / "catalog" / "agencies.json") -> "Jurisdictions":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls({
            a["code"]: Agency(a["code"], a["name"], frozenset(a["categories"]), tuple(a["regions"]))
            for a in data["agencies"]
        })

    def refusal(self, record: dict) -> list[dict]:
        """Field errors when the record is outside the agency's remit; empty when allowed."""
        agency = self.agencies.get(record["agency_code"].split("-")[0])
        if agency is None:
            return [{"field": "agency_code", "problem": "unknown agency"}]
        errors = []
        if record["category"] not in agency.categories:
            errors.append({"field": "category",
                           "problem": f"{agency.code} may not record {record['category']}"})
        region = record["uscc"][2:8]
        if not any(region.startswith(prefix) for prefix in agency.regions):
            errors.append({"field": "uscc",
                           "problem": f"entity region {region} is outside {agency.code}'s jurisdiction"})
        return errors
