#![no_main]
//! See hanzo_s3_operator_fuzz::quantity for what is checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hanzo_s3_operator_fuzz::quantity(data);
});
