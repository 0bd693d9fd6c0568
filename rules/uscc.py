"""Unified Social Credit Code (统一社会信用代码, GB 32100-2015).

Layout: pos 1 registering authority, pos 2 entity type, pos 3-8 region code (GB/T 2260),
pos 9-17 organisation code, pos 18 check character over pos 1-17.

python-stdnum's ``stdnum.cn.uscc`` rejects codes whose first eight characters are not digits
(authority ``Y``, types like ``A``), so we implement the check ourselves.
"""
from __future__ import annotations

from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}

AUTHORITIES = {
    "1": "organisation establishment (机构编制)",
    "5": "civil affairs (民政)",
    "9": "market regulation (工商)",
    "Y": "other (其他)",
}
for _code, _name in {"2": "foreign affairs", "3": "justice", "4": "culture", "6": "tourism",
                     "7": "religious affairs", "8": "trade unions", "A": "central military",
                     "N": "agriculture"}.items():
    AUTHORITIES[_code] = _name

ENTITY_TYPES = {
    ("9", "1"): "enterprise",
    ("9", "2"): "individual business",
    ("9", "3"): "farmers' cooperative",
    ("1", "1"): "government body",
    ("1", "2"): "public institution",
    ("5", "1"): "social organisation",
    ("5", "2"): "private non-enterprise unit",
    ("5", "3"): "foundation",
    ("Y", "1"): "other",
}


class InvalidUSCC(ValueError):
    """The code is not a valid USCC; the message says why."""


# What people type inside a code and systems print around it: spaces (also the ideographic
# space U+3000), hyphens and their full-width and typographic forms. Dropped by ``normalise``
# for request bodies and the CLI; never in a URL path, whose parameter is the code itself.
_SEPARATORS = str.maketrans("", "", " \t\u3000-\u2010\u2011\u2012\u2013\u2014\uff0d")


def normalise(code: object) -> object:
    """``code`` without inner spaces and hyphens, upper case (anything else is returned as is,
    for ``validate`` to refuse). ``"91350100-M000100Y43"`` and ``"9135 0100 M000 100Y 43"``
    become ``"91350100M000100Y43"``; full-width letters and digits are not converted."""
    if not isinstance(code, str):
        return code
    return code.translate(_SEPARATORS).upper()


def check_character(first17: str) -> str:
    """The 18th character for the first 17 characters of a code."""
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def validate(code: object) -> str:
    """Return the normalised code (upper case, stripped) or raise InvalidUSCC with the reason."""
    if not isinstance(code, str):
        raise InvalidUSCC("must be a string of 18 characters")
    value = code.strip().upper()
    if len(value) != 18:
        raise InvalidUSCC(f"must be 18 characters, got {len(value)}")
    bad = sorted({ch for ch in value if ch not in _VALUE})
    if bad:
        raise InvalidUSCC(f"contains characters outside the USCC alphabet: {''.join(bad)}")
    if value[0] not in AUTHORITIES:
        raise InvalidUSCC(f"unknown registering authority {value[0]!r} at position 1")
    if not value[2:8].isdigit():
        raise InvalidUSCC("positions 3-8 must be a numeric region code")
    expected = check_character(value[:17])
    if value[17] != expected:
        raise InvalidUSCC(f"wrong check character {value[17]!r}, expected {expected!r}")
    return value


def is_valid(code: object) -> bool:
    try:
        validate(code)
    except InvalidUSCC:
        return False
    return True


@dataclass(frozen=True)
class USCCFacts:
    """What the code itself says about the entity."""

    authority: str
    entity_type: str | None
    region_code: str
    province_code: str


def facts(code: str) -> USCCFacts:
    value = validate(code)
    return USCCFacts(
        authority=AUTHORITIES[value[0]],
        entity_type=ENTITY_TYPES.get((value[0], value[1])),
        region_code=value[2:8],
        province_code=value[2:4] + "0000",
    )


def make(prefix17: str) -> str:
    """Complete 17 characters with their check character (for generators and tests)."""
    prefix = prefix17.upper()
    if len(prefix) != 17 or any(ch not in _VALUE for ch in prefix):
        raise InvalidUSCC("prefix must be 17 characters of the USCC alphabet")
    return prefix + check_character(prefix)


def mask(code: str) -> str:
    """A log-safe form: region kept, organisation code hidden."""
    return code[:8] + "******" + code[-4:] if len(code) == 18 else "***"
