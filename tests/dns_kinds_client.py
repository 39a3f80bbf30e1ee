#!/usr/bin/env python3
"""dnspython against a running sparkid DNS door: the names of OIDs, Ecodes and GS1 keys (run by
tests/dns.rs, `dns_door_names_oids_ecodes_and_gs1_keys`).

Usage: dns_kinds_client.py '<json>' with server, port, and cases: a list of
{name, type, rcode ("NOERROR" | "NXDOMAIN"), answers (strings each answer must hold, as
presentation text), zone (the apex whose SOA a negative answer carries)}. An answer of a case
with no `answers` must be empty. Exits non-zero at the first failed check; prints how many
checks passed.
"""

import json
import sys

import dns.flags
import dns.message
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
    q = dns.message.make_query(name, rdtype)
    q.flags &= ~dns.flags.RD
    send = dns.query.tcp if tcp else dns.query.udp
    return send(q, ARGS["server"], port=int(ARGS["port"]), timeout=3)


def main():
    for case in ARGS["cases"]:
        name, rdtype = case["name"], case["type"]
        what = f"{name} {rdtype}"
        for tcp in (False, True):
            r = ask(name, rdtype, tcp)
            rcode = dns.rcode.to_text(r.rcode())
            check(rcode == case["rcode"], f"{what}: {rcode}, expected {case['rcode']}")
            check(r.flags & dns.flags.AA, f"{what}: authoritative")
            texts = [rd.to_text() for rrset in r.answer for rd in rrset]
            expected = case.get("answers", [])
            for want in expected:
                check(any(want in t for t in texts), f"{what}: {want!r} not in {texts}")
            if not expected:
                check(texts == [], f"{what}: no answer expected, got {texts}")
                soa = [rrset for rrset in r.authority if rrset.rdtype == dns.rdatatype.SOA]
                check(
                    len(soa) == 1 and soa[0].name.to_text().rstrip(".") == case["zone"],
                    f"{what}: the SOA of {case['zone']} in the authority section, got {r.authority}",
                )
            else:
                names = {rrset.name.to_text().rstrip(".") for rrset in r.answer}
                check(names == {name.lower()}, f"{what}: owner names {names}")
    print(f"{CHECKS} checks passed")


if __name__ == "__main__":
    main()
