#![no_main]
//! See hanzo_s3_operator_fuzz::manifest for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hanzo_s3_operator_fuzz::manifest(data);
});
