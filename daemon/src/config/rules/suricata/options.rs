//! A Suricata rule's options, `(key:value; key; …)`: splitting them
//! (quotes and `\;` escapes), decoding `content` strings (`|de ad|` hex),
//! and the numeric forms (`N`, `<N`, `>=N`, `A<>B`, `A-B`).

/// Splits the option list into (key, value) pairs, in order.
pub fn split(s: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        let mut ended = false;
        let mut has_value = false;
        for ch in chars.by_ref() {
            match ch {
                ':' => {
                    has_value = true;
                    break;
                }
                ';' => {
                    ended = true;
                    break;
                }
                c => key.push(c),
            }
        }
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err("an empty option (`;;` or a stray `:`)".into());
        }
        if !has_value {
            if !ended {
                return Err(format!("option `{key}` is not ended by `;`"));
            }
            out.push((key, None));
            continue;
        }
        let (mut value, mut quoted, mut escaped) = (String::new(), false, false);
        ended = false;
        for ch in chars.by_ref() {
            if escaped {
                value.push('\\');
                value.push(ch);
                escaped = false;
                continue;
            }
            match ch {
                '\\' => escaped = true,
                '"' => {
                    quoted = !quoted;
                    value.push(ch);
                }
                ';' if !quoted => {
                    ended = true;
                    break;
                }
                c => value.push(c),
            }
        }
        if !ended {
            return Err(format!("option `{key}` is not ended by `;`"));
        }
        out.push((key, Some(value.trim().to_string())));
    }
}

/// The text inside double quotes, with `\x` escapes kept for `unescape`.
pub fn quoted(v: &str) -> Result<&str, String> {
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .ok_or_else(|| "expects a value in double quotes".to_string())
}

/// `\;` `\"` `\\` → the character itself.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A content string: text with `|hex bytes|` runs and `\` escapes.
pub fn content_bytes(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut hex = false;
    let mut digits = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (hex, c) {
            (false, '|') => hex = true,
            (true, '|') => {
                if !digits.len().is_multiple_of(2) {
                    return Err("a `|hex|` run has an odd number of digits".into());
                }
                out.extend(crate::hex::decode(&digits).ok_or("a `|hex|` run holds a non-hex character")?);
                digits.clear();
                hex = false;
            }
            (true, c) if c.is_whitespace() => {}
            (true, c) if c.is_ascii_hexdigit() => digits.push(c),
            (true, c) => return Err(format!("`{c}` inside a `|hex|` run")),
            (false, '\\') => {
                let n = chars.next().ok_or("content ends with a lone `\\`")?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(n.encode_utf8(&mut buf).as_bytes());
            }
            (false, c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    if hex {
        return Err("a `|hex|` run is not closed".into());
    }
    if out.is_empty() {
        return Err("empty content would match every payload".into());
    }
    Ok(out)
}

/// Parses Suricata's numeric comparisons into an inclusive range:
/// `N`, `<N`, `>N`, `<=N`, `>=N`, `A<>B` (exclusive), `A-B` (inclusive).
/// `Err(None)` means a negation (`!N`), which the caller refuses.
pub fn range<T>(v: &str) -> Result<(T, T), Option<String>>
where
    T: TryFrom<u64> + Into<u64> + Copy + Bounded,
{
    let v = v.trim();
    let num = |x: &str| -> Result<u64, Option<String>> {
        x.trim().parse::<u64>().map_err(|_| {
            Some(format!(
                "`{v}` is not a number or a comparison (N, <N, >N, <=N, >=N, A<>B, A-B)"
            ))
        })
    };
    let max = T::max_value().into();
    let (lo, hi) = if v.starts_with('!') {
        return Err(None);
    } else if let Some((a, b)) = v.split_once("<>") {
        let (a, b) = (num(a)?, num(b)?);
        (a + 1, b.saturating_sub(1))
    } else if let Some(x) = v.strip_prefix("<=") {
        (0, num(x)?)
    } else if let Some(x) = v.strip_prefix(">=") {
        (num(x)?, max)
    } else if let Some(x) = v.strip_prefix('<') {
        let n = num(x)?;
        if n == 0 {
            return Err(Some(format!("`{v}` can match nothing")));
        }
        (0, n - 1)
    } else if let Some(x) = v.strip_prefix('>') {
        (num(x)?.saturating_add(1), max)
    } else if let Some((a, b)) = v.split_once('-') {
        (num(a)?, num(b)?)
    } else {
        let n = num(v)?;
        (n, n)
    };
    if lo > hi || hi > max {
        return Err(Some(format!("`{v}` is empty or out of range (0-{max})")));
    }
    match (T::try_from(lo), T::try_from(hi)) {
        (Ok(lo), Ok(hi)) => Ok((lo, hi)),
        _ => Err(Some(format!("`{v}` is out of range (0-{max})"))),
    }
}

/// The largest value of a numeric field.
pub trait Bounded {
    fn max_value() -> Self;
}
impl Bounded for u8 {
    fn max_value() -> Self {
        u8::MAX
    }
}
impl Bounded for u16 {
    fn max_value() -> Self {
        u16::MAX
    }
}

/// `flags:` → (mask, value) over the TCP flags byte. `*` (any of) is not
/// a mask/value test and is refused by the caller (`Err(None)`).
pub fn tcp_flags(v: &str) -> Result<(u8, u8), Option<String>> {
    let (set, ignore) = v.split_once(',').unwrap_or((v, ""));
    let bit = |c: char| -> Option<u8> {
        Some(match c.to_ascii_uppercase() {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' | '2' => 0x40,
            'C' | '1' => 0x80,
            _ => return None,
        })
    };
    let bad = |c: char| Some(format!("`{c}` is not a TCP flag (F S R P A U C E 0, modifiers + * !)"));
    let mut bits = 0u8;
    let mut modifier = None;
    let mut zero = false;
    for c in set.trim().chars() {
        match c {
            '+' | '*' | '!' => modifier = Some(c),
            '0' => zero = true,
            c => bits |= bit(c).ok_or_else(|| bad(c))?,
        }
    }
    let mut ignored = 0u8;
    for c in ignore.trim().chars() {
        ignored |= bit(c).ok_or_else(|| bad(c))?;
    }
    if zero && bits != 0 {
        return Err(Some("`0` (no flags) cannot be combined with flags".into()));
    }
    Ok(match modifier {
        // Exactly these flags, except the ignored ones.
        None => (!ignored, bits & !ignored),
        // These flags and possibly others.
        Some('+') => (bits, bits),
        // None of these flags.
        Some('!') => (bits, 0),
        _ => return Err(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_on_unquoted_semicolons_only() {
        let o = split(r#"msg:"a; \"b\""; content:"x|3b|y"; nocase; sid:1;"#).unwrap();
        let keys: Vec<_> = o.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["msg", "content", "nocase", "sid"]);
        assert_eq!(unescape(quoted(o[0].1.as_deref().unwrap()).unwrap()), "a; \"b\"");
        assert_eq!(o[2].1, None);
        assert!(split("sid:1").unwrap_err().contains("not ended"));
        let escaped = split(r#"content:"a\;b";"#).unwrap();
        assert_eq!(
            content_bytes(quoted(escaped[0].1.as_deref().unwrap()).unwrap()).unwrap(),
            b"a;b"
        );
    }

    #[test]
    fn content_mixes_text_and_hex() {
        assert_eq!(content_bytes("GET|20 2f|x").unwrap(), b"GET /x");
        assert_eq!(content_bytes("|de ad be ef|").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert!(content_bytes("|de a|").unwrap_err().contains("odd"));
        assert!(content_bytes("|zz|").unwrap_err().contains("inside"));
        assert!(content_bytes("|de").unwrap_err().contains("not closed"));
        assert!(content_bytes("").unwrap_err().contains("empty"));
    }

    #[test]
    fn numeric_forms_become_inclusive_ranges() {
        assert_eq!(range::<u8>("5"), Ok((5, 5)));
        assert_eq!(range::<u8>("<5"), Ok((0, 4)));
        assert_eq!(range::<u8>(">250"), Ok((251, 255)));
        assert_eq!(range::<u8>("<=5"), Ok((0, 5)));
        assert_eq!(range::<u8>(">=5"), Ok((5, 255)));
        assert_eq!(range::<u16>("300<>400"), Ok((301, 399)));
        assert_eq!(range::<u16>("300-400"), Ok((300, 400)));
        assert_eq!(range::<u8>("!5"), Err(None));
        assert!(range::<u8>("300").is_err());
        assert!(range::<u8>("<0").is_err());
        assert!(range::<u8>("5<>6").is_err());
        assert!(range::<u8>("x").is_err());
    }

    #[test]
    fn tcp_flags_modifiers_map_to_mask_and_value() {
        assert_eq!(tcp_flags("S"), Ok((0xff, 0x02)));
        assert_eq!(tcp_flags("S,CE"), Ok((0x3f, 0x02)));
        assert_eq!(tcp_flags("S,12"), Ok((0x3f, 0x02)));
        assert_eq!(tcp_flags("SA+"), Ok((0x12, 0x12)));
        assert_eq!(tcp_flags("+SA"), Ok((0x12, 0x12)));
        assert_eq!(tcp_flags("!R"), Ok((0x04, 0)));
        assert_eq!(tcp_flags("0"), Ok((0xff, 0)));
        assert_eq!(tcp_flags("*SA"), Err(None));
        assert!(tcp_flags("SX").is_err());
    }
}
