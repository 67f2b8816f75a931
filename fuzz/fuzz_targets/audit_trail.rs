//! Fuzz target `audit_trail`: what it feeds and checks is `furui::fuzzing::audit_trail`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::audit_trail::check(data));
