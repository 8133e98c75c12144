#!/usr/bin/env python3
"""Extracts attack payloads from the OWASP CRS regression tests.

Usage: extract_attacks.py CRS_TESTS_DIR > attacks.jsonl

CRS_TESTS_DIR is the tests/ directory of the coraza-coreruleset v4.25.0
module (a copy of coreruleset v4.25.0 tests/regression/tests), e.g.
$(go env GOMODCACHE)/github.com/corazawaf/coraza-coreruleset/v4@v4.25.0/tests.
Only positive tests (expect_ids) of paranoia-level-1 rules whose payload
is one argument (in the query or a urlencoded body) are kept.
"""
import glob, json, os, re, sys, urllib.parse
import yaml

FAMILIES = {"930": "path_traversal", "932": "command_injection",
            "941": "xss", "942": "sqli"}
LIMIT = 70

root = sys.argv[1]
rules = os.path.join(root, "..", "rules", "@owasp_crs")
pl1 = set()
for conf in glob.glob(os.path.join(rules, "REQUEST-9*.conf")):
    text = open(conf).read().replace("\\\n", "")
    for m in re.finditer(r'id:(\d+),.*?(?=SecRule|SecAction|$)', text, re.S):
        if "paranoia-level/1'" in m.group(0):
            pl1.add(int(m.group(1)))

out, seen = [], set()
for fam, cat in FAMILIES.items():
    n = 0
    for path in sorted(glob.glob(os.path.join(root, "REQUEST-%s-*" % fam, "*.yaml"))):
        doc = yaml.safe_load(open(path))
        rule = doc["rule_id"]
        if rule not in pl1:
            continue
        for t in doc["tests"]:
            st = t["stages"][0]
            inp, exp = st["input"], st["output"].get("log", {})
            if not exp.get("expect_ids"):
                continue
            raw = None
            data = inp.get("data")
            uri = inp.get("uri", "")
            if isinstance(data, str) and data.count("=") >= 1 and "&" not in data and "\n" not in data:
                raw = urllib.parse.unquote_plus(data.split("=", 1)[1])
            elif "?" in uri and "&" not in uri.split("?", 1)[1] and "=" in uri:
                raw = urllib.parse.unquote(uri.split("?", 1)[1].split("=", 1)[1])
            if not raw or raw in seen or len(raw) > 400:
                continue
            seen.add(raw)
            out.append({"category": cat, "source": "CRS v4.25.0 tests/regression %s test %s" % (rule, t["test_id"]), "payload": raw})
            n += 1
            if n >= LIMIT:
                break
        if n >= LIMIT:
            break
for i, a in enumerate(out):
    a["in"] = ("query", "json")[i % 2]
    print(json.dumps(a, ensure_ascii=False))
