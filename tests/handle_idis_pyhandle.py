"""IDIS discovery through pyhandle (PyPI), a real Handle.Net REST client: it reads a prefix's
record, whose HS_SITE value (base64) is decoded here from the layout in
shared/reference/handle-dns.md §3.3, and the first TCP interface is where the prefix is served.

Usage: handle_idis_pyhandle.py BASE_URL PREFIX EXPECTED_TCP_ADDRESS HANDLE DID
Run by tests/handle_idis.rs; prints 'N passed, 0 failed' and exits 0 when every check holds.
"""

import base64
import ipaddress
import struct
import sys

from pyhandle.handleclient import PyHandleClient

base, prefix, expected_tcp, handle, did = sys.argv[1:6]
client = PyHandleClient("rest").instantiate_for_read_access(handle_server_url=base, HTTPS_verify=False)
passed = 0


def check(name, condition, detail=""):
    global passed
    if not condition:
        print(f"FAILED {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    passed += 1


def decode_site(data):
    """HS_SITE: version 2, protocol 1+1, serial 2, primary mask 1, hash option 1, hash filter
    4+n, attributes, servers (id 4, address 16, public key 4+n, interfaces (type 1, protocol 1,
    port 4))."""
    at = 0

    def take(n):
        nonlocal at
        assert at + n <= len(data), f"short at {at}"
        at += n
        return data[at - n:at]

    def u32():
        return struct.unpack(">I", take(4))[0]

    version, major, minor, serial, mask, _hash = struct.unpack(">HBBHBB", take(8))
    take(u32())
    for _ in range(u32()):
        take(u32())
        take(u32())
    servers = []
    for _ in range(u32()):
        u32()
        raw = take(16)
        ip = ipaddress.ip_address(raw[12:]) if raw[:12] == bytes(12) else ipaddress.ip_address(raw)
        take(u32())
        interfaces = [struct.unpack(">BBI", take(6)) for _ in range(u32())]
        servers.append((ip, interfaces))
    assert at == len(data), "bytes after the site"
    return {"version": version, "protocol": (major, minor), "serial": serial, "mask": mask, "servers": servers}


def first_tcp(site):
    for ip, interfaces in site["servers"]:
        for _type, protocol, port in interfaces:
            if protocol == 1:
                return f"{ip}:{port}"
    return None


# The prefix handle, type-filtered to HS_SITE, as pyhandle builds the query.
record = client.retrieve_handle_record_json("0.NA/" + prefix, type=["HS_SITE"])
check("record", record is not None and record["responseCode"] == 1, record)
values = record["values"]
check("one HS_SITE value", [v["type"] for v in values] == ["HS_SITE"], values)
check("base64 data", values[0]["data"]["format"] == "base64", values[0])
site = decode_site(base64.b64decode(values[0]["data"]["value"]))
check("site version", site["version"] == 1 and site["protocol"] == (2, 10), site)
check("primary", site["mask"] & 0x80 != 0, site)
check("first TCP interface", first_tcp(site) == expected_tcp, (first_tcp(site), expected_tcp))

# The whole prefix record through pyhandle's simple view: HS_SITE beside the owner's values.
simple = client.retrieve_handle_record("0.NA/" + prefix)
check("simple view", "HS_SITE" in simple and "DID" in simple, simple)

# Then the handle itself, where discovery pointed (the same daemon's REST door here).
check("the handle", client.get_value_from_handle(handle, "DID") == did)

print(f"{passed} passed, 0 failed")
