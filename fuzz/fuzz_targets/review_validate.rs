#![no_main]
//! Bytes as the body of a POST /validate: the real handler's answer, with its invariants.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hanzo_s3_operator_fuzz::review(hanzo_s3_operator::webhook::review::Webhook::Validate, data);
});
