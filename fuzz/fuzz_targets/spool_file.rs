//! Fuzz target `spool_file`: what it feeds and checks is `furui::fuzzing::spool_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::spool_file::check(data));
