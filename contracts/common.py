"""Field types shared by several contracts."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from rules import uscc
from rules.periods import CHINA_TZ  # agencies send China time when they omit an offset


class USCC(fields.String):
    """An 18-character Unified Social Credit Code with a correct check character; inner spaces
    and hyphens, as people type them, are dropped (``rules.uscc.normalise``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs)
        try:
            return uscc.validate(uscc.normalise(raw))
        except uscc.InvalidUSCC as exc:
            raise ValidationError(str(exc)) from exc


class ProblemSchema(Schema):
    """An RFC 9457 problem (``application/problem+json``): what every refusal carries, with the
    members of its kind added by the schemas built on it."""

    type = fields.String(required=True, metadata={
        "description": "about:blank: the status says what kind of problem (RFC 9457 4.2.1)"})
    title = fields.String(required=True, metadata={"description": "the HTTP status phrase"})
    status = fields.Integer(required=True, validate=validate.Range(min=400, max=599))
    detail = fields.String(required=True, metadata={"description": "what was wrong here"})
    error = fields.String(required=True, metadata={
        "description": "deprecated: the same as detail, kept for one release (docs/CHANGELOG.md)",
        "deprecated": True})


def Instant(**kwargs):  # noqa: N802 - a field factory reads like a field class
    """An instant with a time zone; naive values are read as China Standard Time."""
    return fields.AwareDateTime(format="iso", default_timezone=CHINA_TZ, **kwargs)


NUL = "\x00"
NUL_PROBLEM = "must not contain the NUL character (U+0000)"


def visible(text: str) -> str:
    """``text`` with NUL characters written out (``\\u0000``): a field name or value quoted in
    an error must be storable (PostgreSQL, under FerretDB, refuses NUL in any string)."""
    return text.replace(NUL, "\\u0000") if isinstance(text, str) else text


def nul_paths(data, path="") -> list[str]:
    """Paths (NUL written out) of keys and string values that contain a NUL character."""
    found = []
    if isinstance(data, str):
        if NUL in data:
            found.append(visible(path) or "body")
    elif isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                found.append(visible(here))
            found.extend(nul_paths(value, here))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(nul_paths(value, f"{path}[{i}]"))
    return found


def scrub(data):
    """A copy of ``data`` with NUL characters in keys and strings written out."""
    if isinstance(data, str):
        return visible(data)
    if isinstance(data, dict):
        return {visible(k): scrub(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [scrub(v) for v in data]
    return data


def reject_operator_keys(data, path="") -> list[str]:
    """Paths of keys that would be MongoDB operators or field paths (``$x``, ``a.b``)."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (key.startswith("$") or "." in key):
                found.append(here)
            found.extend(reject_operator_keys(value, here))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(reject_operator_keys(value, f"{path}[{i}]"))
    return found


def field_errors(messages, prefix="") -> list[dict]:
    """Flatten marshmallow's nested error dict to ``[{field, problem}]``."""
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "(payload)"
            out.extend(field_errors(value, name))
    elif isinstance(messages, list):
        for value in messages:
            if isinstance(value, (dict, list)):
                out.extend(field_errors(value, prefix))
            else:
                out.append({"field": prefix or "(payload)", "problem": str(value)})
    else:
        out.append({"field": prefix or "(payload)", "problem": str(messages)})
    return out
