#!/usr/bin/env python3
"""Writes the committed seed corpus under fuzz/corpus/<target>/: the published vectors
(../shared/vectors/bid-vectors.json, copied here as literals so the corpus does not depend on
that file) and the worked examples of spec/dns.md, spec/handle*.md and the tests. Run from the
repository root after changing it; the files it writes are committed."""

import os
import struct

VECTOR_DIDS = [
    "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG",
    "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx",
    "did:bid:efj3FikDU8c7An3SPUoRtEWf2JDg1Hg9",
]
SUB = "did:bid:by01:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx"
HANDLES = ["86.100.1/Pump-7", "20.500.12345/a b/x.y", "88.802.1/-a--b-", "88_x.1/泵",
           "86.100/" + "泵" * 80, "0.NA/86.100"]
VAAS = ["VAA1234X9", "VAA" + "7" * 61]
OIDS = ["1.2.156.3001.1.7", "urn:oid:2.16.156.101818.102.1", "1.2.0156", "1.40.1",
        "7.1.3001.156.2.1.oid.sparkid.test", ".".join(["1"] * 50), "2." + "9" * 63]
ECODES = ["100010000001", "06901234567892", "1000A0001", "3" + "9" * 47, "ecode:10012"]
SERVICE_NAMES = [
    "efab242oa72atum62pvkb27xvcymtf7cg5rgpq.did.sparkid.test",
    "efab242oa72atum62pvkb27xvcymtf7cg5rgpq.by01.did.sparkid.test",
    "by01.did.sparkid.test",
    "vaa1234x9.vaa.sparkid.test",
    "pump-7._.1.100.86.handle.sparkid.test",
    "ax20bx2fx78x2ey._.12345.500.20.handle.sparkid.test",
    "x2da-x2dbx2d._.1.802.88.handle.sparkid.test",
    "xe6xb3xb5._.1.88x5fx78.handle.sparkid.test",
    "wne6boz5we7jraby6wfdoikhdzssih5yfonk5rfkrnux2gkfzm5a._hash.handle.sparkid.test",
    "_did.pump.example.com",
]


def write(target, name, data):
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def dns_query(name, qtype, qid=0x1234, edns=None):
    """A query, as dig sends it: RD clear; with an OPT record of `edns` bytes when given."""
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1 if edns else 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label.encode())]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    if edns:
        q += b"\x00" + struct.pack(">HHIH", 41, edns, 0, 0)
    return q


def handle_request(handle, types=()):
    """A Handle native resolution request (OC_RESOLUTION), as tests/handle.rs builds it."""
    body = struct.pack(">I", len(handle.encode())) + handle.encode() + struct.pack(">I", 0)
    body += struct.pack(">I", len(types))
    for t in types:
        body += struct.pack(">I", len(t)) + t.encode()
    header = struct.pack(">IIIBBHII", 1, 0, 0, 0xFF, 0xFF, 0, 1_700_000_000, len(body))
    message = header + body + struct.pack(">I", 0)
    envelope = bytes([2, 10, 0, 0]) + struct.pack(">IIII", 0, 7, 0, len(message))
    return envelope + message


for i, did in enumerate(VECTOR_DIDS + [SUB]):
    write("bid_address", f"vector-{i}", did)
    write("did_url", f"vector-{i}", did)
for i, url in enumerate([
    VECTOR_DIDS[1] + "?versionId=1",
    VECTOR_DIDS[1] + "#key-1",
    VECTOR_DIDS[1] + "/services?id=files",
    VECTOR_DIDS[1] + "?service=files&relativeRef=%2Fa%20b",
    SUB + "?versionTime=2021-06-24T09:10:09Z",
]):
    write("did_url", f"spec-{i}", url)
for i, h in enumerate(HANDLES):
    write("handle_parse", f"spec-{i}", h)
    write("dns_name_mapping", f"handle-{i}", h)
    write("handle_decode", f"resolve-{i}", handle_request(h))
write("handle_decode", "resolve-url", handle_request("86.100.1/pump-7", ["URL", "HS_ADMIN"]))
# IDIS discovery (spec/handle.md, "Discovery"): a bare prefix's HS_SITE, sites, endpoints and
# GET_SITE_INFO requests.
write("handle_decode", "resolve-bare-prefix-site", handle_request("88.100", ["HS_SITE"]))
write("handle_site", "resolve-bare-prefix-site", handle_request("88.100", ["HS_SITE"]))
for i, (ips, desc) in enumerate([
    ([(bytes(12) + bytes([192, 0, 2, 7]), [(2, 1, 2641), (2, 0, 2641)])], b"sparkid"),
    ([(bytes(12) + bytes([127, 0, 0, 1]), [(2, 1, 3641)]),
      (bytes.fromhex("20010db8000000000000000000000007"), [(3, 0, 2641), (2, 2, 8000)])], b""),
]):
    site = struct.pack(">HBBHBB", 1, 2, 10, 1, 0x80, 2) + struct.pack(">I", 0)
    site += struct.pack(">I", 1) + struct.pack(">I", 4) + b"desc" + struct.pack(">I", len(desc)) + desc
    site += struct.pack(">I", len(ips))
    for n, (addr, interfaces) in enumerate(ips):
        site += struct.pack(">I", n + 1) + addr + struct.pack(">I", 0) + struct.pack(">I", len(interfaces))
        for st, proto, port in interfaces:
            site += struct.pack(">BBI", st, proto, port)
    write("handle_site", f"site-{i}", site)
for i, text in enumerate([
    "tcp://192.0.2.7:2641,udp://192.0.2.7:2641",
    "udp://[2001:db8::7]:3641,tcp://198.51.100.9,http://198.51.100.9:8000",
    "https://[::1]:443/",
]):
    write("handle_site", f"endpoints-{i}", text)


def site_info_request(handle=b"", op_flags=0):
    """A GET_SITE_INFO request (OC 2): a generic request's handle."""
    body = struct.pack(">I", len(handle)) + handle
    header = struct.pack(">IIIBBHII", 2, 0, op_flags, 0xFF, 0xFF, 0, 1_700_000_000, len(body))
    message = header + body + struct.pack(">I", 0)
    envelope = bytes([2, 10, 0, 0]) + struct.pack(">IIII", 0, 9, 0, len(message))
    return envelope + message


write("handle_site", "get-site-info", site_info_request())
write("handle_site", "get-site-info-digest", site_info_request(b"0.NA/88.100", 0x00800000))
write("handle_decode", "get-site-info", site_info_request())
for i, v in enumerate(VAAS):
    write("vaa_parse", f"spec-{i}", v)
    write("dns_name_mapping", f"vaa-{i}", v)
for i, v in enumerate(OIDS):
    write("oid_parse", f"spec-{i}", v)
for i, v in enumerate(ECODES):
    write("ecode_parse", f"spec-{i}", v)
for i, n in enumerate(SERVICE_NAMES):
    write("dns_name_mapping", f"name-{i}", n)
    write("dns_parse", f"txt-{i}", dns_query(n, 16))
    write("dns_parse", f"uri-edns-{i}", dns_query(n, 256, edns=4096))
# The name of the target's subject (the published key's DID), whose TXT answer (every alias
# bound to it) is too large for UDP: truncated without EDNS and at 1232.
write("dns_parse", "big-txt-noedns", dns_query(SERVICE_NAMES[0], 16))
write("dns_parse", "big-txt-edns", dns_query(SERVICE_NAMES[0], 16, edns=4096))
write("dns_parse", "soa", dns_query("sparkid.test", 6))
write("dns_parse", "any", dns_query("did.sparkid.test", 255))
# GS1 Digital Link paths (spec/gs1.md, tests/gs1.rs): every primary key, qualifiers, escapes,
# GTIN-8/12/13, and near misses (check digit, order, a stray segment).
GS1_PATHS = [
    "/01/09506000134352", "/01/9506000134352/10/LOT7", "/01/036000291452/", "/01/95050003",
    "/01/09506000134352/22/2A/10/AB%2F1/21/X%2712", "/01/09506000134352/235/TPX1",
    "/00/106141411234567897", "/253/4602443000331XYZ", "/255/0811352010001", "/401/9506000ABC",
    "/402/95060001343520000", "/414/9506000134352/254/EXT1", "/415/9506000134352/8020/REF1",
    "/417/9506000134352", "/8003/09506000134352SER", "/8004/9506000XYZ/7040/1A2B",
    "/8006/095060001343520102/10/L1", "/8010/9506000ABC", "/8013/1987654Ad4X4bL5ttr2310c2K",
    "/8017/795260646700000008/8019/7", "/8018/795260646700000008",
    "/01/09506000134353", "/01/09506000134352/21/S/10/L", "/01/09506000134352/foo",
    "/gtin/09506000134352", "https://id.gs1.org/01/09506000134352",
]
for i, p in enumerate(GS1_PATHS):
    write("gs1_digital_link", f"spec-{i}", p)
# alias_uri: each bridged kind's alias URI (spec/oid.md, spec/ecode.md, spec/gs1.md), near misses,
# and a document listing them in alsoKnownAs.
ALIAS_URIS = ["urn:oid:1.2.156.3001.1.7", "ecode:100010000001",
              "https://id.gs1.org/01/09506000134352", "urn:oid:1.2.0156", "ecode:0",
              "https://id.gs1.org/01/09506000134353", "vaa:VAA1234X9"]
for i, u in enumerate(ALIAS_URIS):
    write("alias_uri", f"spec-uri-{i}", u)
write("alias_uri", "spec-document", '{"id": "%s", "alsoKnownAs": [%s]}' % (
    VECTOR_DIDS[1], ", ".join('"%s"' % u for u in ALIAS_URIS)))
# bid_keys: the published vectors' key, private key and proof signature, and near misses.
BID_KEYS = ["b06566f76733ae048fda721d47afe8780b572636496c93253db86dc8d5427fc54e9a06",
            "priSPKp8oiiAXGZaXFBMKEAoL2b6J6UDQCw4x39ereXYtyAejM",
            "5jFX6UKMVTg73LCWamNdeZACCMftMjSrJvZpL86ULefr3216SKRfgH6YkrmHT5DACYSpVEeN9RcnNES8cAHBVsMw",
            "b06566", "priSPKp8oiiAXGZaXFBMKEAoL2b6J6UDQCw4x39ereXYtyAejN", "0OIl"]
for i, k in enumerate(BID_KEYS):
    write("bid_keys", f"vector-{i}", k)
# did_web_url: did:web method-specific ids (the did:web spec's examples) and near misses.
for i, m in enumerate(["w3c-ccg.github.io", "w3c-ccg.github.io:user:alice",
                       "example.com%3A3000:user:alice", "example.com:.well-known",
                       "user@example.com", "example.com:a%2Fb"]):
    write("did_web_url", f"spec-{i}", m)
# edge_request: request paths and queries of each door, as the edge classifies them.
EDGE_REQUESTS = [f"/1.0/identifiers/{VECTOR_DIDS[1]}", f"/1.0/identifiers/{VECTOR_DIDS[1]}?noCache=true",
                 "/1.0/create?method=bid", "/1.0/transactions", "/1.0/jobs/abc?wait=30",
                 "/1.0/identifiers/VAA1234X9", "/api/handles/86.100.1/Pump-7?type=URL",
                 "/01/09506000134352?linkType=all", "/peer/blocks?from=1", "/metrics", "/", "/%ff"]
for i, r in enumerate(EDGE_REQUESTS):
    write("edge_request", f"spec-door-{i}", r)
# redis_entry: a height stamp and a value, as a cache entry seals them.
write("redis_entry", "spec-entry", struct.pack("<Q", 42) + b'{"didDocument":{}}')
write("redis_entry", "spec-absent", struct.pack("<Q", 1))
write("redis_entry", "spec-short", b"\x01\x02")
# validator_request: validator, signed-at, signature, path and body, NUL-separated.
for i, parts in enumerate([
        [BID_KEYS[0], "1700000000000", BID_KEYS[2], "/peer/blocks", "{}"],
        ["", "", "", "/peer/votes", ""],
        [BID_KEYS[0], "x", "y", "/peer/transactions", "[]"]]):
    write("validator_request", f"spec-request-{i}", "\0".join(parts))
