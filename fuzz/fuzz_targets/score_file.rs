#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spliceboost_fuzz::score_file(data));
