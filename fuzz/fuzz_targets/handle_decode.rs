//! The Handle native decoder and responder on arbitrary bytes: never a panic; every answer
//! decodes, echoes the request id and, cut for UDP, fits in 512 bytes and 4 times the request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bridges::handle::wire::{
    decode_error_message, decode_message, respond, udp_datagram, Envelope, HandleValue, Lookup,
    ResolutionRequest, ResolutionResponse, ENVELOPE_LEN, MAX_UDP_PACKET,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode_message(data) {
        let _ = ResolutionRequest::decode(m.body);
        let _ = ResolutionResponse::decode(m.body, m.header.op_flags & 0x0080_0000 != 0);
        let _ = decode_error_message(m.body, false);
    }
    let answer = respond(data, 1_700_000_000, |request| {
        // Echo the filters back as values, so that the encoder sees arbitrary types too.
        let mut values: Vec<HandleValue> = request
            .indexes
            .iter()
            .take(8)
            .map(|i| HandleValue::new(*i, "URL", request.handle.to_vec(), 0, 60))
            .collect();
        for t in request.types.iter().take(8) {
            values.push(HandleValue::new(2, "DID", t.to_vec(), 1, 60));
        }
        if values.is_empty() {
            Lookup::Error(100, "not found".into())
        } else {
            Lookup::Values(values)
        }
    });
    if let Some(out) = answer {
        let m = decode_message(&out).expect("an answer decodes");
        assert_eq!(&out[8..12], &data[8..12], "the request id is echoed");
        assert_ne!(m.header.response_code, 0);
        let (datagram, _) = udp_datagram(out, data.len());
        assert!(datagram.len() <= MAX_UDP_PACKET);
        assert!(
            datagram.len() <= ENVELOPE_LEN.max(4 * data.len()),
            "bounded amplification"
        );
        Envelope::decode(&datagram).expect("a datagram starts with an envelope");
    }
});
