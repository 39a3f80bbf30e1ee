"""Handle REST, driven by pyhandle (PyPI), a real Handle.Net REST client, against a running sparkid.

Usage: handle_pyhandle.py BASE_URL HANDLE DID OWNER_DID PREFIX DID_HANDLE
Run by tests/handle.rs; prints 'N passed, 0 failed' and exits 0 when every check holds.
"""

import json
import sys

import requests
from pyhandle.handleclient import PyHandleClient
from pyhandle.handleexceptions import GenericHandleError, HandleNotFoundException

base, handle, did, owner, prefix, did_handle = sys.argv[1:7]
# The REST client in read mode, pointed at sparkid instead of hdl.handle.net.
client = PyHandleClient("rest").instantiate_for_read_access(handle_server_url=base, HTTPS_verify=False)
passed = 0


def check(name, condition, detail=""):
    global passed
    if not condition:
        print(f"FAILED {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    passed += 1


# The whole record: the DID and the resolver URL among its values, handle echoed as asked.
record = client.retrieve_handle_record_json(handle)
check("record", record is not None and record["responseCode"] == 1, record)
check("handle echoed", record["handle"] == handle, record["handle"])
by_type = {}
for value in record["values"]:
    by_type.setdefault(value["type"], []).append(value)
check("DID value", by_type["DID"][0]["data"] == {"format": "string", "value": did}, by_type.get("DID"))
check("DID index", by_type["DID"][0]["index"] == 2, by_type["DID"])
check(
    "URL value",
    by_type["URL"][0]["data"]["value"] == f"{base}/1.0/identifiers/{did}" and by_type["URL"][0]["index"] == 1,
    by_type["URL"],
)
check("ttl and timestamp", all(v["ttl"] == 3600 and v["timestamp"].endswith("Z") for v in record["values"]), record)
document = json.loads(by_type["DID_DOCUMENT"][0]["data"]["value"])
check("DID document", document["id"] == did, document)

# pyhandle's simple views.
check("get_value_from_handle", client.get_value_from_handle(handle, "DID") == did)
simple = client.retrieve_handle_record(handle)
check("retrieve_handle_record", simple["DID"] == did and simple["URL"].endswith(did), simple)

# Filters: index, type, both (any match), as query parameters pyhandle builds.
only_url = client.retrieve_handle_record_json(handle, indices=[1])
check("index filter", [v["index"] for v in only_url["values"]] == [1], only_url)
only_did = client.retrieve_handle_record_json(handle, type=["DID"])
check("type filter", [v["type"] for v in only_did["values"]] == ["DID"], only_did)
either = client.retrieve_handle_record_json(handle, indices=[1], type=["DID_METADATA"])
check("index or type", sorted(v["index"] for v in either["values"]) == [1, 4], either)

# Values not found: HTTP 200 with responseCode 200, which pyhandle reads as an empty handle.
empty = client.retrieve_handle_record_json(handle, type=["NO_SUCH_TYPE"])
check("values not found", empty["responseCode"] == 200 and empty["values"] == [], empty)

# Not found: HTTP 404 with responseCode 100, which pyhandle reads as None / an exception.
check("not found", client.retrieve_handle_record_json(prefix + "/no-such-item") is None)
try:
    client.get_value_from_handle(prefix + "/no-such-item", "URL")
    check("not found raises", False, "no exception")
except HandleNotFoundException:
    check("not found raises", True)

# Invalid handle: HTTP 400 with responseCode 102 (pyhandle accepts the syntax, the server refuses).
try:
    client.retrieve_handle_record_json(prefix + "..bad/x")
    check("invalid handle", False, "no exception")
except GenericHandleError as e:
    check("invalid handle", e.response.status_code == 400 and e.response.json()["responseCode"] == 102, e)

# Case: prefixes and suffixes compare case-insensitively; the answer echoes the request.
upper = client.retrieve_handle_record_json(handle.upper())
check("case-insensitive", upper["handle"] == handle.upper() and upper["values"][0]["index"] == 1, upper)

# The prefix handle names the prefix's owner; a DID reads as a handle under did.bid.
na = client.retrieve_handle_record_json("0.NA/" + prefix)
check("prefix handle", any(v["type"] == "DID" and v["data"]["value"] == owner for v in na["values"]), na)
as_handle = client.retrieve_handle_record_json(did_handle)
check("DID as a handle", client.get_value_from_handle(did_handle, "DID") == did, as_handle)

# The same status mapping seen without pyhandle.
r = requests.get(f"{base}/api/handles/{prefix}/no-such-item")
check("raw 404", r.status_code == 404 and r.json() == {"responseCode": 100, "handle": f"{prefix}/no-such-item", "message": r.json().get("message")}, r.text)
r = requests.get(f"{base}/api/handles/no..slash")
check("raw 400", r.status_code == 400 and r.json()["responseCode"] == 102, r.text)
check("content type", r.headers["content-type"].startswith("application/json"), r.headers)

print(f"{passed} passed, 0 failed")
