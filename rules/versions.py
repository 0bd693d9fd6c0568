"""The measure catalog versions in force over time (issue 18: "a catalog version records who
approved it (法制审核) and when it takes effect; ``as_of`` answers use the version in force at
that instant").

Data: ``catalog/versions.json`` ``measures_versions``, oldest first, one entry per version the
restrictions service has served: ``version``, ``file`` (the current one ``catalog/measures.json``,
past ones kept unchanged as ``catalog/history/measures.<version>.json``), ``effective_from``
(an ISO instant; null only for the first: in force from the start), ``approved_by`` /
``approved_at`` (法制审核; both null while pending, and then ``pending`` must say why) and
``reference``. ``History.check`` makes the current entry agree with ``measures.json`` itself
(``legal_review``, ``effective_from``) and every file carry its version.

``in_force_at(instant)``: the last version whose ``effective_from`` is not after the instant.
``applies_at(version, instant)``: a restriction decided under ``version`` may be shown at
``instant`` only once that version took effect (a restriction the migration imposed under a
new version is not what the law in force before it gave).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rules.errors import InvalidRulesFile

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"version", "file", "effective_from", "approved_by", "approved_at", "reference",
        "pending", "comment"}


class InvalidHistory(InvalidRulesFile):
    source = "catalog versions in force"


def _instant(text) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("needs a UTC offset")
    return moment


@dataclass(frozen=True)
class CatalogVersion:
    version: str
    file: str
    effective_from: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    reference: str | None
    pending: str | None

    def as_dict(self) -> dict:
        """What a gate-keeping answer says of the version it was decided under."""
        return {"version": self.version, "effective_from": self.effective_from,
                "approved_by": self.approved_by, "approved_at": self.approved_at,
                "reference": self.reference, "approval_pending": self.pending}


class History:
    def __init__(self, versions: list[CatalogVersion]):
        self.versions = versions
        self.by_id = {v.version: v for v in versions}

    @property
    def current(self) -> CatalogVersion:
        return self.versions[-1]

    @classmethod
    def from_manifest(cls, data: dict, root: Path = ROOT) -> "History":
        entries = data.get("measures_versions")
        problems: list[str] = []
        if not isinstance(entries, list) or not entries:
            raise InvalidHistory(["measures_versions: must be a non-empty list, oldest first"])
        versions: list[CatalogVersion] = []
        for i, entry in enumerate(entries):
            where = f"measures_versions[{i}]"
            if not isinstance(entry, dict):
                problems.append(f"{where}: must be an object")
                continue
            problems += [f"{where}: unknown key {k!r}" for k in sorted(set(entry) - KEYS)]
            for key in ("version", "file"):
                if not isinstance(entry.get(key), str) or not entry.get(key):
                    problems.append(f"{where}.{key}: must be a non-empty string")
            for key in ("effective_from", "approved_at"):
                if key not in entry:
                    problems.append(f"{where}.{key}: missing (null is allowed, absence is not)")
            if "approved_by" not in entry:
                problems.append(f"{where}.approved_by: missing (null while pending)")
            try:
                effective = _instant(entry.get("effective_from"))
                approved_at = _instant(entry.get("approved_at"))
            except (TypeError, ValueError) as exc:
                problems.append(f"{where}: effective_from / approved_at must be ISO instants "
                                f"with an offset ({exc})")
                continue
            if effective is None and i > 0:
                problems.append(f"{where}.effective_from: only the first version may be null")
            if (entry.get("approved_by") is None) != (approved_at is None):
                problems.append(f"{where}: approved_by and approved_at go together")
            if entry.get("approved_by") is None and not str(entry.get("pending") or "").strip():
                problems.append(f"{where}.pending: the 法制审核 is pending: say so explicitly")
            file = root / str(entry.get("file") or "")
            try:
                held = json.loads(file.read_text(encoding="utf-8")).get("version")
                if held != entry.get("version"):
                    problems.append(f"{where}: {entry.get('file')} holds version {held!r}, "
                                    f"not {entry.get('version')!r}")
            except (OSError, ValueError, AttributeError) as exc:
                problems.append(f"{where}: cannot read {entry.get('file')}: {exc}")
            versions.append(CatalogVersion(
                entry.get("version"), entry.get("file"), effective, entry.get("approved_by"),
                approved_at, entry.get("reference"), entry.get("pending")))
        for earlier, later in zip(versions, versions[1:]):
            if earlier.effective_from is not None and later.effective_from is not None \
                    and later.effective_from <= earlier.effective_from:
                problems.append(f"measures_versions: {later.version} must take effect after "
                                f"{earlier.version}")
        if len({v.version for v in versions}) != len(versions):
            problems.append("measures_versions: a version is listed twice")
        if problems:
            raise InvalidHistory(problems)
        return cls(versions)

    def check(self, measures_version: str, legal_review: dict,
              effective_from: datetime | None) -> list[str]:
        """The current entry agrees with the measure catalog in force (one statement each)."""
        current, problems = self.current, []
        if current.version != measures_version:
            problems.append(f"measures_versions: the last entry is {current.version!r}, the "
                            f"catalog in force is {measures_version!r}")
            return problems
        if current.file != "catalog/measures.json":
            problems.append("measures_versions: the last entry's file must be catalog/measures.json")
        if current.effective_from != effective_from:
            problems.append(f"measures_versions: effective_from {current.effective_from} is "
                            f"not measures.json's {effective_from}")
        review = legal_review or {}
        if current.approved_by != review.get("reviewed_by") or \
                current.approved_at != _instant(review.get("reviewed_at")):
            problems.append("measures_versions: approved_by / approved_at are not measures.json's "
                            "legal_review reviewed_by / reviewed_at")
        return problems

    def in_force_at(self, instant: datetime) -> CatalogVersion:
        instant = instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)
        chosen = self.versions[0]
        for version in self.versions:
            if version.effective_from is None or version.effective_from <= instant:
                chosen = version
        return chosen

    def applies_at(self, version: str | None, instant: datetime) -> bool:
        """May a restriction decided under ``version`` be shown at ``instant``? Unknown or absent
        versions (documents before versions were recorded): yes."""
        entry = self.by_id.get(version) if version else None
        if entry is None or entry.effective_from is None:
            return True
        instant = instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)
        return entry.effective_from <= instant
