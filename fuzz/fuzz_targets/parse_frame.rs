//! Fuzz target `parse_frame`: what it feeds and checks is `furui::fuzzing::parse_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::parse_frame::check(data));
