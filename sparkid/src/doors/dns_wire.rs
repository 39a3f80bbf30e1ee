//! The DNS door's answer cache: whole UDP answers, encoded once and sent again as bytes.
//!
//! Most queries are plain: one question, opcode QUERY, at most an OPT record. For those,
//! [`read_query`] takes what decides the answer straight from the datagram (the question in
//! lower case, its type and class, and the EDNS size the answer is fitted to), without building a
//! message. An answer encoded for that key serves every query with the same key: only the
//! query's id, its RD and CD flags and the spelling of its name (0x20 mixed case, echoed back)
//! differ, and [`patch`] writes them into a copy of the cached bytes. Anything else (other
//! opcodes, several questions, compressed names, other records, EDNS options hickory-proto
//! interprets, trailing bytes) has no key and takes the full parser every time.
//!
//! The cache holds the answers of one generation (the zone's settled height,
//! `sparkid_resolver::dns_zone::Authority::settled_height`); the first lookup at a newer
//! generation empties it, so an answer changes with the block that changes it. Its size is
//! bounded in bytes: when full it is emptied, as the zone's own answer cache is.

use std::collections::HashMap;

/// The header's length.
const HEADER: usize = 12;
/// The longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// OPT's record type.
const OPT: u16 = 41;
/// EDNS options that hickory-proto reads as opaque bytes (cookie, TCP keepalive, padding): a
/// query carrying only these is answered alike whatever their content. Others (client subnet,
/// NSID, DAU, ...) are parsed by hickory-proto, which may refuse them: such queries take the
/// full path.
const OPAQUE_OPTIONS: [u16; 3] = [10, 11, 12];
/// The bytes an entry costs beyond its key and answer (hash table slot, two boxes).
const ENTRY_OVERHEAD: usize = 64;

/// What a plain query is, read from its bytes by [`read_query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// Where the question (name, type, class) ends: the question is `bytes[12..question_end]`.
    pub question_end: usize,
}

/// Reads a plain query (see the module's documentation) and writes its cache key into `key`:
/// the question name in ASCII lower case, its type and class, then whether it has EDNS, the
/// UDP size its answer is fitted to (`udp_cap` caps the client's) and the DO bit. None when the
/// message is not a plain query; `key` is then left in an unspecified state.
pub fn read_query(message: &[u8], udp_cap: u16, key: &mut Vec<u8>) -> Option<Query> {
    key.clear();
    let header = message.get(..HEADER)?;
    // QR = 0 (a query), opcode 0 (QUERY).
    if header[2] & 0xf8 != 0 {
        return None;
    }
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let (questions, answers, authority, additionals) = (count(4), count(6), count(8), count(10));
    if questions != 1 || answers != 0 || authority != 0 || additionals > 1 {
        return None;
    }
    // The name: uncompressed labels of at most 63 bytes, 255 bytes in all.
    let mut at = HEADER;
    loop {
        let len = usize::from(*message.get(at)?);
        if len > 63 {
            return None;
        }
        let label = message.get(at..at + 1 + len)?;
        key.push(label[0]);
        key.extend(label[1..].iter().map(u8::to_ascii_lowercase));
        at += 1 + len;
        if at - HEADER > MAX_NAME {
            return None;
        }
        if len == 0 {
            break;
        }
    }
    key.extend_from_slice(message.get(at..at + 4)?);
    at += 4;
    let question_end = at;
    if additionals == 0 {
        key.extend_from_slice(&[0, 0, 0, 0]);
    } else {
        // OPT: the root name, type 41, the client's size in the class, then the extended
        // RCODE, the version and the flags in the TTL, then options.
        let opt = message.get(at..at + 11)?;
        if opt[0] != 0 || u16::from_be_bytes([opt[1], opt[2]]) != OPT {
            return None;
        }
        let size = u16::from_be_bytes([opt[3], opt[4]]).clamp(512, udp_cap.max(512));
        // Extended RCODE 0 and version 0 (others are answered BADVERS by the full path).
        if opt[5] != 0 || opt[6] != 0 {
            return None;
        }
        let dnssec_ok = opt[7] & 0x80;
        let length = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
        at += 11;
        let mut options = message.get(at..at + length)?;
        while !options.is_empty() {
            let head = options.get(..4)?;
            let code = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            if !OPAQUE_OPTIONS.contains(&code) {
                return None;
            }
            options = options.get(4 + len..)?;
        }
        at += length;
        key.push(1);
        key.extend_from_slice(&size.to_be_bytes());
        key.push(dnssec_ok);
    }
    // Nothing after the message: a datagram with trailing bytes takes the full path.
    if at != message.len() {
        return None;
    }
    Some(Query { question_end })
}

/// Writes into `out` the cached `answer` made to fit `query` (a plain query read by
/// [`read_query`]): its id, its RD and CD flags, and its question as spelled.
pub fn patch(answer: &[u8], message: &[u8], query: Query, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(answer);
    let question = HEADER..query.question_end;
    // A cached answer was made for a query with the same key, so its question has the same
    // length; a shorter answer (never cached) is left as it is.
    if out.len() < question.end || message.len() < question.end {
        return;
    }
    out[..2].copy_from_slice(&message[..2]);
    // RD (byte 2, bit 0) and CD (byte 3, bit 4) are copied from the query.
    out[2] = (out[2] & !0x01) | (message[2] & 0x01);
    out[3] = (out[3] & !0x10) | (message[3] & 0x10);
    out[question.clone()].copy_from_slice(&message[question]);
}

/// Encoded UDP answers of one generation, keyed by [`read_query`]'s key, bounded in bytes.
pub struct AnswerCache {
    generation: u64,
    answers: HashMap<Box<[u8]>, Box<[u8]>>,
    bytes: usize,
    max_bytes: usize,
}

impl AnswerCache {
    /// An empty cache holding at most about `max_bytes` (keys, answers and overhead).
    pub fn new(max_bytes: usize) -> AnswerCache {
        AnswerCache {
            generation: 0,
            answers: HashMap::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// The answer kept for `key` at `generation`; a newer generation empties the cache first.
    pub fn get(&mut self, generation: u64, key: &[u8]) -> Option<&[u8]> {
        if generation != self.generation {
            self.answers.clear();
            self.bytes = 0;
            self.generation = generation;
            return None;
        }
        self.answers.get(key).map(|a| &a[..])
    }

    /// Keeps `answer` for `key`, computed at `generation` (read before the answer was, so the
    /// answer is at least as new). Nothing is kept for an older generation than the cache's;
    /// a newer one empties the cache first, and so does a full cache.
    pub fn insert(&mut self, generation: u64, key: &[u8], answer: &[u8]) {
        if generation < self.generation {
            return;
        }
        let cost = key.len() + answer.len() + ENTRY_OVERHEAD;
        if generation > self.generation || self.bytes + cost > self.max_bytes {
            self.answers.clear();
            self.bytes = 0;
            self.generation = generation;
        }
        if cost > self.max_bytes {
            return;
        }
        if let Some(old) = self.answers.insert(key.into(), answer.into()) {
            self.bytes -= key.len() + old.len() + ENTRY_OVERHEAD;
        }
        self.bytes += cost;
    }

    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether no answer is kept.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The bytes the kept answers cost (keys, answers and overhead).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: u16, name: &str, qtype: u16, edns: Option<(u16, &[u8])>) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
        for label in name.split('.').filter(|l| !l.is_empty()) {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        if let Some((size, options)) = edns {
            q.extend_from_slice(&[0, 0, 41]);
            q.extend_from_slice(&size.to_be_bytes());
            q.extend_from_slice(&[0, 0, 0, 0]);
            q.extend_from_slice(&(options.len() as u16).to_be_bytes());
            q.extend_from_slice(options);
        }
        q
    }

    #[test]
    fn spellings_ids_and_client_sizes_share_a_key_but_not_types_or_buckets() {
        let key = |q: &[u8]| {
            let mut k = Vec::new();
            read_query(q, 1232, &mut k).map(|_| k)
        };
        let plain = key(&query(1, "_did.a.example.com", 16, None)).unwrap();
        assert_eq!(
            key(&query(2, "_DiD.A.eXample.com", 16, None)).unwrap(),
            plain
        );
        assert_ne!(
            key(&query(1, "_did.a.example.com", 256, None)).unwrap(),
            plain
        );
        let edns = key(&query(1, "_did.a.example.com", 16, Some((4096, &[])))).unwrap();
        assert_ne!(edns, plain, "EDNS answers carry an OPT");
        // Every size above the cap is fitted to the cap; a cookie changes nothing.
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            key(&query(1, "_did.a.example.com", 16, Some((1400, &cookie)))).unwrap(),
            edns
        );
        assert_ne!(
            key(&query(1, "_did.a.example.com", 16, Some((1000, &[])))).unwrap(),
            edns
        );
    }

    #[test]
    fn what_is_not_a_plain_query_has_no_key() {
        let mut k = Vec::new();
        let good = query(1, "a.example.com", 16, None);
        assert!(read_query(&good, 1232, &mut k).is_some());
        let mut response = good.clone();
        response[2] |= 0x80;
        let mut notify = good.clone();
        notify[2] |= 4 << 3;
        let mut trailing = good.clone();
        trailing.push(0);
        let mut compressed = good[..12].to_vec();
        compressed.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1]);
        let subnet = [0, 8, 0, 4, 0, 1, 0, 0];
        let mut badvers = query(1, "a.example.com", 16, Some((1232, &[])));
        let ttl = badvers.len() - 6;
        badvers[ttl + 1] = 1;
        for bad in [
            &good[..good.len() - 1],
            &response[..],
            &notify[..],
            &trailing[..],
            &compressed[..],
            &query(1, "a.example.com", 16, Some((1232, &subnet)))[..],
            &query(1, "a.example.com", 16, Some((1232, &[0, 10, 0, 9, 1])))[..],
            &badvers[..],
            &[][..],
        ] {
            assert!(read_query(bad, 1232, &mut k).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_cached_answer_takes_the_querys_id_flags_and_spelling() {
        let mut k = Vec::new();
        let first = query(0x1111, "a.example.com", 16, None);
        let q = read_query(&first, 1232, &mut k).unwrap();
        // A stand-in answer: the first query's bytes, QR and AA set, RD clear.
        let mut answer = first.clone();
        answer[2] = 0x84;
        let second = query(0x2222, "A.ExAmple.COM", 16, None);
        let mut out = Vec::new();
        patch(&answer, &second, q, &mut out);
        assert_eq!(&out[..2], &[0x22, 0x22]);
        assert_eq!(out[2], 0x85, "QR and AA kept, RD copied");
        assert_eq!(&out[12..q.question_end], &second[12..q.question_end]);
    }

    #[test]
    fn the_cache_holds_one_generation_within_its_bytes() {
        let mut cache = AnswerCache::new(1000);
        cache.insert(5, b"a", &[1; 100]);
        assert_eq!(cache.get(5, b"a"), Some(&[1u8; 100][..]));
        // An answer computed before the cache moved on is not kept.
        cache.insert(4, b"b", &[2; 100]);
        assert_eq!(cache.get(5, b"b"), None);
        // The next generation forgets everything.
        assert_eq!(cache.get(6, b"a"), None);
        assert!(cache.is_empty());
        for i in 0..20u8 {
            cache.insert(6, &[i], &[i; 100]);
            assert!(cache.bytes() <= 1000, "{}", cache.bytes());
        }
        assert!(cache.len() < 20 && !cache.is_empty());
        cache.insert(6, b"huge", &[0; 2000]);
        assert_eq!(cache.get(6, b"huge"), None);
    }
}
