"""Which agency may record what, against whom. Data in ``catalog/agencies.json``.

The caller's credential names the agency (``shared.auth``): an agency key may only write
records whose ``agency_code`` is that agency or one of its offices (``SAMR`` or ``SAMR-110000``),
and only within the agency's categories and regions below.
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

    @staticmethod
    def caller_refusal(agency_code, caller) -> list[dict]:
        """Field errors when ``caller`` (a ``Principal``) may not write for ``agency_code``."""
        if caller is None or caller.role != "agency":
            return []
        if not isinstance(agency_code, str) or agency_code.split("-")[0] != caller.subject:
            return [{"field": "agency_code",
                     "problem": f"the credential of agency {caller.subject} may not write "
                                f"records of agency {agency_code}"}]
        return []

    def refusal(self, record: dict, caller=None) -> list[dict]:
        """Field errors when the record is outside the agency's remit; empty when allowed."""
        caller_errors = self.caller_refusal(record["agency_code"], caller)
        if caller_errors:
            return caller_errors
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
