"""Generated bad input: arbitrary JSON, smuggled operators and dotted keys, valid records with
fields replaced by junk."""
import copy

from hypothesis import strategies as st

from tests.factories import violation

BASE = violation()  # built once: strategies must not draw from the random module

NASTY_KEYS = st.sampled_from(["$where", "$gt", "$set", "a.b", "record.uscc", "_id", "__proto__",
                              "", " ", "\u0000", "uscc", "agency_code"])
KEYS = st.one_of(st.text(max_size=12), NASTY_KEYS)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                    st.sampled_from(["", "NaN", "Infinity", "-1", "1e400", "2026-13-45",
                                     "91350100M000100Y44", "$ne", "{}", "[]", "🙂" * 3,
                                     "x" * 300]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
FIELDS = ["agency_code", "document_number", "uscc", "entity_name", "category", "severity",
          "penalties", "legal_basis", "occurred_at", "decided_at", "first_offence", "corrected",
          "listing", "region_code", "legal_representative", "place_code", "procedure",
          "published_at", "persons"]


@st.composite
def mutated_records(draw):
    """A valid record with some fields replaced, removed or added."""
    record = copy.deepcopy(BASE)
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        action = draw(st.sampled_from(["replace", "remove"]))
        if action == "remove":
            record.pop(name, None)
        else:
            record[name] = draw(JSON)
    record.update(draw(st.dictionaries(NASTY_KEYS, JSON, max_size=2)))
    return record


BODIES = st.one_of(JSON, mutated_records())
