//! Lower-case hex of bytes (digests, keys, signatures, JA3): one home for
//! what four modules used to write each their own way.

/// Appends the lower-case hex of `bytes` to `out`.
pub fn push(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// The lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::new();
    push(&mut s, bytes);
    s
}

/// Bytes from hex digits (either case); None if `s` is not whole pairs.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_matches_format() {
        let b: Vec<u8> = (0..=255).collect();
        let s = super::encode(&b);
        assert_eq!(s, b.iter().map(|x| format!("{x:02x}")).collect::<String>());
        assert_eq!(super::decode(&s), Some(b));
        assert_eq!(super::decode("abc"), None);
        assert_eq!(super::decode("zz"), None);
        assert_eq!(super::decode("DEAD"), Some(vec![0xde, 0xad]));
    }
}
