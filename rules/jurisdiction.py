"""Which agency may record what, against whom. Data in ``catalog/agencies.json``.

The caller's credential names the agency (``shared.auth``): an agency key may only write
records whose ``agency_code`` is that agency or one of its offices (``SAMR`` or ``SAMR-110000``),
and only within the agency's categories and regions below.

Regions are where the violation happened (``place_code``), not where the entity is registered:
中华人民共和国行政处罚法 第二十二条 「行政处罚由违法行为发生地的行政机关管辖。」 An agency may
decide on an entity registered in another province; SAMR Order 45 art. 10 and Order 44 art. 14
para. 2 then have it forward the information to the registration place (docs/rules.md). A record
without ``place_code`` (before record v2) happened where the entity is registered (positions 3-8
of the USCC), so it is judged as before.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rules.errors import InvalidRulesFile
from rules.vocabulary import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "catalog" / "agencies.json"
_CODE = re.compile(r"[A-Z0-9]{2,32}")


class InvalidJurisdictions(InvalidRulesFile):
    source = "agency jurisdictions"


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    categories: frozenset[str]
    regions: tuple[str, ...]


class Jurisdictions:
    def __init__(self, agencies: dict[str, Agency], version: str = ""):
        self.agencies = agencies
        self.version = version

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> "Jurisdictions":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidJurisdictions([f"cannot read JSON: {exc}"],
                                       f"agency jurisdictions {path}") from exc
        problems = validate(data)
        if problems:
            raise InvalidJurisdictions(problems, f"agency jurisdictions {path}")
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: dict) -> "Jurisdictions":
        problems = validate(data)
        if problems:
            raise InvalidJurisdictions(problems)
        return cls({
            a["code"]: Agency(a["code"], a["name"], frozenset(a["categories"]), tuple(a["regions"]))
            for a in data["agencies"]
        }, data["version"])

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
        registered = record["uscc"][2:8]
        place = record.get("place_code") or registered
        if not self.covers(agency, place):
            errors.append({"field": "place_code", "problem": (
                f"the place of the violation {place} is outside {agency.code}'s jurisdiction "
                f"(regions {', '.join(agency.regions)}): 行政处罚由违法行为发生地的行政机关管辖 "
                f"(行政处罚法 第二十二条)")})
            if place == registered:
                errors.append({"field": "uscc", "problem": (
                    f"entity region {registered} is outside {agency.code}'s jurisdiction, and "
                    f"place_code says the violation happened there")})
        return errors

    @staticmethod
    def covers(agency: Agency, region: str) -> bool:
        return any(region.startswith(prefix) for prefix in agency.regions)


def region_keys(*codes: str) -> list[str]:
    """The GB/T 2260 codes whose readers see a record registered or committed at ``codes``:
    each code, its prefecture-level city (``xxxx00``) and its province (``xx0000``). A record
    by a Zhejiang entity (330100) committed in Taiyuan (140105) is in the feeds of 330100,
    330000, 140105, 140100 and 140000: the registration place's, to which SAMR Order 45 art. 10
    has the deciding authority forward it, and the deciding place's."""
    keys = set()
    for code in codes:
        if isinstance(code, str) and len(code) == 6 and code.isdigit():
            keys.update((code, code[:4] + "00", code[:2] + "0000"))
    return sorted(keys)


def validate(data) -> list[str]:
    """Every problem of an agencies document; empty when it is valid."""
    if not isinstance(data, dict):
        return ["the agencies file must be a JSON object"]
    problems = []
    if not isinstance(data.get("version"), str) or not data.get("version"):
        problems.append("version: must be a non-empty string")
    for key in sorted(set(data) - {"version", "comment", "agencies"}):
        problems.append(f"unknown key {key!r}")
    agencies = data.get("agencies")
    if not isinstance(agencies, list) or not agencies:
        return problems + ["agencies: must be a non-empty list"]
    seen: set[str] = set()
    for i, agency in enumerate(agencies):
        if not isinstance(agency, dict):
            problems.append(f"agencies[{i}]: must be an object")
            continue
        code = agency.get("code")
        where = f"agency {code}" if isinstance(code, str) and code else f"agencies[{i}]"
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            problems.append(f"{where}: code must be upper-case letters and digits (an office "
                            f"is the code, '-' and its region: SAMR-110000)")
        elif code in seen:
            problems.append(f"{where}: duplicate code")
        else:
            seen.add(code)
        if not str(agency.get("name") or "").strip():
            problems.append(f"{where}: no name")
        categories = agency.get("categories")
        if not isinstance(categories, list) or not categories:
            problems.append(f"{where}: categories must be a non-empty list")
        else:
            for category in categories:
                if category not in CATEGORIES:
                    problems.append(f"{where}: unknown category {category!r}")
        regions = agency.get("regions")
        if not isinstance(regions, list) or not regions:
            problems.append(f"{where}: regions must be a non-empty list of GB/T 2260 prefixes "
                            f"(\"\" for nationwide)")
        else:
            for prefix in regions:
                if not isinstance(prefix, str) or not (prefix == "" or (
                        prefix.isdigit() and len(prefix) <= 6)):
                    problems.append(f"{where}: region prefix {prefix!r} is not up to 6 digits")
    return problems
