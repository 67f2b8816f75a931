//! Indicator feeds furui fetches itself: TAXII 2.1 collections of STIX
//! indicators, pulled into the rules directory off the data path. What
//! they hold is compiled like any rules file (`config::rules`).

pub mod http;
pub mod taxii;
