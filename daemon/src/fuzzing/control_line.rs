//! Fuzz target: arbitrary control-socket request lines. Each is a reload
//! request or a refusal naming what was wrong; nothing panics, and only
//! the words the protocol knows ask for anything.
use crate::control::socket::{parse_request, CONFIRM_DOMESTIC_REMOVAL, CONFIRM_RULES_REMOVAL};

pub fn check(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    match parse_request(&line, 1000) {
        Ok(ask) => {
            let mut words = line.split_whitespace();
            assert_eq!(words.next(), Some("reload"));
            let words: Vec<&str> = words.collect();
            assert!(words
                .iter()
                .all(|w| *w == CONFIRM_DOMESTIC_REMOVAL || *w == CONFIRM_RULES_REMOVAL));
            assert_eq!(ask.confirm_domestic_removal, words.contains(&CONFIRM_DOMESTIC_REMOVAL));
            assert_eq!(ask.confirm_rules_removal, words.contains(&CONFIRM_RULES_REMOVAL));
            assert_eq!((ask.uid, ask.feed), (Some(1000), None));
        }
        Err(e) => assert!(e.starts_with("unknown")),
    }
}
