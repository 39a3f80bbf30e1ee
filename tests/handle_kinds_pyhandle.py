"""pyhandle (PyPI), a real Handle.Net REST client, reading OIDs, Ecodes and GS1 keys through
sparkid's Handle view (spec/handle.md, "Other identifiers"), both ways.

Usage: handle_kinds_pyhandle.py BASE_URL DID DID_HANDLE '<json: [[handle, alias URI], ...]>'
Run by tests/handle.rs; prints 'N passed, 0 failed' and exits 0 when every check holds.
"""

import json
import sys

from pyhandle.handleclient import PyHandleClient
from pyhandle.handleexceptions import GenericHandleError

base, did, did_handle, pairs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
client = PyHandleClient("rest").instantiate_for_read_access(handle_server_url=base, HTTPS_verify=False)
passed = 0


def check(name, condition, detail=""):
    global passed
    if not condition:
        print(f"FAILED {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    passed += 1


def handle_of(uri):
    """An alias URI back to its handle, by spec/handle.md's table (written here, not taken
    from the server)."""
    if uri.startswith("urn:oid:"):
        return "urn.oid/" + uri[len("urn:oid:"):]
    if uri.startswith("https://id.gs1.org/"):
        return "gs1" + uri[len("https://id.gs1.org"):]
    if uri.startswith("ecode:"):
        return "ecode/" + uri[len("ecode:"):]
    raise AssertionError(uri)


# Identifier -> DID: each handle is the record of the DID its identifier is bound to.
for handle, _ in pairs:
    check(f"{handle}: DID", client.get_value_from_handle(handle, "DID") == did, handle)
    record = client.retrieve_handle_record(handle)
    check(f"{handle}: URL", record["URL"] == f"{base}/1.0/identifiers/{did}", record)
    document = json.loads(record["DID_DOCUMENT"])
    check(f"{handle}: document", document["id"] == did, document)

# DID -> identifiers: the DID's record lists them as ALIAS values (100 and up), and each maps
# back to a handle naming the same DID.
aliases = client.retrieve_handle_record_json(did_handle, type=["ALIAS"])
check("ALIAS values", aliases["responseCode"] == 1, aliases)
uris = sorted(v["data"]["value"] for v in aliases["values"])
check("ALIAS = the confirmed identifiers", uris == sorted(uri for _, uri in pairs), uris)
check("ALIAS indexes", all(100 <= v["index"] <= 163 for v in aliases["values"]), aliases)
for uri in uris:
    back = handle_of(uri)
    check(f"{uri} back", client.get_value_from_handle(back, "DID") == did, back)

# Unbound: not found. A suffix that breaks the kind's grammar: 400 with responseCode 102.
for unbound in ["urn.oid/1.2.156.3001.1.9", "ecode/100010000009", "gs1/01/09506000134369"]:
    check(f"{unbound} unbound", client.retrieve_handle_record_json(unbound) is None, unbound)
for bad in ["gs1/01/09506000134353", "ecode/1A2", "urn.oid/1.2.056", "ecode/0123"]:
    try:
        client.retrieve_handle_record_json(bad)
        check(f"{bad} invalid", False, "no exception")
    except GenericHandleError as e:
        body = e.response.json()
        check(
            f"{bad} invalid",
            e.response.status_code == 400 and body["responseCode"] == 102 and bad in body["message"],
            body,
        )

print(f"{passed} passed, 0 failed")
