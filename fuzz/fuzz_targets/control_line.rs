//! Fuzz target `control_line`: what it feeds and checks is `furui::fuzzing::control_line`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::control_line::check(data));
