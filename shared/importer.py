"""Bulk import of historical violation records from CSV or JSON lines.

Records go through the violations service's batch endpoint, so they meet exactly the validation
of the AMQP and HTTP paths. The importer keeps a state file next to the input (offset and
counts, written after every batch): interrupted, it resumes where it stopped; records of the
batch in flight are sent again and come back as duplicates, which changes nothing. Rejected
records are appended to a JSON-lines file with their line number and reasons.

CSV columns (``CSV_COLUMNS``; an empty cell is a field left out):

- ``penalties``: ``type[:amount][:months]`` joined by ``;``, e.g. ``fine:50000;suspension::6``;
  ``none`` for a decision not to penalise (不予行政处罚).
- ``place_code`` (where the violation happened, 6 digits; empty: the entity's registration
  region), ``procedure`` (``summary`` or ``ordinary``; empty: ordinary), ``published_at``
  (ISO 8601; empty: not yet published).
- ``persons``: persons responsible joined by ``;``, each
  ``role:name:id_number[:document_type[:issuing_country[:personal_responsibility]]]``, e.g.
  ``legal_representative:张三:11010119800101123X;responsible_staff:李四:350102199005053216:::yes``
  (document type empty: resident identity card; personal_responsibility ``yes``/``1``/``true``).
  A cell starting with ``[`` is read as a JSON list of person objects instead.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests
from tqdm import tqdm

from shared.identity import mask_documents
from shared.logging import mask_id_numbers

CSV_COLUMNS = ("agency_code", "document_number", "uscc", "entity_name", "category", "severity",
               "penalties", "law", "article", "occurred_at", "decided_at", "first_offence",
               "corrected", "listing", "listed_at", "place_code", "procedure", "published_at",
               "persons")
PERSON_PARTS = ("role", "name", "id_number", "document_type", "issuing_country",
                "personal_responsibility")
_TRUE = ("1", "true", "yes")


class BulkImportError(Exception):
    """A user error: bad file, unreachable service. The message says what to do."""


@dataclass
class Summary:
    total: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    offset: int = 0
    resumed_from: int = 0
    rejected_file: str = ""
    by_status: dict = field(default_factory=dict)


def row_to_record(row: dict) -> dict:
    """A CSV row as a record. ``penalties``: ``type[:amount][:months]`` joined by ``;``."""
    penalties = []
    for item in filter(None, (row.get("penalties") or "").split(";")):
        kind, *rest = item.strip().split(":")
        penalty = {"type": kind}
        if rest and rest[0]:
            penalty["amount"] = rest[0]
        if len(rest) > 1 and rest[1]:
            penalty["months"] = int(rest[1]) if rest[1].isdigit() else rest[1]
        penalties.append(penalty)
    record = {k: row.get(k) for k in ("agency_code", "document_number", "uscc", "entity_name",
                                      "category", "severity", "occurred_at", "decided_at")}
    record["penalties"] = penalties
    record["legal_basis"] = {"law": row.get("law"), "article": row.get("article")}
    record["first_offence"] = (row.get("first_offence") or "").lower() in ("1", "true", "yes")
    record["corrected"] = (row.get("corrected") or "").lower() in ("1", "true", "yes")
    if row.get("listing"):
        record["listing"] = {"list": row["listing"], "listed_at": row.get("listed_at")}
    for name in ("place_code", "procedure", "published_at"):
        if (row.get(name) or "").strip():
            record[name] = row[name].strip()
    if (row.get("persons") or "").strip():
        record["persons"] = persons_cell(row["persons"])
    return record


def persons_cell(cell: str):
    """The ``persons`` cell as a list of person objects (the service validates each and names
    the field of a bad one: ``persons.1.id_number``). A JSON list that does not parse is sent as
    the text, so the refusal names ``persons``."""
    cell = cell.strip()
    if cell.startswith("["):
        try:
            return json.loads(cell)
        except ValueError:
            return cell
    persons = []
    for item in filter(None, (part.strip() for part in cell.split(";"))):
        values = [value.strip() for value in item.split(":")]
        person = {name: value for name, value in zip(PERSON_PARTS, values) if value}
        if len(values) > len(PERSON_PARTS):
            person["personal_responsibility"] = ":".join(values[5:])  # refused, named
        elif "personal_responsibility" in person:
            flag = person["personal_responsibility"].lower()
            person["personal_responsibility"] = (True if flag in _TRUE else False
                                                 if flag in ("0", "false", "no") else flag)
        persons.append(person)
    return persons


def read_records(path: Path):
    """Yield ``(line_number, record_or_raw_text)``; unparsable lines come back as text."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for line_no, row in enumerate(csv.DictReader(handle), start=2):
                yield line_no, row_to_record(row)
    else:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield line_no, json.loads(line)
                except ValueError:
                    yield line_no, line.rstrip("\n")


def run_import(path: str | Path, base_url: str, batch_size: int = 200,
               rejected_path: str | Path | None = None, progress: bool = True,
               stop_after_batches: int | None = None, credential: str | None = None) -> Summary:
    """``credential``: an agency's (or administrator's) API key; default ``$LIANCHEN_KEY``."""
    path = Path(path)
    credential = credential or os.environ.get("LIANCHEN_KEY")
    if not credential:
        raise BulkImportError("no credential: set LIANCHEN_KEY to your agency's API key")
    if not path.is_file():
        raise BulkImportError(f"{path}: no such file")
    state_path = path.with_name(path.name + ".import-state.json")
    rejected_path = Path(rejected_path or path.with_name(path.name + ".rejected.jsonl"))
    fingerprint = hashlib.sha256(f"{path.resolve()}:{path.stat().st_size}".encode()).hexdigest()[:16]
    summary = Summary(rejected_file=str(rejected_path))
    if state_path.exists():
        saved = json.loads(state_path.read_text())
        if saved.get("fingerprint") == fingerprint:
            summary = Summary(**saved["summary"])
            summary.resumed_from = summary.offset
    total = sum(1 for _ in read_records(path))
    summary.total = total
    bar = tqdm(total=total, initial=summary.offset, unit="rec", disable=not progress,
               desc=f"importing {path.name}")
    batch: list[tuple[int, object]] = []
    batches = 0
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {credential}"
    with rejected_path.open("a", encoding="utf-8") as rejected:
        for index, item in enumerate(read_records(path)):
            if index < summary.offset:
                continue
            batch.append(item)
            if len(batch) == batch_size:
                _send(session, base_url, fingerprint, batch, summary, rejected)
                _checkpoint(state_path, fingerprint, summary)
                bar.update(len(batch))
                batch = []
                batches += 1
                if stop_after_batches and batches >= stop_after_batches:
                    bar.close()
                    return summary  # simulated interruption (tests)
        if batch:
            _send(session, base_url, fingerprint, batch, summary, rejected)
            bar.update(len(batch))
    bar.close()
    state_path.unlink(missing_ok=True)
    return summary


def _send(session, base_url, fingerprint, batch, summary: Summary, rejected) -> None:
    records, ids, lines = [], [], []
    for line_no, item in batch:
        if isinstance(item, str):  # not JSON at all: rejected here, never sent
            summary.rejected += 1
            rejected.write(json.dumps({"line": line_no, "errors": [
                {"field": "(line)", "problem": "not valid JSON"}],
                "raw": mask_id_numbers(item[:2000])},
                ensure_ascii=False) + "\n")
            continue
        records.append(item)
        ids.append(f"import-{fingerprint}-{line_no}")
        lines.append(line_no)
    if records:
        try:
            response = session.post(f"{base_url}/v1/violations:batch",
                                    json={"records": records, "message_ids": ids}, timeout=300)
        except requests.RequestException as exc:
            raise BulkImportError(f"violations service unreachable at {base_url} ({exc}); "
                               "start it (make run) and run the import again: it resumes") from exc
        if response.status_code != 200:
            raise BulkImportError(f"batch refused ({response.status_code}): {response.text[:300]}")
        for line_no, record, result in zip(lines, records, response.json()["results"]):
            status = result["status"]
            summary.by_status[status] = summary.by_status.get(status, 0) + 1
            if status == "recorded":
                summary.accepted += 1
            elif status == "duplicate":
                summary.duplicates += 1
            else:
                summary.rejected += 1
                rejected.write(json.dumps({"line": line_no, "status": status,
                                           "errors": result.get("errors", []),
                                           # identity numbers masked: the line number finds
                                           # the record in the agency's own file
                                           "record": mask_documents(record)},
                                          ensure_ascii=False) + "\n")
    rejected.flush()
    summary.offset += len(batch)


def _checkpoint(state_path: Path, fingerprint: str, summary: Summary) -> None:
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "summary": asdict(summary)}))
    tmp.replace(state_path)
