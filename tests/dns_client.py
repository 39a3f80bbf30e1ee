#!/usr/bin/env python3
"""dnspython against a running sparkid DNS door (run by tests/dns.rs).

Usage: dns_client.py '<json>' with server, port, zone, bound (an owner name `_did.<name>`),
did (the DID it is bound to), nx (a name that does not exist in the zone), big (a service-zone
name whose TXT answer is larger than 1232 bytes), big_aka (exactly how many aka= strings it holds),
serial (the ledger height the SOA serial must equal).
Exits non-zero at the first failed check; prints how many checks passed.
"""

import json
import random
import socket
import struct
import sys

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

CAP = 1232
ARGS = json.loads(sys.argv[1])
SERVER = ARGS["server"]
PORT = int(ARGS["port"])
CHECKS = 0


def check(condition, what):
    global CHECKS
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    CHECKS += 1


def ask(name, rdtype, **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    q.flags &= ~dns.flags.RD
    return dns.query.udp(q, SERVER, port=PORT, timeout=3)


def raw_udp(wire, timeout=0.5):
    """Sends bytes, returns the answer's bytes or None when none comes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(wire, (SERVER, PORT))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def section(msg, sec, rdtype):
    return [rrset for rrset in getattr(msg, sec) if rrset.rdtype == rdtype]


def main():
    did = ARGS["did"]
    zone = ARGS["zone"]

    # _did URI and TXT, authoritative, with a 0x20 mixed-case name echoed back.
    r = ask(ARGS["bound"], "URI")
    check(r.rcode() == dns.rcode.NOERROR, f"URI rcode {dns.rcode.to_text(r.rcode())}")
    check(r.flags & dns.flags.AA, "URI answer is authoritative")
    uris = [rd for rrset in section(r, "answer", dns.rdatatype.URI) for rd in rrset]
    check(len(uris) == 1, f"one URI record, got {uris}")
    target = uris[0].target.decode() if isinstance(uris[0].target, bytes) else uris[0].target
    check((uris[0].priority, uris[0].weight, target) == (1, 0, did), f"URI {uris[0]}")
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(ARGS["bound"]))
    r = ask(mixed, "TXT")
    check(r.question[0].name.to_text().rstrip(".") == mixed, "question echoed as asked")
    txts = [b"".join(rd.strings).decode() for rrset in r.answer for rd in rrset]
    check(f"did={did}" in txts, f"TXT did= in {txts}")

    # SOA and NS at the apex; the serial is the ledger height.
    r = ask(zone, "SOA")
    soa = [rd for rrset in section(r, "answer", dns.rdatatype.SOA) for rd in rrset]
    check(len(soa) == 1 and r.flags & dns.flags.AA, "one SOA at the apex")
    check(soa[0].serial == int(ARGS["serial"]), f"serial {soa[0].serial} == {ARGS['serial']}")
    r = ask(zone, "NS")
    ns = [rd.target.to_text() for rrset in section(r, "answer", dns.rdatatype.NS) for rd in rrset]
    check(ns == [f"ns1.{ARGS['service_zone']}."], f"NS {ns}")

    # NXDOMAIN versus NODATA, each with the SOA in the authority section.
    r = ask(ARGS["nx"], "URI")
    check(r.rcode() == dns.rcode.NXDOMAIN, "NXDOMAIN for a name that does not exist")
    check(section(r, "authority", dns.rdatatype.SOA), "NXDOMAIN carries the SOA")
    r = ask(ARGS["bound"], "A")
    check(r.rcode() == dns.rcode.NOERROR and not r.answer, "NODATA for another type")
    check(section(r, "authority", dns.rdatatype.SOA), "NODATA carries the SOA")
    parent = ARGS["bound"].split(".", 1)[1]
    r = ask(parent, "TXT")
    check(r.rcode() == dns.rcode.NOERROR and not r.answer, "NODATA at an empty non-terminal")
    r = ask("example.org", "SOA")
    check(r.rcode() == dns.rcode.REFUSED, "REFUSED outside the zones")

    # EDNS0: a UDP answer never larger than the request allows, capped; TC when it does not fit.
    big = ARGS["big"]
    for payload in [None, 512, 600, 1000, 1232, 1400, 4096, 65535]:
        if payload is None:
            q = dns.message.make_query(big, "TXT", use_edns=False)
            limit = 512
        else:
            q = dns.message.make_query(big, "TXT", use_edns=0, payload=payload)
            limit = min(max(payload, 512), CAP)
        wire = raw_udp(q.to_wire(), timeout=3)
        check(wire is not None, f"an answer for payload {payload}")
        check(len(wire) <= limit, f"UDP answer {len(wire)} bytes <= {limit} (payload {payload})")
        m = dns.message.from_wire(wire)
        check(m.flags & dns.flags.TC, f"TC set for payload {payload}")
        check(not m.answer, "a truncated answer carries no partial RRset")
        if payload is not None:
            check(m.edns == 0 and m.payload == limit, f"OPT advertises {m.payload}")
        else:
            check(m.edns < 0, "no OPT without EDNS in the request")
    # ANY, the RFC 8482 way: one synthesized HINFO, even for the name too big for UDP.
    for name in [ARGS["bound"], big]:
        r = ask(name, "ANY", use_edns=False)
        hinfo = [rd for rrset in section(r, "answer", dns.rdatatype.HINFO) for rd in rrset]
        check(not (r.flags & dns.flags.TC) and len(r.answer) == 1 and len(hinfo) == 1,
              f"ANY answers one HINFO for {name}")
        check(hinfo[0].cpu == b"RFC8482" and hinfo[0].os == b"", "HINFO \"RFC8482\" \"\"")
    # Over TCP the whole answer comes; udp_with_fallback retries there by itself.
    q = dns.message.make_query(big, "TXT")
    r, used_tcp = dns.query.udp_with_fallback(q, SERVER, port=PORT, timeout=3)
    check(used_tcp, "udp_with_fallback went to TCP")
    aka = [b"".join(rd.strings) for rrset in r.answer for rd in rrset if b"".join(rd.strings).startswith(b"aka=")]
    check(len(aka) == int(ARGS["big_aka"]), f"{len(aka)} aka= strings over TCP, not {ARGS['big_aka']}")
    check(not (r.flags & dns.flags.TC), "no TC over TCP")

    # Malformed and odd messages: an error code or silence, never a crash.
    rng = random.Random(7)
    header = struct.pack(">HHHHHH", 0x1234, 0, 1, 0, 0, 0)
    loop = header + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    garbage = [
        b"",
        b"\x00",
        b"\x12\x34\x00",
        header,
        header + b"\x03abc",
        loop,
        header + b"\x3f" + b"a" * 10,
        struct.pack(">HHHHHH", 1, 0, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF),
    ] + [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600))) for _ in range(300)]
    # Shorter than a header: silence (nothing to answer to). A header or more that is not a
    # query the server can read: FORMERR, a response echoing the ID, every time.
    answered = 0
    for wire in garbage:
        if len(wire) < 12:
            check(raw_udp(wire, timeout=0.05) is None, f"no answer to {len(wire)} bytes")
            continue
        answer = raw_udp(wire, timeout=3)
        check(answer is not None and len(answer) >= 12, f"an answer to {wire[:12].hex()}…")
        check(answer[:2] == wire[:2], "the answer to garbage echoes its ID")
        check(answer[2] & 0x80, "an answer to garbage is a response")
        check(answer[3] & 0x0F == dns.rcode.FORMERR, f"FORMERR for {wire[:12].hex()}…")
        answered += 1
    check(answered > 100, f"only {answered} of the garbage messages were a header long")
    odd = []
    q = dns.message.make_query(ARGS["bound"], "URI")
    q.set_opcode(dns.opcode.STATUS)
    odd.append((q, {dns.rcode.NOTIMP}))
    q = dns.message.make_query(ARGS["bound"], "URI")
    q.set_opcode(dns.opcode.UPDATE)
    odd.append((q, {dns.rcode.NOTIMP, dns.rcode.FORMERR}))
    q = dns.message.make_query(ARGS["bound"], "URI", use_edns=1)
    odd.append((q, {dns.rcode.BADVERS}))
    q = dns.message.make_query(ARGS["bound"], "TXT", rdclass=dns.rdataclass.CH)
    odd.append((q, {dns.rcode.REFUSED}))
    q = dns.message.make_query(zone, "AXFR")
    odd.append((q, {dns.rcode.REFUSED}))
    q = dns.message.make_query(ARGS["bound"], "URI")
    q.question.append(dns.message.make_query(zone, "SOA").question[0])
    odd.append((q, {dns.rcode.FORMERR}))
    for q, expected in odd:
        wire = raw_udp(q.to_wire(), timeout=3)
        check(wire is not None, f"an answer to {q.question}")
        try:
            m = dns.message.from_wire(wire)
            rcode = m.rcode()
        except dns.exception.FormError:
            # dnspython reads an UPDATE answer's question as a zone section and wants SOA
            # there; the header's RCODE is all that matters here.
            check(q.opcode() == dns.opcode.UPDATE, f"parsable answer to {q}")
            rcode = wire[3] & 0x0F
        check(rcode in expected, f"rcode {dns.rcode.to_text(rcode)} for {q}")
    # A response sent as a query is not answered (no reflection).
    resp = dns.message.make_response(dns.message.make_query(zone, "SOA"))
    check(raw_udp(resp.to_wire(), timeout=0.3) is None, "responses are not answered")
    # TCP: a length that promises more than comes, then garbage frames.
    # Short or empty frames: the connection closes with no answer; a whole frame holding a
    # header without its question: a framed FORMERR echoing the ID.
    for frame, expected in [
        (b"\xff\xff" + b"x" * 10, None),
        (b"\x00\x05hello", None),
        (b"\x00\x00", None),
        (b"\x00\x0c" + header, dns.rcode.FORMERR),
    ]:
        with socket.create_connection((SERVER, PORT), timeout=3) as s:
            s.sendall(frame)
            s.shutdown(socket.SHUT_WR)
            try:
                got = s.recv(65535)
            except ConnectionResetError:
                got = b""
        if expected is None:
            check(got == b"", f"no answer to the frame {frame[:4].hex()}…, got {got.hex()}")
        else:
            check(len(got) >= 14 and got[2:4] == header[:2] and got[5] & 0x0F == expected,
                  f"a framed {dns.rcode.to_text(expected)} for {frame[:4].hex()}…, got {got.hex()}")
    # Still serving, over UDP and TCP.
    r = ask(ARGS["bound"], "URI")
    check(r.rcode() == dns.rcode.NOERROR and r.answer, "still answering over UDP")
    r = dns.query.tcp(dns.message.make_query(ARGS["bound"], "URI"), SERVER, port=PORT, timeout=3)
    check(r.rcode() == dns.rcode.NOERROR and r.answer, "still answering over TCP")
    print(f"dnspython: {CHECKS} checks passed")


if __name__ == "__main__":
    main()
