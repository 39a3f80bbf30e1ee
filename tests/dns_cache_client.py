#!/usr/bin/env python3
"""dnspython against the DNS door's answer cache (run by tests/dns_cache.rs).

Usage:
  dns_cache_client.py expect '<json>'  server, port, name, type, and either `contains` (a text
      every answer's records must hold) or `rcode` (NXDOMAIN, NOERROR): asks `times` times over
      UDP, each from a new socket with a new id and a new 0x20 spelling, so that the answers
      come from every receive loop, computed once and then cached.
  dns_cache_client.py wire '<json>'    server, port, small (a name with a small URI answer),
      big (a name whose TXT answer is over 512 bytes and under 1232): the cached path keeps
      each query's id, RD and CD flags and spelling, fits EDNS sizes and truncates as the
      first answer did.
Exits non-zero at the first failed check; prints how many checks passed.
"""

import json
import random
import socket
import sys

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

CAP = 1232
CHECKS = 0
RNG = random.Random()


def check(condition, what):
    global CHECKS
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    CHECKS += 1


def spelling(name):
    """A random 0x20 spelling of `name`."""
    return "".join(c.upper() if RNG.random() < 0.5 else c.lower() for c in name)


def raw_udp(server, port, wire, timeout=3):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(wire, (server, port))
        return s.recv(65535)


def expect(args):
    for _ in range(int(args.get("times", 8))):
        q = dns.message.make_query(spelling(args["name"]), args["type"])
        q.flags &= ~dns.flags.RD
        r = dns.query.udp(q, args["server"], port=int(args["port"]), timeout=3)
        if "rcode" in args:
            check(dns.rcode.to_text(r.rcode()) == args["rcode"],
                  f"{args['name']} {args['type']}: {dns.rcode.to_text(r.rcode())}, not {args['rcode']}")
        if "contains" in args:
            text = "\n".join(rrset.to_text() for rrset in r.answer)
            check(args["contains"] in text, f"{args['name']} {args['type']}: {args['contains']!r} not in {text!r}")
        if "absent" in args:
            text = "\n".join(rrset.to_text() for rrset in r.answer)
            check(args["absent"] not in text, f"{args['name']} {args['type']}: {args['absent']!r} in {text!r}")


def wire(args):
    server, port = args["server"], int(args["port"])
    for name, rdtype, size in [
        (args["small"], "URI", 200),
        (args["big"], "TXT", 600),
    ]:
        for payload in [None, 512, 1000, 1232, 4096]:
            limit = 512 if payload is None else min(max(payload, 512), CAP)
            truncated = size > limit
            seen = set()
            for attempt in range(8):
                asked = spelling(name)
                if payload is None:
                    q = dns.message.make_query(asked, rdtype, use_edns=False)
                else:
                    q = dns.message.make_query(asked, rdtype, use_edns=0, payload=payload)
                q.id = RNG.randrange(65536)
                # RD and CD vary: the answer echoes the query's, whatever the cached one had.
                q.flags = (dns.flags.RD if attempt % 2 else 0) | (dns.flags.CD if attempt % 3 == 0 else 0)
                w = raw_udp(server, port, q.to_wire())
                what = f"{asked} {rdtype} payload {payload} attempt {attempt}"
                check(len(w) <= limit, f"{what}: {len(w)} bytes > {limit}")
                m = dns.message.from_wire(w)
                check(m.id == q.id, f"{what}: id {m.id} != {q.id}")
                check(bool(m.flags & dns.flags.QR), f"{what}: a response")
                check(bool(m.flags & dns.flags.RD) == bool(q.flags & dns.flags.RD), f"{what}: RD echoed")
                check(bool(m.flags & dns.flags.CD) == bool(q.flags & dns.flags.CD), f"{what}: CD echoed")
                check(str(m.question[0].name).rstrip(".") == asked, f"{what}: question {m.question[0].name} as asked")
                check(bool(m.flags & dns.flags.TC) == truncated, f"{what}: TC {truncated}")
                if truncated:
                    check(not m.answer, f"{what}: a truncated answer holds no records")
                else:
                    check(len(m.answer) == 1 and m.answer[0].rdtype == dns.rdatatype.from_text(rdtype),
                          f"{what}: the {rdtype} records, got {m.answer}")
                if payload is None:
                    check(m.edns < 0, f"{what}: no OPT without EDNS")
                else:
                    check(m.edns == 0 and m.payload == limit, f"{what}: OPT advertises {m.payload}")
                # Apart from the id, the flags the query sets and the spelling, every answer
                # to the same question is the same bytes.
                seen.add(bytes(w[4:]).lower())
            check(len(seen) == 1, f"{name} {rdtype} payload {payload}: {len(seen)} different answers")
        # The same name's other type is another answer.
        r = dns.query.udp(dns.message.make_query(name, "A"), server, port=port, timeout=3)
        check(not r.answer and r.rcode() == dns.rcode.NOERROR, f"{name} A: NODATA")
    # Over TCP, the whole big answer.
    r = dns.query.tcp(dns.message.make_query(args["big"], "TXT"), server, port=port, timeout=3)
    check(not (r.flags & dns.flags.TC) and len(r.answer) == 1, "TCP: the whole TXT answer")


def main():
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    {"expect": expect, "wire": wire}[mode](args)
    print(f"{CHECKS} checks passed")


if __name__ == "__main__":
    main()
