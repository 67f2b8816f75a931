//! Fuzz target `feed_files`: what it feeds and checks is `furui::fuzzing::feed_files`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::feed_files::check(data));
