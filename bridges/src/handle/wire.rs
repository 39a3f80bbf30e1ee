//! The Handle native protocol's messages, as RFC 3652 lays them out and CNRI's Handle.Net 9 and
//! the IDIS (Teleinfo) SDK speak them: a 20-byte envelope, a 24-byte header, a body and a
//! credential. Resolution requests and responses, site-info requests and responses
//! (`GET_SITE_INFO`, the site itself being [`super::site`]'s), error responses and handle values
//! are decoded and encoded here; everything else is answered as unsupported. Pure: bytes in, bytes out.
//! Every integer is big-endian.
//!
//! [`respond`] is the whole server side of one message: it never panics, answers every request
//! it can attribute (an envelope and a header with response code 0), and never answers a
//! response (so that two servers cannot bounce errors at each other).

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Envelope size.
pub const ENVELOPE_LEN: usize = 20;
/// Header size.
pub const HEADER_LEN: usize = 24;
/// The largest message (after the envelope) a peer may announce.
pub const MAX_MESSAGE_LEN: usize = 262_144;
/// The largest UDP packet, envelope included.
pub const MAX_UDP_PACKET: usize = 512;
/// The longest handle in a request, in bytes.
pub const MAX_HANDLE_LEN: usize = 2048;
/// The most values in one answer.
pub const MAX_VALUES: usize = 2048;
/// The most entries in a request's index list, and in its type list.
pub const MAX_FILTERS: usize = 2048;
/// The protocol major version this server speaks.
pub const MAJOR_VERSION: u8 = 2;
/// The protocol minor version this server speaks (the IDIS SDK's; CNRI 9 sends 11 or 3).
pub const MINOR_VERSION: u8 = 10;

/// Operation codes.
pub mod opcode {
    /// Resolve a handle.
    pub const RESOLUTION: u32 = 1;
    /// Ask for the server's site information.
    pub const GET_SITE_INFO: u32 = 2;
    /// Every operation code Handle.Net or IDIS defines, which this server does not perform
    /// (besides `GET_SITE_INFO` when its site is not configured).
    pub const KNOWN_UNSUPPORTED: &[u32] = &[
        100, 101, 102, 103, 104, 105, 200, 201, 300, 301, 302, 400, 401, 402, 1000, 1001, 1002,
        1003, 2001,
    ];
}

/// Response codes.
pub mod response_code {
    /// In requests.
    pub const RESERVED: u32 = 0;
    /// The handle's values follow.
    pub const SUCCESS: u32 = 1;
    /// A server error, or an unknown operation.
    pub const ERROR: u32 = 2;
    /// Try later.
    pub const SERVER_TOO_BUSY: u32 = 3;
    /// The message breaks the protocol.
    pub const PROTOCOL_ERROR: u32 = 4;
    /// A known operation this server does not perform.
    pub const OPERATION_NOT_SUPPORTED: u32 = 5;
    /// No such handle here.
    pub const HANDLE_NOT_FOUND: u32 = 100;
    /// The handle is not well formed.
    pub const INVALID_HANDLE: u32 = 102;
    /// The handle exists, but no value matches the index and type filters.
    pub const VALUES_NOT_FOUND: u32 = 200;
}

/// Envelope flag bits (byte 2; its low two bits carry a suggested major version).
pub mod envelope_flag {
    /// The message is compressed.
    pub const COMPRESSED: u8 = 0x80;
    /// The message is encrypted.
    pub const ENCRYPTED: u8 = 0x40;
    /// The message spans more than one UDP packet.
    pub const TRUNCATED: u8 = 0x20;
    /// The bits of the suggested major version.
    pub const SUGGESTED_MAJOR: u8 = 0x03;
}

/// Header OpFlag bits.
pub mod op_flag {
    /// Authoritative: bypass caches.
    pub const AUTH: u32 = 0x8000_0000;
    /// Sign the response.
    pub const CERT: u32 = 0x4000_0000;
    /// Encrypt the response.
    pub const ENCR: u32 = 0x2000_0000;
    /// Recursive.
    pub const RECU: u32 = 0x1000_0000;
    /// Cache-certify.
    pub const CACR: u32 = 0x0800_0000;
    /// Continued.
    pub const CONT: u32 = 0x0400_0000;
    /// Keep the connection alive.
    pub const KPAL: u32 = 0x0200_0000;
    /// Public values only.
    pub const PUBL: u32 = 0x0100_0000;
    /// Return a digest of the request.
    pub const RRDG: u32 = 0x0080_0000;
    /// Flags echoed in a response (RRDG only when the digest is there).
    pub const ECHOED: u32 = AUTH | RECU | CACR | KPAL | PUBL;
}

/// The request digest's hash type: SHA-256 (32 bytes), as CNRI servers send from version 2.7.
pub const DIGEST_SHA256: u8 = 3;

/// Value permission bits.
pub mod permission {
    /// Administrators may read.
    pub const ADMIN_READ: u8 = 0x8;
    /// Administrators may write.
    pub const ADMIN_WRITE: u8 = 0x4;
    /// Anyone may read.
    pub const PUBLIC_READ: u8 = 0x2;
    /// Anyone may write.
    pub const PUBLIC_WRITE: u8 = 0x1;
    /// Handle.Net's default: admin read and write, public read.
    pub const DEFAULT: u8 = ADMIN_READ | ADMIN_WRITE | PUBLIC_READ;
}

/// Why bytes are not a well-formed message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// A field runs past the end.
    #[error("{what} needs {needed} bytes, {available} left")]
    Short {
        /// The field.
        what: &'static str,
        /// Its size.
        needed: usize,
        /// What was left.
        available: usize,
    },
    /// The envelope announces more than the protocol allows.
    #[error("message length {0} is over the limit of {MAX_MESSAGE_LEN} bytes")]
    TooLong(u64),
    /// The envelope announces more bytes than arrived.
    #[error("the envelope announces {announced} message bytes, {actual} arrived")]
    LengthMismatch {
        /// Announced.
        announced: usize,
        /// Present.
        actual: usize,
    },
    /// The header's body length does not fit the message.
    #[error("body length {body} does not fit the {available} bytes after the header")]
    BodyLength {
        /// Announced.
        body: u64,
        /// Present.
        available: usize,
    },
    /// A list longer than the limit.
    #[error("{what} has {count} entries, over the limit of {limit}")]
    TooMany {
        /// The list.
        what: &'static str,
        /// Announced count.
        count: u64,
        /// The limit.
        limit: usize,
    },
    /// A handle over [`MAX_HANDLE_LEN`].
    #[error("a handle is at most {MAX_HANDLE_LEN} bytes, this one has {0}")]
    HandleTooLong(u64),
    /// Compressed or encrypted messages.
    #[error("compressed or encrypted messages are not supported")]
    Transformed,
    /// Bytes left after a structure that must end where its data ends.
    #[error("{what}: {left} bytes after its end")]
    Trailing {
        /// The structure.
        what: &'static str,
        /// How many bytes were left.
        left: usize,
    },
    /// A request split over several UDP packets.
    #[error("requests split over several UDP packets are not supported: send it over TCP")]
    MultiPacket,
}

/// A cursor over a byte slice whose reads fail instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if n > self.left() {
            return Err(WireError::Short {
                what,
                needed: n,
                available: self.left(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A 4-byte length, then that many bytes.
    pub(crate) fn array(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// A 4-byte count of entries at least `min_size` bytes each, checked against `limit` and
    /// against the bytes left (so that a lying count allocates nothing).
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        min_size: usize,
        limit: usize,
    ) -> Result<usize, WireError> {
        let count = self.u32(what)? as usize;
        if count > limit {
            return Err(WireError::TooMany {
                what,
                count: count as u64,
                limit,
            });
        }
        let needed = count.saturating_mul(min_size);
        if needed > self.left() {
            return Err(WireError::Short {
                what,
                needed,
                available: self.left(),
            });
        }
        Ok(count)
    }
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_array(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// The 20-byte envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Flag bits ([`envelope_flag`]), with the suggested major version in the low two bits.
    pub flags: u8,
    /// Suggested minor version (0: none).
    pub suggested_minor: u8,
    /// Session id.
    pub session_id: u32,
    /// Request id, echoed by the response.
    pub request_id: u32,
    /// Sequence number (the packet index of a split UDP message).
    pub sequence: u32,
    /// The length of the whole message after the envelope.
    pub message_length: u32,
}

impl Envelope {
    /// Reads the envelope at the start of `buf`; refuses a message length over the limit.
    pub fn decode(buf: &[u8]) -> Result<Envelope, WireError> {
        let mut r = Reader::new(buf);
        let envelope = Envelope {
            major: r.u8("envelope")?,
            minor: r.u8("envelope")?,
            flags: r.u8("envelope")?,
            suggested_minor: r.u8("envelope")?,
            session_id: r.u32("envelope")?,
            request_id: r.u32("envelope")?,
            sequence: r.u32("envelope")?,
            message_length: r.u32("envelope")?,
        };
        if envelope.message_length as usize > MAX_MESSAGE_LEN {
            return Err(WireError::TooLong(envelope.message_length.into()));
        }
        Ok(envelope)
    }

    /// Appends the 20 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.major, self.minor, self.flags, self.suggested_minor]);
        put_u32(out, self.session_id);
        put_u32(out, self.request_id);
        put_u32(out, self.sequence);
        put_u32(out, self.message_length);
    }

    /// Whether the message spans more than one UDP packet.
    pub fn truncated(&self) -> bool {
        self.flags & envelope_flag::TRUNCATED != 0
    }

    /// The suggested major version (0: none).
    pub fn suggested_major(&self) -> u8 {
        self.flags & envelope_flag::SUGGESTED_MAJOR
    }
}

/// The 24-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Operation code ([`opcode`]).
    pub opcode: u32,
    /// Response code ([`response_code`]); 0 in requests.
    pub response_code: u32,
    /// Option bits ([`op_flag`]).
    pub op_flags: u32,
    /// Site info serial number (0xFFFF when the client does not know it).
    pub site_info_serial: u16,
    /// Recursion count.
    pub recursion_count: u8,
    /// Expiration time, epoch seconds.
    pub expiration: u32,
    /// Body length.
    pub body_length: u32,
}

impl Header {
    /// Reads the header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Header, WireError> {
        let mut r = Reader::new(buf);
        let opcode = r.u32("header")?;
        let response_code = r.u32("header")?;
        let op_flags = r.u32("header")?;
        let site_info_serial = r.u16("header")?;
        let recursion_count = r.u8("header")?;
        let _reserved = r.u8("header")?;
        let expiration = r.u32("header")?;
        let body_length = r.u32("header")?;
        Ok(Header {
            opcode,
            response_code,
            op_flags,
            site_info_serial,
            recursion_count,
            expiration,
            body_length,
        })
    }

    /// Appends the 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.opcode);
        put_u32(out, self.response_code);
        put_u32(out, self.op_flags);
        out.extend_from_slice(&self.site_info_serial.to_be_bytes());
        out.push(self.recursion_count);
        out.push(0);
        put_u32(out, self.expiration);
        put_u32(out, self.body_length);
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The envelope.
    pub envelope: Envelope,
    /// The header.
    pub header: Header,
    /// The body.
    pub body: &'a [u8],
    /// The header and body bytes: what a request digest is taken of.
    pub header_and_body: &'a [u8],
    /// The credential (empty when unsigned or absent).
    pub credential: &'a [u8],
}

/// Decodes one message: the envelope, then exactly the `message_length` bytes it announces
/// (bytes after them are ignored). The credential may be absent.
pub fn decode_message(bytes: &[u8]) -> Result<Message<'_>, WireError> {
    let envelope = Envelope::decode(bytes)?;
    let rest = &bytes[ENVELOPE_LEN..];
    let announced = envelope.message_length as usize;
    if rest.len() < announced {
        return Err(WireError::LengthMismatch {
            announced,
            actual: rest.len(),
        });
    }
    decode_after_envelope(envelope, &rest[..announced])
}

/// Decodes the message that follows `envelope` (exactly its bytes, as TCP reads them).
pub fn decode_after_envelope(envelope: Envelope, message: &[u8]) -> Result<Message<'_>, WireError> {
    let mut r = Reader::new(message);
    let header = Header::decode(r.take(HEADER_LEN, "header")?)?;
    let body_length = header.body_length as usize;
    if body_length > r.left() {
        return Err(WireError::BodyLength {
            body: header.body_length.into(),
            available: r.left(),
        });
    }
    let body = r.take(body_length, "body")?;
    let header_and_body = &message[..HEADER_LEN + body_length];
    // The credential: a 4-byte length and its bytes, when there is room for one.
    let credential = if r.left() >= 4 {
        r.array("credential")?
    } else {
        &[]
    };
    Ok(Message {
        envelope,
        header,
        body,
        header_and_body,
        credential,
    })
}

/// A resolution request's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionRequest<'a> {
    /// The handle, as sent (UTF-8 if well formed).
    pub handle: &'a [u8],
    /// Requested indexes; empty: all.
    pub indexes: Vec<u32>,
    /// Requested types; empty: all.
    pub types: Vec<&'a [u8]>,
}

impl<'a> ResolutionRequest<'a> {
    /// Decodes a resolution request body. Bytes after the type list (the IDIS `authBytes`, or
    /// anything else) are ignored, as CNRI's decoder ignores them.
    pub fn decode(body: &'a [u8]) -> Result<ResolutionRequest<'a>, WireError> {
        let mut r = Reader::new(body);
        let handle_len = r.u32("handle")?;
        if handle_len as usize > MAX_HANDLE_LEN {
            return Err(WireError::HandleTooLong(handle_len.into()));
        }
        let handle = r.take(handle_len as usize, "handle")?;
        let n = r.count("index list", 4, MAX_FILTERS)?;
        let mut indexes = Vec::with_capacity(n);
        for _ in 0..n {
            indexes.push(r.u32("index list")?);
        }
        let n = r.count("type list", 4, MAX_FILTERS)?;
        let mut types = Vec::with_capacity(n);
        for _ in 0..n {
            types.push(r.array("type list")?);
        }
        Ok(ResolutionRequest {
            handle,
            indexes,
            types,
        })
    }

    /// Appends the body bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_array(out, self.handle);
        put_u32(out, self.indexes.len() as u32);
        for i in &self.indexes {
            put_u32(out, *i);
        }
        put_u32(out, self.types.len() as u32);
        for t in &self.types {
            put_array(out, t);
        }
    }
}

/// A reference from a value to a value of another handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueReference {
    /// The handle.
    pub handle: Vec<u8>,
    /// The index.
    pub index: u32,
}

/// One handle value, as the protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleValue {
    /// Index (unique in a record; 0 is reserved).
    pub index: u32,
    /// Last change, epoch seconds.
    pub timestamp: u32,
    /// 0: `ttl` is relative (seconds); 1: absolute (epoch seconds).
    pub ttl_type: u8,
    /// Time to live.
    pub ttl: u32,
    /// Permission bits ([`permission`]).
    pub permissions: u8,
    /// Type (UTF-8).
    pub value_type: Vec<u8>,
    /// Data.
    pub data: Vec<u8>,
    /// References.
    pub references: Vec<ValueReference>,
}

impl HandleValue {
    /// A public value with a relative TTL and no references.
    pub fn new(
        index: u32,
        value_type: &str,
        data: impl Into<Vec<u8>>,
        timestamp: u32,
        ttl: u32,
    ) -> HandleValue {
        HandleValue {
            index,
            timestamp,
            ttl_type: 0,
            ttl,
            permissions: permission::DEFAULT,
            value_type: value_type.as_bytes().to_vec(),
            data: data.into(),
            references: Vec::new(),
        }
    }

    /// The encoded size.
    pub fn encoded_len(&self) -> usize {
        14 + 4
            + self.value_type.len()
            + 4
            + self.data.len()
            + 4
            + self
                .references
                .iter()
                .map(|r| 8 + r.handle.len())
                .sum::<usize>()
    }

    /// Appends the value's bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.index);
        put_u32(out, self.timestamp);
        out.push(self.ttl_type);
        put_u32(out, self.ttl);
        out.push(self.permissions);
        put_array(out, &self.value_type);
        put_array(out, &self.data);
        put_u32(out, self.references.len() as u32);
        for r in &self.references {
            put_array(out, &r.handle);
            put_u32(out, r.index);
        }
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<HandleValue, WireError> {
        let index = r.u32("value")?;
        let timestamp = r.u32("value")?;
        let ttl_type = r.u8("value")?;
        let ttl = r.u32("value")?;
        let permissions = r.u8("value")?;
        let value_type = r.array("value type")?.to_vec();
        let data = r.array("value data")?.to_vec();
        let n = r.count("references", 8, MAX_VALUES)?;
        let mut references = Vec::with_capacity(n);
        for _ in 0..n {
            let handle = r.array("reference")?.to_vec();
            let index = r.u32("reference")?;
            references.push(ValueReference { handle, index });
        }
        Ok(HandleValue {
            index,
            timestamp,
            ttl_type,
            ttl,
            permissions,
            value_type,
            data,
            references,
        })
    }
}

/// A resolution response's body, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionResponse {
    /// The request digest (hash type, digest), when the request asked for one.
    pub digest: Option<(u8, Vec<u8>)>,
    /// The handle.
    pub handle: Vec<u8>,
    /// The values.
    pub values: Vec<HandleValue>,
}

fn decode_digest(r: &mut Reader<'_>) -> Result<(u8, Vec<u8>), WireError> {
    let kind = r.u8("request digest")?;
    let len = match kind {
        1 => 16,
        2 => 20,
        _ => 32,
    };
    Ok((kind, r.take(len, "request digest")?.to_vec()))
}

impl ResolutionResponse {
    /// Decodes the body of a success response to a resolution; `digest` tells whether the
    /// header's RRDG flag is set.
    pub fn decode(body: &[u8], digest: bool) -> Result<ResolutionResponse, WireError> {
        let mut r = Reader::new(body);
        let digest = if digest {
            Some(decode_digest(&mut r)?)
        } else {
            None
        };
        let handle = r.array("handle")?.to_vec();
        let n = r.count("values", 14, MAX_VALUES)?;
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(HandleValue::decode_from(&mut r)?);
        }
        Ok(ResolutionResponse {
            digest,
            handle,
            values,
        })
    }
}

/// Decodes the message of an error response body (after the digest, if any).
pub fn decode_error_message(body: &[u8], digest: bool) -> Result<Vec<u8>, WireError> {
    let mut r = Reader::new(body);
    if digest {
        decode_digest(&mut r)?;
    }
    Ok(r.array("error message")?.to_vec())
}

/// What a response echoes of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    major: u8,
    minor: u8,
    session_id: u32,
    request_id: u32,
    opcode: u32,
    op_flags: u32,
    expiration: u32,
    digest: Option<[u8; 32]>,
}

impl Reply {
    /// The reply to a request with this envelope and header. The version is the one the client
    /// suggested (or spoke), at most this server's; `expiration` is epoch seconds.
    pub fn new(envelope: &Envelope, header: &Header, expiration: u32) -> Reply {
        let (major, minor) = if envelope.suggested_major() != 0 {
            (envelope.suggested_major(), envelope.suggested_minor)
        } else {
            (envelope.major, envelope.minor)
        };
        let (major, minor) = if (major, minor) > (MAJOR_VERSION, MINOR_VERSION) || major == 0 {
            (MAJOR_VERSION, MINOR_VERSION)
        } else {
            (major, minor)
        };
        Reply {
            major,
            minor,
            session_id: envelope.session_id,
            request_id: envelope.request_id,
            opcode: header.opcode,
            op_flags: header.op_flags & op_flag::ECHOED,
            expiration,
            digest: None,
        }
    }

    /// Adds the digest of the request (its header and body) that RRDG asks for.
    pub fn with_digest(mut self, header_and_body: &[u8]) -> Reply {
        self.digest = Some(Sha256::digest(header_and_body).into());
        self.op_flags |= op_flag::RRDG;
        self
    }

    fn message(&self, response_code: u32, body: &[u8]) -> Vec<u8> {
        let digest_len = if self.digest.is_some() { 33 } else { 0 };
        let body_length = digest_len + body.len();
        let message_length = HEADER_LEN + body_length + 4;
        let mut out = Vec::with_capacity(ENVELOPE_LEN + message_length);
        Envelope {
            major: self.major,
            minor: self.minor,
            flags: MAJOR_VERSION & envelope_flag::SUGGESTED_MAJOR,
            suggested_minor: MINOR_VERSION,
            session_id: self.session_id,
            request_id: self.request_id,
            sequence: 0,
            message_length: message_length as u32,
        }
        .encode(&mut out);
        Header {
            opcode: self.opcode,
            response_code,
            op_flags: self.op_flags,
            site_info_serial: 0,
            recursion_count: 0,
            expiration: self.expiration,
            body_length: body_length as u32,
        }
        .encode(&mut out);
        if let Some(d) = &self.digest {
            out.push(DIGEST_SHA256);
            out.extend_from_slice(d);
        }
        out.extend_from_slice(body);
        put_u32(&mut out, 0); // no credential: unsigned
        out
    }

    /// A success response to a resolution: the handle and its values.
    pub fn resolution(&self, handle: &[u8], values: &[HandleValue]) -> Vec<u8> {
        let size = 8 + handle.len() + values.iter().map(HandleValue::encoded_len).sum::<usize>();
        let mut body = Vec::with_capacity(size);
        put_array(&mut body, handle);
        put_u32(&mut body, values.len() as u32);
        for v in values {
            v.encode(&mut body);
        }
        self.message(response_code::SUCCESS, &body)
    }

    /// A success response to `GET_SITE_INFO`: the site description, with no length before it
    /// (Handle.Net's `encodeGetSiteInfoResponse`).
    pub fn site_info(&self, site: &[u8]) -> Vec<u8> {
        self.message(response_code::SUCCESS, site)
    }

    /// An error response: a response code and a message.
    pub fn error(&self, response_code: u32, message: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + message.len());
        put_array(&mut body, message.as_bytes());
        self.message(response_code, &body)
    }
}

/// What the resolver behind [`respond`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The values to send (already filtered).
    Values(Vec<HandleValue>),
    /// An error response code and its message.
    Error(u32, String),
}

/// The whole answer to one message: `bytes` is an envelope and the message it announces.
/// `resolve` answers a decoded resolution request; `now` stamps the expiration (epoch seconds).
/// `GET_SITE_INFO` is answered as not supported: see [`respond_with_site`].
///
/// Returns none only for what cannot be answered: fewer bytes than an envelope and a header, or
/// a message whose response code is not 0 (a response, which is never answered).
pub fn respond(
    bytes: &[u8],
    now: u32,
    resolve: impl FnOnce(&ResolutionRequest<'_>) -> Lookup,
) -> Option<Vec<u8>> {
    respond_with_site(bytes, now, None, resolve)
}

/// The body of a `GET_SITE_INFO` request: a handle (4+n), as Handle.Net's generic requests
/// carry it (often empty). Bytes after it are ignored, as for resolution requests.
pub fn decode_site_info_request(body: &[u8]) -> Result<&[u8], WireError> {
    let mut r = Reader::new(body);
    let len = r.u32("handle")?;
    if len as usize > MAX_HANDLE_LEN {
        return Err(WireError::HandleTooLong(len.into()));
    }
    r.take(len as usize, "handle")
}

/// [`respond`], answering `GET_SITE_INFO` (operation 2) with `site`, this server's encoded
/// site description (`super::site`); none: not supported here.
pub fn respond_with_site(
    bytes: &[u8],
    now: u32,
    site: Option<&[u8]>,
    resolve: impl FnOnce(&ResolutionRequest<'_>) -> Lookup,
) -> Option<Vec<u8>> {
    let (Ok(envelope), Some(header_bytes)) = (
        raw_envelope(bytes),
        bytes.get(ENVELOPE_LEN..ENVELOPE_LEN + HEADER_LEN),
    ) else {
        return None;
    };
    let header = Header::decode(header_bytes).ok()?;
    if header.response_code != response_code::RESERVED {
        return None;
    }
    let reply = Reply::new(&envelope, &header, now.saturating_add(12 * 3600));
    let protocol_error =
        |reply: &Reply, e: WireError| reply.error(response_code::PROTOCOL_ERROR, &e.to_string());
    if envelope.truncated() {
        return Some(protocol_error(&reply, WireError::MultiPacket));
    }
    if envelope.flags & (envelope_flag::COMPRESSED | envelope_flag::ENCRYPTED) != 0 {
        return Some(protocol_error(&reply, WireError::Transformed));
    }
    let message = match decode_message(bytes) {
        Ok(m) => m,
        Err(e) => return Some(protocol_error(&reply, e)),
    };
    let reply = if header.op_flags & op_flag::RRDG != 0 {
        reply.with_digest(message.header_and_body)
    } else {
        reply
    };
    let out = match header.opcode {
        opcode::RESOLUTION => {
            match ResolutionRequest::decode(message.body) {
                Err(e) => protocol_error(&reply, e),
                Ok(request) => match resolve(&request) {
                    Lookup::Values(values) if values.len() > MAX_VALUES => reply.error(
                        response_code::ERROR,
                        &format!("the record has more than {MAX_VALUES} values"),
                    ),
                    Lookup::Values(values) => {
                        let out = reply.resolution(request.handle, &values);
                        if out.len() > ENVELOPE_LEN + MAX_MESSAGE_LEN {
                            reply.error(
                            response_code::ERROR,
                            &format!("the answer is over {MAX_MESSAGE_LEN} bytes: ask for fewer values"),
                        )
                        } else {
                            out
                        }
                    }
                    Lookup::Error(code, text) => reply.error(code, &text),
                },
            }
        }
        opcode::GET_SITE_INFO => match (decode_site_info_request(message.body), site) {
            (Err(e), _) => protocol_error(&reply, e),
            (Ok(_), Some(site)) => reply.site_info(site),
            (Ok(_), None) => reply.error(
                response_code::OPERATION_NOT_SUPPORTED,
                "this server's site (its public Handle addresses) is not configured",
            ),
        },
        op if opcode::KNOWN_UNSUPPORTED.contains(&op) => reply.error(
            response_code::OPERATION_NOT_SUPPORTED,
            &format!(
                "operation {op} is not supported: this server resolves handles (operation 1) and describes its site (2) only"
            ),
        ),
        op => reply.error(
            response_code::ERROR,
            &format!("unknown operation code {op}"),
        ),
    };
    Some(out)
}

/// The envelope's fields without the length check (an over-long message is still answered).
fn raw_envelope(bytes: &[u8]) -> Result<Envelope, WireError> {
    match Envelope::decode(bytes) {
        Err(WireError::TooLong(_)) => {
            let mut r = Reader::new(bytes);
            Ok(Envelope {
                major: r.u8("envelope")?,
                minor: r.u8("envelope")?,
                flags: r.u8("envelope")?,
                suggested_minor: r.u8("envelope")?,
                session_id: r.u32("envelope")?,
                request_id: r.u32("envelope")?,
                sequence: r.u32("envelope")?,
                message_length: r.u32("envelope")?,
            })
        }
        other => other,
    }
}

/// The most a UDP answer may outweigh its request, as a factor of the request's size.
///
/// A UDP source can be spoofed, so every byte answered beyond the request's is a byte an
/// attacker can reflect at a victim. 4x lets every type- or index-filtered answer through (a
/// `DID` value from a short request is about 2x) and keeps reflection well under DNS's usual
/// 10x and more; whole records, which clients fetch over TCP anyway once they pass 512 bytes,
/// go the same way when they are far larger than the request.
pub const MAX_UDP_AMPLIFICATION: usize = 4;

/// Why a UDP answer went out truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpTruncation {
    /// The message does not fit in one packet ([`MAX_UDP_PACKET`]).
    Packet,
    /// The message is more than [`MAX_UDP_AMPLIFICATION`] times the request.
    Amplification,
}

impl UdpTruncation {
    /// A short name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            UdpTruncation::Packet => "packet",
            UdpTruncation::Amplification => "amplification",
        }
    }
}

/// The UDP datagram answering a request of `request_len` bytes with `message`: the message
/// itself when it fits in one packet ([`MAX_UDP_PACKET`]) and is at most
/// [`MAX_UDP_AMPLIFICATION`] times the request; otherwise [`udp_truncated`] (and why).
pub fn udp_datagram(message: Vec<u8>, request_len: usize) -> (Vec<u8>, Option<UdpTruncation>) {
    if message.len() > MAX_UDP_PACKET {
        (udp_truncated(&message), Some(UdpTruncation::Packet))
    } else if message.len() > request_len.saturating_mul(MAX_UDP_AMPLIFICATION) {
        (udp_truncated(&message), Some(UdpTruncation::Amplification))
    } else {
        (message, None)
    }
}

/// The truncated form of a message for UDP: its envelope alone (20 bytes, no larger than any
/// request), with the truncated flag set, sequence number 0 and the whole message's length.
/// It is the first packet of a split message carrying none of its bytes: the client can only
/// ask again over TCP, and a spoofed victim receives less than the attacker sent.
pub fn udp_truncated(message: &[u8]) -> Vec<u8> {
    let mut out = message[..message.len().min(ENVELOPE_LEN)].to_vec();
    if let Some(flags) = out.get_mut(2) {
        *flags |= envelope_flag::TRUNCATED;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's derived example: `20.500.12345/abc`, request id 0x12345678.
    const EXAMPLE: &str = "020a0000 00000000 12345678 00000000 00000038 \
        00000001 00000000 19000000 ffff0000 6553f100 0000001c \
        00000010 32302e35 30302e31 32333435 2f616263 00000000 00000000 \
        00000000";

    fn example() -> Vec<u8> {
        let hex: String = EXAMPLE.chars().filter(|c| !c.is_whitespace()).collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_the_reference_example() {
        let bytes = example();
        assert_eq!(bytes.len(), 76);
        let m = decode_message(&bytes).unwrap();
        assert_eq!(m.envelope.major, 2);
        assert_eq!(m.envelope.minor, 10);
        assert_eq!(m.envelope.request_id, 0x1234_5678);
        assert_eq!(m.envelope.message_length, 56);
        assert_eq!(m.header.opcode, opcode::RESOLUTION);
        assert_eq!(m.header.op_flags, 0x1900_0000);
        assert_eq!(m.header.site_info_serial, 0xffff);
        assert_eq!(m.header.expiration, 1_700_000_000);
        assert_eq!(m.header.body_length, 28);
        assert!(m.credential.is_empty());
        let r = ResolutionRequest::decode(m.body).unwrap();
        assert_eq!(r.handle, b"20.500.12345/abc");
        assert!(r.indexes.is_empty() && r.types.is_empty());
        let mut again = Vec::new();
        r.encode(&mut again);
        assert_eq!(again, m.body);
    }

    #[test]
    fn answers_with_the_request_id_and_tolerates_trailing_body_bytes() {
        let mut bytes = example();
        // Append the IDIS authBytes field (empty) to the body: body 32, message 60.
        bytes.splice(72..72, [0, 0, 0, 0]);
        bytes[19] = 60;
        bytes[43] = 32;
        let out = respond(&bytes, 1_700_000_000, |r| {
            assert_eq!(r.handle, b"20.500.12345/abc");
            Lookup::Values(vec![HandleValue::new(1, "URL", "https://x.example", 5, 60)])
        })
        .unwrap();
        let m = decode_message(&out).unwrap();
        assert_eq!(m.envelope.request_id, 0x1234_5678);
        assert_eq!(m.header.response_code, response_code::SUCCESS);
        assert_eq!(m.header.opcode, opcode::RESOLUTION);
        let body = ResolutionResponse::decode(m.body, false).unwrap();
        assert_eq!(body.handle, b"20.500.12345/abc");
        assert_eq!(body.values[0].data, b"https://x.example");
        assert_eq!(body.values[0].encoded_len(), {
            let mut v = Vec::new();
            body.values[0].encode(&mut v);
            v.len()
        });
    }

    #[test]
    fn unknown_and_unsupported_operations_get_error_responses() {
        for (op, code) in [
            (999_999, response_code::ERROR),
            (100, response_code::OPERATION_NOT_SUPPORTED),
        ] {
            let mut bytes = example();
            bytes[20..24].copy_from_slice(&u32::to_be_bytes(op));
            let out = respond(&bytes, 0, |_| unreachable!()).unwrap();
            let m = decode_message(&out).unwrap();
            assert_eq!(m.header.response_code, code);
            assert_eq!(m.header.opcode, op);
            assert!(!decode_error_message(m.body, false).unwrap().is_empty());
        }
    }

    #[test]
    fn responses_and_fragments_are_not_answered_and_bad_bodies_are_protocol_errors() {
        let bytes = example();
        assert!(respond(&bytes[..30], 0, |_| unreachable!()).is_none());
        let mut response = bytes.clone();
        response[27] = 1; // response code 1: a response
        assert!(respond(&response, 0, |_| unreachable!()).is_none());
        let mut lying = bytes.clone();
        lying[43] = 200; // body length past the message
        let out = respond(&lying, 0, |_| unreachable!()).unwrap();
        assert_eq!(
            decode_message(&out).unwrap().header.response_code,
            response_code::PROTOCOL_ERROR
        );
        let mut huge = bytes;
        huge[16..20].copy_from_slice(&u32::to_be_bytes(1 << 30));
        let out = respond(&huge, 0, |_| unreachable!()).unwrap();
        assert_eq!(&out[8..12], &[0x12, 0x34, 0x56, 0x78]);
    }

    #[test]
    fn site_info_requests_get_the_site_or_a_handle_error() {
        let mut bytes = example();
        bytes[23] = opcode::GET_SITE_INFO as u8;
        let site = [1u8, 2, 3];
        let out = respond_with_site(&bytes, 0, Some(&site), |_| unreachable!()).unwrap();
        let m = decode_message(&out).unwrap();
        assert_eq!(m.header.response_code, response_code::SUCCESS);
        assert_eq!(m.header.opcode, opcode::GET_SITE_INFO);
        assert_eq!(m.body, site, "the site, with no length before it");
        // Not configured: not supported, as before.
        let out = respond(&bytes, 0, |_| unreachable!()).unwrap();
        let m = decode_message(&out).unwrap();
        assert_eq!(
            m.header.response_code,
            response_code::OPERATION_NOT_SUPPORTED
        );
        // A handle length past the body: a protocol error.
        bytes[47] = 0xff;
        let out = respond_with_site(&bytes, 0, Some(&site), |_| unreachable!()).unwrap();
        let m = decode_message(&out).unwrap();
        assert_eq!(m.header.response_code, response_code::PROTOCOL_ERROR);
    }

    #[test]
    fn request_digest_is_sha256_of_header_and_body() {
        let mut bytes = example();
        bytes[28] = 0x19;
        bytes[29] = 0x80; // RRDG
        let out = respond(&bytes, 0, |_| {
            Lookup::Error(response_code::HANDLE_NOT_FOUND, "no".into())
        })
        .unwrap();
        let m = decode_message(&out).unwrap();
        assert_ne!(m.header.op_flags & op_flag::RRDG, 0);
        assert_eq!(m.body[0], DIGEST_SHA256);
        assert_eq!(&m.body[1..33], Sha256::digest(&bytes[20..72]).as_slice());
        assert_eq!(decode_error_message(m.body, true).unwrap(), b"no");
    }

    #[test]
    fn udp_datagrams_stay_within_512_bytes_and_four_times_the_request() {
        let bytes = example();
        let big = respond(&bytes, 0, |_| {
            Lookup::Values(vec![HandleValue::new(3, "DESC", vec![b'x'; 2000], 0, 60)])
        })
        .unwrap();
        let full_len = big.len();
        let (d, why) = udp_datagram(big, bytes.len());
        assert_eq!(why, Some(UdpTruncation::Packet));
        assert_eq!(d.len(), ENVELOPE_LEN, "the envelope alone");
        let e = Envelope::decode(&d).unwrap();
        assert!(e.truncated());
        assert_eq!(e.request_id, 0x1234_5678);
        assert_eq!(e.sequence, 0);
        assert_eq!(e.message_length as usize, full_len - ENVELOPE_LEN);
        // Under 512 bytes but over 4x the request: truncated too.
        let mid = respond(&bytes, 0, |_| {
            Lookup::Values(vec![HandleValue::new(3, "DESC", vec![b'x'; 300], 0, 60)])
        })
        .unwrap();
        assert!(mid.len() <= MAX_UDP_PACKET && mid.len() > 4 * bytes.len());
        let (d, why) = udp_datagram(mid.clone(), bytes.len());
        assert_eq!(why, Some(UdpTruncation::Amplification));
        assert_eq!(d.len(), ENVELOPE_LEN);
        // The same answer to a request a quarter its size goes whole.
        let (d, why) = udp_datagram(mid.clone(), mid.len() / 4 + 1);
        assert_eq!((d, why), (mid, None));
        let (small, why) = udp_datagram(bytes.clone(), bytes.len());
        assert_eq!((small, why), (bytes, None));
    }
}
