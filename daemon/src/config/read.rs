//! Reading TOML values into section shapes: each failure becomes an error
//! with its line in the shared collector, never a stop at the first one.

use serde::de::DeserializeOwned;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use toml::de::{DeValue, ValueDeserializer};
use toml::Spanned;

use super::errors::Collector;

/// `v` as a `T`, or None with the error reported.
pub(crate) fn de<T: DeserializeOwned>(v: &Spanned<DeValue<'_>>, c: &mut Collector<'_>) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(v.clone())) {
        Ok(t) => Some(t),
        Err(e) => {
            c.from_toml(&e);
            None
        }
    }
}

/// A section that has defaults: `v` as a `T`, or the defaults with `ok`
/// cleared (so that no `Config` is built from them).
pub(super) fn de_or_default<T: DeserializeOwned + Default>(
    v: &Spanned<DeValue<'_>>,
    ok: &mut bool,
    c: &mut Collector<'_>,
) -> T {
    de(v, c).unwrap_or_else(|| {
        *ok = false;
        T::default()
    })
}

/// An optional section: `v` as a `T`, or None with `ok` cleared.
pub(super) fn de_optional<T: DeserializeOwned>(
    v: &Spanned<DeValue<'_>>,
    ok: &mut bool,
    c: &mut Collector<'_>,
) -> Option<T> {
    let t = de(v, c);
    *ok &= t.is_some();
    t
}

/// An array of tables (`[[name]]`): each item deserialized on its own, so
/// every bad item is reported. False if any item failed.
pub(super) fn array_of<T: DeserializeOwned>(
    name: &str,
    value: &Spanned<DeValue<'_>>,
    out: &mut Vec<T>,
    c: &mut Collector<'_>,
) -> bool {
    match value.get_ref() {
        DeValue::Array(a) => {
            let mut ok = true;
            for item in a.iter() {
                match de::<T>(item, c) {
                    Some(s) => out.push(s),
                    None => ok = false,
                }
            }
            ok
        }
        _ => {
            c.at(
                value.span(),
                format!("`{name}` must be an array of tables ([[{name}]])"),
            );
            false
        }
    }
}

/// An RFC 3339 date-time, written as a string or a TOML datetime.
pub(crate) fn parse_time(v: &Spanned<toml::Value>, what: &str, c: &mut Collector<'_>) -> Option<OffsetDateTime> {
    let s = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => {
            c.at(
                v.span(),
                format!("{what} must be an RFC 3339 date-time, e.g. \"2026-01-01T00:00:00Z\""),
            );
            return None;
        }
    };
    match OffsetDateTime::parse(&s, &Rfc3339) {
        Ok(t) => Some(t),
        Err(_) => {
            c.at(
                v.span(),
                format!("{what} `{s}` is not an RFC 3339 date-time with offset, e.g. \"2026-01-01T00:00:00Z\""),
            );
            None
        }
    }
}

/// A default value, which has no line of its own.
pub(super) fn unspanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}
