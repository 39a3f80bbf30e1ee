//! `HS_SITE`: how a Handle service describes where it answers. A site is a set of servers,
//! each an IP address, a public key and interfaces (service type, protocol, port). The layout
//! is Handle.Net's `Encoder.encodeSiteInfoRecord` / `decodeSiteInfoRecord`, which the IDIS SDK
//! copies unchanged (`shared/reference/handle-dns.md` §3.3; `spec/handle.md`, "HS_SITE").
//!
//! This is how the IDIS SDK finds a node: it resolves a bare prefix for `HS_SITE` values,
//! decodes the first, and connects to the first TCP interface of its servers
//! ([`SiteInfo::first_address`]). The same bytes answer `GET_SITE_INFO` (operation 2).
//! Pure: bytes in, bytes out; every count is checked against the bytes left before anything is
//! allocated.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sparkid_registrar::namespace::{HandleEndpoint, HandleTransport};

use super::wire::{put_array, put_u32, Reader, WireError};

/// The value type of a site description.
pub const TYPE_SITE: &str = "HS_SITE";
/// The site data format this server writes (CNRI's errata to RFC 3651: the format version is 1).
pub const DATA_FORMAT_VERSION: u16 = 1;
/// The most attributes, servers, or interfaces of one server, a decoded site may hold.
pub const MAX_ENTRIES: usize = 1024;
/// The size of a server's address field: IPv6, or IPv4 in its last four bytes.
pub const ADDRESS_LEN: usize = 16;

/// Primary-mask bits (Handle.Net's `SiteInfo.PRIMARY_SITE`, `MULTI_PRIMARY`).
pub mod primary_mask {
    /// The site is a primary: it takes administration requests.
    pub const PRIMARY: u8 = 0x80;
    /// Several primary sites share the records.
    pub const MULTI_PRIMARY: u8 = 0x40;
}

/// Which part of a handle picks the server within a site (`SiteInfo.HASH_TYPE_*`).
pub mod hash_option {
    /// The prefix.
    pub const BY_PREFIX: u8 = 0;
    /// The suffix.
    pub const BY_SUFFIX: u8 = 1;
    /// The whole handle.
    pub const BY_ALL: u8 = 2;
}

/// What an interface answers (`Interface.ST_*`).
pub mod service_type {
    /// Nothing, for now.
    pub const OUT_OF_SERVICE: u8 = 0;
    /// Administration only.
    pub const ADMIN: u8 = 1;
    /// Resolution only.
    pub const QUERY: u8 = 2;
    /// Both.
    pub const ADMIN_AND_QUERY: u8 = 3;
}

/// How an interface is spoken to (`Interface.SP_HDL_*`).
pub mod protocol {
    /// UDP.
    pub const UDP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 1;
    /// Messages tunnelled in HTTP.
    pub const HTTP: u8 = 2;
    /// Messages tunnelled in HTTPS.
    pub const HTTPS: u8 = 3;
}

/// A named attribute of a site (Handle.Net sites carry `desc`, `alt_addr.*` ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Its name (UTF-8).
    pub name: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
}

/// One interface of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// What it answers ([`service_type`]).
    pub service_type: u8,
    /// How it is spoken to ([`protocol`]).
    pub protocol: u8,
    /// Its port (a 4-byte field on the wire).
    pub port: u32,
}

/// One server of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Its number in the site.
    pub server_id: u32,
    /// Its address: IPv6, or IPv4 as twelve zero bytes and the four of the address.
    pub address: [u8; ADDRESS_LEN],
    /// Its public key, in Handle.Net's key encoding; empty when its answers are not signed.
    pub public_key: Vec<u8>,
    /// Its interfaces.
    pub interfaces: Vec<Interface>,
}

impl ServerInfo {
    /// The server's address as an IP address (twelve leading zero bytes: IPv4, as Handle.Net's
    /// `ServerInfo.getInetAddress` reads it).
    pub fn ip(&self) -> IpAddr {
        if self.address[..12].iter().all(|b| *b == 0) {
            let [a, b, c, d] = [
                self.address[12],
                self.address[13],
                self.address[14],
                self.address[15],
            ];
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.address))
        }
    }

    /// The address field of an IP address.
    pub fn address_of(ip: IpAddr) -> [u8; ADDRESS_LEN] {
        match ip {
            IpAddr::V4(v4) => {
                let mut out = [0u8; ADDRESS_LEN];
                out[12..].copy_from_slice(&v4.octets());
                out
            }
            IpAddr::V6(v6) => v6.octets(),
        }
    }
}

/// A site description: the data of an `HS_SITE` value and the body of a `GET_SITE_INFO`
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    /// The data format version ([`DATA_FORMAT_VERSION`]).
    pub data_format_version: u16,
    /// The Handle protocol's major version the site speaks.
    pub protocol_major: u8,
    /// Its minor version.
    pub protocol_minor: u8,
    /// Bumped when the description changes, so that clients know theirs is stale.
    pub serial: u16,
    /// [`primary_mask`] bits.
    pub primary_mask: u8,
    /// [`hash_option`].
    pub hash_option: u8,
    /// The hash filter (unused by Handle.Net; kept as sent).
    pub hash_filter: Vec<u8>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// Servers.
    pub servers: Vec<ServerInfo>,
}

fn protocol_of(transport: HandleTransport) -> u8 {
    match transport {
        HandleTransport::Tcp => protocol::TCP,
        HandleTransport::Udp => protocol::UDP,
        HandleTransport::Http => protocol::HTTP,
        HandleTransport::Https => protocol::HTTPS,
    }
}

/// Discovery's preference: TCP, then UDP, HTTP, HTTPS (the IDIS SDK speaks TCP only).
fn protocol_rank(protocol: u8) -> u8 {
    match protocol {
        protocol::TCP => 0,
        protocol::UDP => 1,
        protocol::HTTP => 2,
        protocol::HTTPS => 3,
        _ => 4,
    }
}

impl SiteInfo {
    /// The site whose servers answer at `endpoints`: one server per IP address (in the order
    /// the addresses first appear; servers with a TCP interface first), its interfaces TCP
    /// first, each answering queries only (writes are ledger operations, not Handle ones). A
    /// primary site, hashing by the whole handle, speaking protocol 2.10, public keys empty
    /// (answers are not signed), with a `desc` attribute. None without endpoints.
    pub fn from_endpoints(
        endpoints: &[HandleEndpoint],
        serial: u16,
        description: &str,
    ) -> Option<SiteInfo> {
        let mut servers: Vec<ServerInfo> = Vec::new();
        for e in endpoints {
            let address = ServerInfo::address_of(e.address.ip());
            let interface = Interface {
                service_type: service_type::QUERY,
                protocol: protocol_of(e.transport),
                port: e.address.port().into(),
            };
            match servers.iter_mut().find(|s| s.address == address) {
                Some(s) if s.interfaces.contains(&interface) => {}
                Some(s) => s.interfaces.push(interface),
                None => servers.push(ServerInfo {
                    server_id: 0,
                    address,
                    public_key: Vec::new(),
                    interfaces: vec![interface],
                }),
            }
        }
        if servers.is_empty() {
            return None;
        }
        for s in &mut servers {
            s.interfaces.sort_by_key(|i| protocol_rank(i.protocol));
        }
        servers.sort_by_key(|s| !s.interfaces.iter().any(|i| i.protocol == protocol::TCP));
        for (i, s) in servers.iter_mut().enumerate() {
            s.server_id = i as u32 + 1;
        }
        Some(SiteInfo {
            data_format_version: DATA_FORMAT_VERSION,
            protocol_major: super::wire::MAJOR_VERSION,
            protocol_minor: super::wire::MINOR_VERSION,
            serial,
            primary_mask: primary_mask::PRIMARY,
            hash_option: hash_option::BY_ALL,
            hash_filter: Vec::new(),
            attributes: vec![Attribute {
                name: b"desc".to_vec(),
                value: description.as_bytes().to_vec(),
            }],
            servers,
        })
    }

    /// The address of the first interface speaking `protocol`, servers and interfaces in
    /// order: what the IDIS SDK connects to (`SiteUtils.getFirstInetSocketAddressByProtocol`).
    pub fn first_address(&self, protocol: u8) -> Option<SocketAddr> {
        self.servers.iter().find_map(|s| {
            s.interfaces
                .iter()
                .find(|i| i.protocol == protocol)
                .and_then(|i| u16::try_from(i.port).ok())
                .map(|port| SocketAddr::new(s.ip(), port))
        })
    }

    /// The encoded size.
    pub fn encoded_len(&self) -> usize {
        2 + 2
            + 2
            + 1
            + 1
            + 4
            + self.hash_filter.len()
            + 4
            + self
                .attributes
                .iter()
                .map(|a| 8 + a.name.len() + a.value.len())
                .sum::<usize>()
            + 4
            + self
                .servers
                .iter()
                .map(|s| 4 + ADDRESS_LEN + 4 + s.public_key.len() + 4 + 6 * s.interfaces.len())
                .sum::<usize>()
    }

    /// The bytes of the description.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.data_format_version.to_be_bytes());
        out.extend_from_slice(&[self.protocol_major, self.protocol_minor]);
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.extend_from_slice(&[self.primary_mask, self.hash_option]);
        put_array(&mut out, &self.hash_filter);
        put_u32(&mut out, self.attributes.len() as u32);
        for a in &self.attributes {
            put_array(&mut out, &a.name);
            put_array(&mut out, &a.value);
        }
        put_u32(&mut out, self.servers.len() as u32);
        for s in &self.servers {
            put_u32(&mut out, s.server_id);
            out.extend_from_slice(&s.address);
            put_array(&mut out, &s.public_key);
            put_u32(&mut out, s.interfaces.len() as u32);
            for i in &s.interfaces {
                out.extend_from_slice(&[i.service_type, i.protocol]);
                put_u32(&mut out, i.port);
            }
        }
        out
    }

    /// Decodes a description. Like Handle.Net's decoder, bytes after the last server are an
    /// error, and so is a count over [`MAX_ENTRIES`] or over what the bytes left could hold.
    pub fn decode(data: &[u8]) -> Result<SiteInfo, WireError> {
        let mut r = Reader::new(data);
        let data_format_version = r.u16("site version")?;
        let protocol_major = r.u8("site protocol version")?;
        let protocol_minor = r.u8("site protocol version")?;
        let serial = r.u16("site serial number")?;
        let primary_mask = r.u8("site primary mask")?;
        let hash_option = r.u8("site hash option")?;
        let hash_filter = r.array("site hash filter")?.to_vec();
        let n = r.count("site attributes", 8, MAX_ENTRIES)?;
        let mut attributes = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.array("site attribute name")?.to_vec();
            let value = r.array("site attribute value")?.to_vec();
            attributes.push(Attribute { name, value });
        }
        let n = r.count("site servers", 4 + ADDRESS_LEN + 4 + 4, MAX_ENTRIES)?;
        let mut servers = Vec::with_capacity(n);
        for _ in 0..n {
            let server_id = r.u32("server id")?;
            let mut address = [0u8; ADDRESS_LEN];
            address.copy_from_slice(r.take(ADDRESS_LEN, "server address")?);
            let public_key = r.array("server public key")?.to_vec();
            let m = r.count("server interfaces", 6, MAX_ENTRIES)?;
            let mut interfaces = Vec::with_capacity(m);
            for _ in 0..m {
                let service_type = r.u8("interface")?;
                let protocol = r.u8("interface")?;
                let port = r.u32("interface port")?;
                interfaces.push(Interface {
                    service_type,
                    protocol,
                    port,
                });
            }
            servers.push(ServerInfo {
                server_id,
                address,
                public_key,
                interfaces,
            });
        }
        if r.left() > 0 {
            return Err(WireError::Trailing {
                what: "site description",
                left: r.left(),
            });
        }
        Ok(SiteInfo {
            data_format_version,
            protocol_major,
            protocol_minor,
            serial,
            primary_mask,
            hash_option,
            hash_filter,
            attributes,
            servers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(list: &[&str]) -> Vec<HandleEndpoint> {
        list.iter().map(|e| e.parse().unwrap()).collect()
    }

    #[test]
    fn a_site_from_endpoints_groups_by_address_and_puts_tcp_first() {
        let site = SiteInfo::from_endpoints(
            &endpoints(&[
                "udp://[2001:db8::1]:2641",
                "udp://192.0.2.7:2641",
                "http://192.0.2.7:8000",
                "tcp://192.0.2.7:3641",
                "tcp://192.0.2.7:3641",
            ]),
            3,
            "test",
        )
        .unwrap();
        assert_eq!(site.servers.len(), 2);
        // The IPv4 server has TCP, so it comes first; its interfaces TCP, UDP, HTTP.
        assert_eq!(site.servers[0].ip(), "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(site.servers[0].server_id, 1);
        let protocols: Vec<u8> = site.servers[0]
            .interfaces
            .iter()
            .map(|i| i.protocol)
            .collect();
        assert_eq!(protocols, [protocol::TCP, protocol::UDP, protocol::HTTP]);
        assert_eq!(
            site.servers[1].ip(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            site.first_address(protocol::TCP),
            Some("192.0.2.7:3641".parse().unwrap())
        );
        assert_eq!(SiteInfo::from_endpoints(&[], 1, "x"), None);
    }

    /// The bytes, field by field, as Handle.Net's `encodeSiteInfoRecord` writes them.
    #[test]
    fn encodes_the_handle_net_layout_and_decodes_it_back() {
        let site =
            SiteInfo::from_endpoints(&endpoints(&["tcp://192.0.2.7:2641"]), 0x0102, "d").unwrap();
        let bytes = site.encode();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 1][..],                  // data format version 1
            &[2, 10],                     // protocol 2.10
            &[1, 2],                      // serial
            &[0x80, 2],                   // primary; hash by the whole handle
            &[0, 0, 0, 0],                // hash filter: empty
            &[0, 0, 0, 1],                // one attribute
            &[0, 0, 0, 4], b"desc",       // its name
            &[0, 0, 0, 1], b"d",          // its value
            &[0, 0, 0, 1],                // one server
            &[0, 0, 0, 1],                // server id 1
            &[0; 12], &[192, 0, 2, 7],    // IPv4 in the last four bytes
            &[0, 0, 0, 0],                // no public key
            &[0, 0, 0, 1],                // one interface
            &[2, 1], &[0, 0, 0x0a, 0x51], // query, TCP, port 2641
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), site.encoded_len());
        assert_eq!(SiteInfo::decode(&bytes).unwrap(), site);
    }

    #[test]
    fn malformed_descriptions_are_refused_not_panicked_on() {
        let bytes = SiteInfo::from_endpoints(&endpoints(&["tcp://192.0.2.7"]), 1, "d")
            .unwrap()
            .encode();
        for cut in 0..bytes.len() {
            assert!(SiteInfo::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            SiteInfo::decode(&trailing),
            Err(WireError::Trailing { left: 1, .. })
        ));
        // A server count far over what the bytes could hold.
        let mut lying = bytes;
        let at = 2 + 2 + 2 + 2 + 4 + 4 + 8 + 4 + 1;
        lying[at..at + 4].copy_from_slice(&1000u32.to_be_bytes());
        assert!(SiteInfo::decode(&lying).is_err());
    }
}
