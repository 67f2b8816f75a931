//! Fuzz target `capture_file`: what it feeds and checks is `furui::fuzzing::capture_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::capture_file::check(data));
