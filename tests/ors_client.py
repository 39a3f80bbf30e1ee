#!/usr/bin/env python3
"""dnspython against a running sparkid DNS door's ORS zone (run by tests/oid_ecode.rs).

Usage: ors_client.py '<json>' with server, port, zone (the service zone, whose SOA the
negative answers carry), name (the ORS name of a bound OID), oid (that OID), did (the DID it is
bound to), resolver (the DID's resolution URL), nx (an ORS name that does not exist), ent (an
empty non-terminal: the name of a parent arc of the bound OID).
Exits non-zero at the first failed check; prints how many checks passed.
"""

import json
import sys

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

ARGS = json.loads(sys.argv[1])
CHECKS = 0


def check(condition, what):
    global CHECKS
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    CHECKS += 1


def ask(name, rdtype, tcp=False):
    q = dns.message.make_query(name, rdtype, use_edns=0)
    q.flags &= ~dns.flags.RD
    send = dns.query.tcp if tcp else dns.query.udp
    return send(q, ARGS["server"], port=int(ARGS["port"]), timeout=3)


for tcp in (False, True):
    r = ask(ARGS["name"], "NAPTR", tcp)
    check(r.rcode() == dns.rcode.NOERROR, f"NAPTR rcode {dns.rcode.to_text(r.rcode())}")
    check(r.flags & dns.flags.AA, "authoritative")
    naptrs = [rr for rrset in r.answer if rrset.rdtype == dns.rdatatype.NAPTR for rr in rrset]
    check(len(naptrs) == 2, f"two NAPTR records, got {naptrs}")
    by_pref = sorted(naptrs, key=lambda rr: (rr.order, rr.preference))
    for rr, target in zip(by_pref, [ARGS["did"], ARGS["resolver"]]):
        check(rr.order == 100, f"order {rr.order}")
        check(rr.flags == b"U", f"flags {rr.flags!r}")
        check(rr.service == b"ORS+UINF", f"service {rr.service!r}")
        check(rr.regexp == f"!^.*$!{target}!".encode(), f"regexp {rr.regexp!r}")
        check(rr.replacement == dns.name.root, f"replacement {rr.replacement}")
    check([rr.preference for rr in by_pref] == [10, 20], "the DID is preferred")

r = ask(ARGS["name"], "TXT")
txt = {b"".join(rr.strings).decode() for rrset in r.answer for rr in rrset}
check(f"did={ARGS['did']}" in txt and f"oid={ARGS['oid']}" in txt, f"TXT {txt}")

zone = dns.name.from_text(ARGS["zone"])
r = ask(ARGS["nx"], "NAPTR")
check(r.rcode() == dns.rcode.NXDOMAIN, f"nx rcode {dns.rcode.to_text(r.rcode())}")
check(len(r.authority) == 1 and r.authority[0].name == zone, "NXDOMAIN carries the SOA")
for name, rdtype in ((ARGS["ent"], "NAPTR"), (ARGS["name"], "A")):
    r = ask(name, rdtype)
    check(r.rcode() == dns.rcode.NOERROR and not r.answer, f"NODATA for {name} {rdtype}")
    check(r.authority and r.authority[0].rdtype == dns.rdatatype.SOA, "NODATA carries the SOA")

print(f"{CHECKS} checks passed")
