"""Cross-checks sparkid's GS1 door against independent implementations and the standard's schemas.

Run by tests/gs1.rs as `python gs1_check.py <base URL> <bound Digital Link path>` with the
environment GS1_SCHEMAS (the directory of the local schema copies). Needs python-stdnum, biip and
jsonschema (scripts/test installs them in target/gs1-venv). Exits non-zero on the first
disagreement, printing it.

- The description file and linksets (200 and 300) validate against tests/gs1/*.json.
- Check digits: for random GTIN-8/12/13/14, SSCCs and GLNs, the daemon answers 400 exactly
  when python-stdnum's GS1 mod-10 check digit disagrees; otherwise 404 (nothing bound there).
- Normalisation: for every valid GTIN, the canonical path the daemon names is /01/ plus biip's
  GTIN-14 of it.
- Digital Link parsing: biip parses the canonical paths the daemon accepts to the same AIs and
  values.
"""

import json
import os
import random
import sys
import urllib.error
import urllib.parse
import urllib.request

import biip
import jsonschema
from stdnum import ean

BASE, BOUND = sys.argv[1], sys.argv[2]
SCHEMAS = os.environ["GS1_SCHEMAS"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def get(path, accept=None):
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(BASE + path, headers=headers)
    try:
        r = OPENER.open(request, timeout=30)
        return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def schema(name):
    with open(os.path.join(SCHEMAS, name)) as f:
        return json.load(f)


def fail(message):
    print(message)
    sys.exit(1)


# The schemas.
status, headers, body = get("/.well-known/gs1resolver")
assert status == 200, status
jsonschema.validate(json.loads(body), schema("description-file-schema.json"))
linkset_schema = schema("linkset-schema.json")
for query in ["?linkType=linkset", "?linkType=gs1:certificationInfo"]:
    status, headers, body = get(BOUND + query)
    if status not in (200, 300):
        fail(f"{BOUND}{query}: {status} {body!r}")
    if headers.get("Content-Type") != "application/linkset+json":
        fail(f"{BOUND}{query}: Content-Type {headers.get('Content-Type')}")
    jsonschema.validate(json.loads(body), linkset_schema)
status, headers, body = get(BOUND, accept="application/linkset+json")
jsonschema.validate(json.loads(body), linkset_schema)
# An invalid linkset must fail the schema: the check has teeth.
try:
    jsonschema.validate({"linkset": [{"anchor": "did:bid:x", "itemDescription": "x"}]}, linkset_schema)
    fail("the linkset schema accepted a did: anchor")
except jsonschema.ValidationError:
    pass


def answer(path):
    status, _, body = get(path)
    if status == 200:
        fail(f"{path}: an error or a redirect was due, got 200")
    return status, (json.loads(body) if status in (400, 404) else None)


rng = random.Random(20261202)
checked = {"gtin": 0, "invalid": 0, "sscc": 0, "gln": 0}

# GTINs: check digits (stdnum) and GTIN-14 normalisation (biip).
for _ in range(250):
    length = rng.choice([8, 12, 13, 14])
    digits = "".join(rng.choice("0123456789") for _ in range(length))
    if rng.random() < 0.5:  # half of them with a correct check digit
        digits = digits[:-1] + ean.calc_check_digit(digits[:-1])
    valid = ean.is_valid(digits)
    status, problem = answer("/01/" + digits)
    if valid:
        if status != 404:
            fail(f"/01/{digits}: stdnum says valid, daemon says {status} {problem}")
        parsed = biip.parse(digits)
        if parsed.gtin is None:
            # biip reads some 8- and 12-digit strings as UPC-E/UPC-A only; skip those.
            continue
        gtin14 = parsed.gtin.as_gtin_14()
        if f"/01/{gtin14}" not in problem["detail"]:
            fail(f"/01/{digits}: biip's GTIN-14 is {gtin14}; daemon: {problem['detail']}")
        checked["gtin"] += 1
    else:
        if status != 400 or "check digit" not in problem["detail"]:
            fail(f"/01/{digits}: stdnum says invalid, daemon says {status} {problem}")
        checked["invalid"] += 1

# SSCC (18 digits, after an extension digit) and GLN (13 digits): the same mod-10 rule.
for ai, length, kind in [("00", 18, "sscc"), ("414", 13, "gln")]:
    for _ in range(60):
        digits = "".join(rng.choice("0123456789") for _ in range(length))
        if rng.random() < 0.5:
            digits = digits[:-1] + ean.calc_check_digit(digits[:-1])
        valid = ean.calc_check_digit(digits[:-1]) == digits[-1]
        status, problem = answer(f"/{ai}/{digits}")
        if (status == 404) != valid or (status == 400) == valid:
            fail(f"/{ai}/{digits}: stdnum check digit valid={valid}, daemon {status} {problem}")
        if ai == "00" and valid:
            sscc = biip.parse(digits).sscc
            if sscc is None or sscc.value != digits:
                fail(f"/00/{digits}: biip does not read it as the same SSCC")
        checked[kind] += 1

# Digital Link paths: what the daemon accepts, biip parses to the same elements.
for path, expected in [
    ("/01/9506000134352/10/LOT7", {"01": "09506000134352", "10": "LOT7"}),
    ("/01/09506000134352/22/2A/10/AB1/21/S%2F1", {"01": "09506000134352", "22": "2A", "10": "AB1", "21": "S/1"}),
    ("/414/9506000134352/254/EXT1", {"414": "9506000134352", "254": "EXT1"}),
    ("/00/106141411234567897", {"00": "106141411234567897"}),
]:
    status, problem = answer(path)
    if status not in (307, 404):
        fail(f"{path}: a valid key is 307 (bound) or 404 (unbound), got {status} {problem}")
    parsed = biip.parse("https://id.gs1.org" + path)
    if parsed.gs1_digital_link_uri is None:
        fail(f"{path}: biip refuses it: {parsed.gs1_digital_link_uri_error}")
    elements = {
        e.ai.ai: e.value for e in parsed.gs1_digital_link_uri.element_strings
    }
    if elements != expected:
        fail(f"{path}: biip reads {elements}, expected {expected}")

print(json.dumps(checked))
assert checked["gtin"] > 20 and checked["invalid"] > 20, checked
