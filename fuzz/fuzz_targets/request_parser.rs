//! Feeds arbitrary bytes to the request parser in arbitrary chunks, as a
//! connection would, and checks it never panics and that every parsed
//! argument lies inside the buffer it was parsed from.
#![no_main]

use kvik_protocol::request::{Limits, Parsed, RequestParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // The first byte picks the chunk size the bytes arrive in.
    let chunk = (data[0] as usize % 17) + 1;
    let input = &data[1..];
    let limits = Limits {
        max_bulk_len: 1 << 16,
        ..Limits::default()
    };
    let mut parser = RequestParser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    while fed < input.len() {
        let end = (fed + chunk).min(input.len());
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match parser.parse(&buf, &limits) {
                Ok(Parsed::Request(n)) => {
                    assert!(n <= buf.len());
                    for i in 0..parser.argc() {
                        let _ = parser.arg(&buf, i);
                    }
                    buf.drain(..n);
                }
                Ok(Parsed::Empty(n)) => {
                    assert!(n <= buf.len());
                    buf.drain(..n);
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(_) => return,
            }
        }
    }
});
