//! The reply parser must never panic, and what it parses must re-encode to
//! bytes that parse to the same value.
#![no_main]

use kvik_protocol::Value;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((v, _))) = Value::parse(data) {
        let mut out = Vec::new();
        v.encode(&mut out);
        let (back, used) = Value::parse(&out).expect("re-encoded value parses").expect("complete");
        assert_eq!(used, out.len());
        assert_eq!(back, v);
    }
});
