//! Arbitrary bytes as a session id from a cookie: `SessionId::parse` returns an id that is
//! exactly its input, re-parses to itself and is one safe file-name component, or
//! `Error::InvalidId` quoting a short prefix of the input; and however long the input, parsing
//! allocates only for that short quote.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiondir_fuzz::meter::Meter;
use sessiondir_fuzz::oracle::check_id;

#[global_allocator]
static ALLOCATOR: Meter = Meter::new();

/// The most an error may allocate: 80 characters of at most 4 bytes each.
const QUOTE_BYTES: usize = 80 * 4;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (result, usage) = ALLOCATOR.measure(|| sessiondir::SessionId::parse(text));
        assert!(
            usage.largest <= QUOTE_BYTES && usage.peak <= 2 * QUOTE_BYTES,
            "parsing {} bytes allocated {usage:?}",
            text.len()
        );
        drop(result);
    }
    check_id(data);
});
