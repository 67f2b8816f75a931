//! Fuzz target `api_query`: what it feeds and checks is `furui::fuzzing::api_query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| furui::fuzzing::api_query::check(data));
