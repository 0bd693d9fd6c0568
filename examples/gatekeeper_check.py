"""A gate-keeper (here: a bank) checking an entity before granting credit (copy and adapt).

    LIANCHEN_KEY=lc_... python examples/gatekeeper_check.py USCC [RESTRICTIONS_URL] [--sector credit]

1. Ask ``GET /v1/entities/{uscc}/status``: may the entity pass, sector by sector, and why
   (each measure with its effect, legal bases, implementing department and end date). Only a
   measure with effect ``prohibit`` bars; ``stricter_review``, ``consideration``,
   ``supervision`` and ``inform`` are for you to weigh as what they are.
2. Keep the ``answer_id`` with your own decision: it is your proof of what you were told.
3. Later (an audit, a dispute) fetch ``GET /v1/answers/{answer_id}``: the service returns the
   answer it recorded for you before it answered, and you check it matches what you kept.

Only ``requests``; exit status 0 when the answer was verified, 1 otherwise.
"""
import argparse
import os
import sys

import requests

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("uscc")
parser.add_argument("url", nargs="?", default="http://127.0.0.1:8004")
parser.add_argument("--sector", help="only this sector, e.g. credit")
args = parser.parse_args()

session = requests.Session()
session.headers["Authorization"] = f"Bearer {os.environ['LIANCHEN_KEY']}"  # role gatekeeper

# 1. Ask.
params = {"sector": args.sector} if args.sector else {}
response = session.get(f"{args.url}/v1/entities/{args.uscc}/status", params=params, timeout=10)
if response.status_code != 200:
    sys.exit(f"refused ({response.status_code}): {response.json()}")
told = response.json()
print(f"{told['uscc']} as of {told['as_of']}: {told['record']}")
for sector, entry in told["sectors"].items():
    print(f"  {sector:<14} {'may pass' if entry['may_pass'] else 'PROHIBITED'}")
    for measure in entry["measures"]:
        print(f"      {measure['measure_id']} [{measure['effect']}]: {measure['action']} "
              f"({measure['legal_basis']}; {measure['department']}; "
              f"until {measure['ends_at'] or 'cured'})")

# 2. Keep the answer id with your decision (here: printed; in a bank, stored with the file).
answer_id = told["answer_id"]
weigh = [m for entry in told["sectors"].values() for m in entry["measures"]]
decision = ("refuse" if not told["may_pass"] else
            f"grant, weighing {len(weigh)} measure(s) told" if weigh else "grant")
print(f"decision: {decision}; answer_id={answer_id}")

# 3. Prove what you were told: the recorded answer must match, sector by sector.
recorded = session.get(f"{args.url}/v1/answers/{answer_id}", timeout=10)
if recorded.status_code != 200:
    sys.exit(f"answer {answer_id} not found ({recorded.status_code})")
kept = recorded.json()
same = (kept["answer"]["uscc"] == told["uscc"] and kept["answer"]["may_pass"] == told["may_pass"]
        and all(kept["answer"]["sectors"][sector]["restriction_ids"]
                == [m["restriction_id"] for m in entry["measures"]]
                for sector, entry in told["sectors"].items()))
if not same:
    sys.exit(f"answer {answer_id}: the recorded answer differs from what we were told")
print(f"verified: answer {answer_id} recorded for {kept['asked_by']} at {kept['asked_at']}")
