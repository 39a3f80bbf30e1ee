//! `HS_SITE` and `GET_SITE_INFO` on arbitrary bytes, three ways, never a panic:
//! - as a site description: what decodes encodes back to exactly the same bytes (the layout
//!   has one encoding) and its first TCP address is one of its servers';
//! - as text, comma-separated Handle endpoints (the registrar's grammar for a Handle-prefix
//!   delegation and `handle_site_addresses`): what parses prints back to what parses the same,
//!   and the site built from it decodes back to itself, its first TCP address one of them;
//! - as a message to a server with a site: every answer decodes, echoes the request id, and a
//!   successful `GET_SITE_INFO` carries exactly the site.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bridges::handle::site::{protocol, ServerInfo, SiteInfo};
use sparkid_bridges::handle::wire::{decode_message, opcode, respond_with_site, Lookup};
use sparkid_registrar::namespace::{HandleEndpoint, HandleTransport};

fuzz_target!(|data: &[u8]| {
    if let Ok(site) = SiteInfo::decode(data) {
        assert_eq!(site.encode(), data, "one encoding");
        assert_eq!(site.encoded_len(), data.len());
        if let Some(tcp) = site.first_address(protocol::TCP) {
            assert!(site.servers.iter().any(|s| s.ip() == tcp.ip()));
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        let parsed: Result<Vec<HandleEndpoint>, String> =
            text.split(',').map(str::parse::<HandleEndpoint>).collect();
        if let Ok(endpoints) = parsed {
            for e in &endpoints {
                assert_eq!(e.to_string().parse::<HandleEndpoint>().as_ref(), Ok(e));
            }
            let site = SiteInfo::from_endpoints(&endpoints, 1, "fuzz").expect("endpoints: a site");
            assert_eq!(SiteInfo::decode(&site.encode()).as_ref(), Ok(&site));
            // Compared as the site carries them: `::a.b.c.d` and `a.b.c.d` are one address.
            let tcp = endpoints
                .iter()
                .filter(|e| e.transport == HandleTransport::Tcp)
                .map(|e| (ServerInfo::address_of(e.address.ip()), e.address.port()))
                .collect::<Vec<_>>();
            match site.first_address(protocol::TCP) {
                Some(a) => assert!(tcp.contains(&(ServerInfo::address_of(a.ip()), a.port()))),
                None => assert!(tcp.is_empty()),
            }
        }
    }

    let site = SiteInfo::from_endpoints(
        &["tcp://192.0.2.7:2641".parse().expect("an endpoint")],
        1,
        "fuzz",
    )
    .expect("a site")
    .encode();
    if let Some(out) = respond_with_site(data, 1_700_000_000, Some(&site), |_| {
        Lookup::Error(100, "not found".into())
    }) {
        let m = decode_message(&out).expect("an answer decodes");
        assert_eq!(&out[8..12], &data[8..12], "the request id is echoed");
        if m.header.opcode == opcode::GET_SITE_INFO && m.header.response_code == 1 {
            let digest = if m.header.op_flags & 0x0080_0000 != 0 {
                33
            } else {
                0
            };
            assert_eq!(&m.body[digest..], &site[..]);
        }
    }
});
