//! Fuzz target: arbitrary request targets (paths and query strings) sent
//! to the HTTPS API's router, as a recipient and as an inspector. Every
//! answer is a status, every NDJSON body is one JSON object per line;
//! nothing panics.
pub fn check(data: &[u8]) {
    let (oversight, uri) = match data.split_first() {
        Some((b, rest)) => (b & 1 == 1, rest),
        None => return,
    };
    if let Some((status, well_formed)) = crate::export::https::answer_for(uri, oversight) {
        assert!((200..600).contains(&status));
        assert!(well_formed, "an NDJSON line that is not one JSON object");
    }
}
