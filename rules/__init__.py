"""The rules of Lianchen in one place: pure domain code over versioned data (``catalog/``).

No framework here (no nameko, pymongo, pika, kombu, eventlet; ``tests/unit/test_imports.py``
checks it): every rule is a function of its facts and an instant, so the same facts always
give the same answer and unit tests need no broker or store.

- ``vocabulary``: categories, severities, penalty types, lists, sectors, risk classes;
- ``periods``: China time, calendar months, and every legal window (publicity, listing,
  measure, repair) defined once (``catalog/periods.json``);
- ``measures``: the joint punishment catalog and the decision it gives;
- ``score_model``: credit score, class and explanation;
- ``repair``: publicity, credit repair eligibility and objection deadlines;
- ``calendar``: working days; ``jurisdiction``: which agency records what;
  ``uscc``: the Unified Social Credit Code; ``inspections``: random inspection draws;
- ``loader``: validates every file in ``catalog/`` at start, against the versions in force
  (``catalog/versions.json``).

See docs/rules.md for what lives where and the checklists for changing a rule.
"""
