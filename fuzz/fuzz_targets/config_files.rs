//! Fuzz target `config_files`: what it feeds and checks is `furui::fuzzing::config_files`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::config_files::check(data));
