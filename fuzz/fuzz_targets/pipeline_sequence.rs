//! Fuzz target `pipeline_sequence`: what it feeds and checks is `furui::fuzzing::pipeline_sequence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::pipeline_sequence::check(data));
