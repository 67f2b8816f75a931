//! The STIX 2.1 patterning language, the subset furui can decide per
//! packet: observation expressions joined by OR, each a comparison
//! expression of `=`, `IN` and `ISSUBSET` comparisons joined by AND/OR
//! with parentheses. The result is in disjunctive normal form: a list of
//! conjunctions, each of which becomes one rule. Anything else is refused
//! with the construct's name.

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Int(i64),
}

/// A comparison operator furui honours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    In,
    IsSubset,
}

/// `object-type:path op value(s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmp {
    pub object: String,
    pub path: String,
    pub op: Op,
    pub values: Vec<Lit>,
}

/// Why a pattern cannot be used.
#[derive(Debug, PartialEq)]
pub enum PatternIssue {
    /// Not a valid pattern.
    Syntax(String),
    /// Valid, but outside the subset: (construct, reason).
    Refuse(String, &'static str),
}

/// The conjunctions a pattern may produce before it is refused as too
/// complex (the AND of ORs multiplies out).
pub const MAX_CONJUNCTIONS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Op(String),
    Word(String),
    Str(String),
    Int(i64),
}

fn lex(s: &str) -> Result<Vec<Tok>, PatternIssue> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '[' | ']' | '(' | ')' | ',' => {
                out.push(match c {
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Comma,
                });
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                if b.get(i + 1) == Some(&'=') {
                    op.push('=');
                    i += 1;
                }
                out.push(Tok::Op(op));
                i += 1;
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(PatternIssue::Syntax("a string is not closed".into())),
                        Some('\\') => {
                            v.extend(b.get(i + 1));
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_ascii_digit() || c == '-' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                let start = i;
                i += 1;
                while b.get(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
                let text: String = b[start..i].iter().collect();
                if b.get(i).is_some_and(|d| *d == '.' || d.is_ascii_alphabetic()) {
                    return Err(PatternIssue::Refuse(text, "(a non-integer number) is not honoured"));
                }
                out.push(Tok::Int(
                    text.parse()
                        .map_err(|_| PatternIssue::Syntax(format!("`{text}` is out of range")))?,
                ));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                // Object paths: `network-traffic:protocols[*]`, `a.b`,
                // `file:hashes.'SHA-256'`.
                loop {
                    while b.get(i).is_some_and(|d| {
                        d.is_ascii_alphanumeric()
                            || matches!(d, '-' | '_' | ':' | '.' | '*')
                            || (*d == '[' && b[start..i].contains(&':'))
                            || (*d == ']' && b[start..i].contains(&'['))
                    }) {
                        i += 1;
                    }
                    if b.get(i) == Some(&'\'') && i > start && b[i - 1] == '.' {
                        let close = b[i + 1..].iter().position(|d| *d == '\'');
                        let Some(close) = close else {
                            return Err(PatternIssue::Syntax("a quoted path part is not closed".into()));
                        };
                        i += close + 2;
                        continue;
                    }
                    break;
                }
                let w: String = b[start..i].iter().collect();
                // A prefixed literal: t'…' (timestamp), h'…', b'…'.
                if b.get(i) == Some(&'\'') {
                    return Err(PatternIssue::Refuse(
                        format!("{w}'…'"),
                        "(a typed literal) is not honoured",
                    ));
                }
                out.push(Tok::Word(w));
            }
            other => return Err(PatternIssue::Syntax(format!("unexpected `{other}`"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

type Dnf = Vec<Vec<Cmp>>;

fn keyword(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
}

/// Parses a pattern into OR-of-AND comparisons.
pub fn parse(s: &str) -> Result<Dnf, PatternIssue> {
    let mut p = Parser { toks: lex(s)?, at: 0 };
    let d = p.pattern()?;
    match p.peek() {
        None => Ok(d),
        Some(t) => Err(PatternIssue::Syntax(format!("unexpected {t:?} after the pattern"))),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), PatternIssue> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            _ => Err(PatternIssue::Syntax(format!("expected {what}"))),
        }
    }

    fn pattern(&mut self) -> Result<Dnf, PatternIssue> {
        let mut d = self.observation()?;
        loop {
            if keyword(self.peek(), "OR") {
                self.next();
                d.extend(self.observation()?);
                if d.len() > MAX_CONJUNCTIONS {
                    return Err(PatternIssue::Refuse("pattern size".into(), "has too many alternatives"));
                }
            } else if keyword(self.peek(), "AND") {
                return Err(PatternIssue::Refuse(
                    "AND between observations".into(),
                    "is not honoured: it joins separate observations, not one packet",
                ));
            } else if keyword(self.peek(), "FOLLOWEDBY") {
                return Err(PatternIssue::Refuse(
                    "FOLLOWEDBY".into(),
                    "(an ordered sequence) is not honoured",
                ));
            } else {
                return Ok(d);
            }
        }
    }

    fn observation(&mut self) -> Result<Dnf, PatternIssue> {
        let d = match self.next() {
            Some(Tok::LBracket) => {
                let d = self.comparison_or()?;
                self.expect(Tok::RBracket, "`]`")?;
                d
            }
            Some(Tok::LParen) => {
                let d = self.pattern()?;
                self.expect(Tok::RParen, "`)`")?;
                d
            }
            _ => return Err(PatternIssue::Syntax("expected `[` or `(`".into())),
        };
        for q in ["WITHIN", "REPEATS", "START"] {
            if keyword(self.peek(), q) {
                return Err(PatternIssue::Refuse(
                    q.into(),
                    "(an observation qualifier) is not honoured",
                ));
            }
        }
        Ok(d)
    }

    fn comparison_or(&mut self) -> Result<Dnf, PatternIssue> {
        let mut d = self.comparison_and()?;
        while keyword(self.peek(), "OR") {
            self.next();
            d.extend(self.comparison_and()?);
            if d.len() > MAX_CONJUNCTIONS {
                return Err(PatternIssue::Refuse("pattern size".into(), "has too many alternatives"));
            }
        }
        Ok(d)
    }

    fn comparison_and(&mut self) -> Result<Dnf, PatternIssue> {
        let mut d = self.comparison_atom()?;
        while keyword(self.peek(), "AND") {
            self.next();
            let rhs = self.comparison_atom()?;
            if d.len() * rhs.len() > MAX_CONJUNCTIONS {
                return Err(PatternIssue::Refuse("pattern size".into(), "has too many alternatives"));
            }
            d = d
                .iter()
                .flat_map(|a| rhs.iter().map(move |b| a.iter().chain(b).cloned().collect()))
                .collect();
        }
        Ok(d)
    }

    fn comparison_atom(&mut self) -> Result<Dnf, PatternIssue> {
        if self.peek() == Some(&Tok::LParen) {
            self.next();
            let d = self.comparison_or()?;
            self.expect(Tok::RParen, "`)`")?;
            return Ok(d);
        }
        let Some(Tok::Word(path)) = self.next() else {
            return Err(PatternIssue::Syntax("expected an object path".into()));
        };
        if path.eq_ignore_ascii_case("EXISTS") {
            return Err(PatternIssue::Refuse("EXISTS".into(), "is not honoured"));
        }
        let Some((object, prop)) = path.split_once(':') else {
            return Err(PatternIssue::Syntax(format!("`{path}` is not object-type:property")));
        };
        if keyword(self.peek(), "NOT") {
            return Err(PatternIssue::Refuse(
                "NOT".into(),
                "(a negated comparison) is not honoured",
            ));
        }
        let op = match self.next() {
            Some(Tok::Op(o)) if o == "=" => Op::Eq,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => Op::In,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ISSUBSET") => Op::IsSubset,
            Some(Tok::Op(o)) => return Err(PatternIssue::Refuse(format!("operator {o}"), "is not honoured")),
            Some(Tok::Word(w)) => {
                let w = w.to_ascii_uppercase();
                return Err(match w.as_str() {
                    "LIKE" | "MATCHES" | "ISSUPERSET" => {
                        PatternIssue::Refuse(format!("operator {w}"), "is not honoured")
                    }
                    _ => PatternIssue::Syntax(format!("`{w}` is not a comparison operator")),
                });
            }
            _ => return Err(PatternIssue::Syntax("expected a comparison operator".into())),
        };
        let values = if op == Op::In {
            self.expect(Tok::LParen, "`(` after IN")?;
            let mut v = Vec::new();
            loop {
                v.push(self.literal()?);
                match self.next() {
                    Some(Tok::Comma) => {}
                    Some(Tok::RParen) => break,
                    _ => return Err(PatternIssue::Syntax("expected `,` or `)` in an IN list".into())),
                }
            }
            v
        } else {
            vec![self.literal()?]
        };
        Ok(vec![vec![Cmp {
            object: object.to_string(),
            path: prop.to_string(),
            op,
            values,
        }]])
    }

    fn literal(&mut self) -> Result<Lit, PatternIssue> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Int(n)) => Ok(Lit::Int(n)),
            Some(Tok::Word(w)) if w == "true" || w == "false" => {
                Err(PatternIssue::Refuse("a boolean".into(), "is not honoured"))
            }
            _ => Err(PatternIssue::Syntax("expected a string or an integer".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Lit {
        Lit::Str(x.into())
    }

    #[test]
    fn and_binds_tighter_than_or_and_observations_or_together() {
        let d = parse("[ipv4-addr:value = '203.0.113.1' OR ipv4-addr:value = '203.0.113.2'] OR [ipv6-addr:value ISSUBSET '2001:db8::/32']").unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[2][0].op, Op::IsSubset);
        let d = parse("[network-traffic:dst_port = 443 AND (network-traffic:dst_ref.value = '198.51.100.1' OR network-traffic:dst_ref.value = '198.51.100.2')]").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].len(), 2);
        assert_eq!(d[1][1].values, [s("198.51.100.2")]);
        let d = parse("[network-traffic:src_port IN (1, 2,3) AND network-traffic:protocols[*] = 'tcp']").unwrap();
        assert_eq!(d[0][0].values, [Lit::Int(1), Lit::Int(2), Lit::Int(3)]);
        assert_eq!(d[0][1].path, "protocols[*]");
        let d = parse("[ipv4-addr:value = 'it\\'s']").unwrap();
        assert_eq!(d[0][0].values, [s("it's")]);
    }

    #[test]
    fn constructs_outside_the_subset_are_refused_by_name() {
        for (p, what) in [
            ("[a:x = '1'] AND [b:y = '2']", "AND between observations"),
            ("[a:x = '1'] FOLLOWEDBY [b:y = '2']", "FOLLOWEDBY"),
            ("[a:x = '1'] WITHIN 300 SECONDS", "WITHIN"),
            ("[a:x = '1'] REPEATS 5 TIMES", "REPEATS"),
            ("[a:x != '1']", "operator !="),
            ("[a:x > 5]", "operator >"),
            ("[a:x LIKE 'a%']", "operator LIKE"),
            ("[a:x MATCHES '^a']", "operator MATCHES"),
            ("[a:x NOT = '1']", "NOT"),
            ("[file:created = t'2020-01-01T00:00:00Z']", "t'…'"),
        ] {
            match parse(p) {
                Err(PatternIssue::Refuse(k, _)) => assert_eq!(k, what, "{p}"),
                other => panic!("{p}: {other:?}"),
            }
        }
        for bad in ["[a:x = '1'", "a:x = '1'", "[a:x = ]", "[ax = '1']", "[a:x = 'open"] {
            assert!(matches!(parse(bad), Err(PatternIssue::Syntax(_))), "{bad}");
        }
    }
}
