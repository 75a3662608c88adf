#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spliceboost_fuzz::parquet_scan(data));
