//! Configuration errors that point at a file and a line.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one file, with its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every error found in one validation pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} configuration error{}:", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Collects errors for one file, turning byte spans into lines.
pub struct Collector<'a> {
    file: &'a Path,
    text: &'a str,
    pub errors: &'a mut Vec<ConfigError>,
}

impl<'a> Collector<'a> {
    /// A `*_percent` setting: its value (or `default`), or an error.
    pub fn percent(&mut self, v: &Option<toml::Spanned<u8>>, key: &str, default: u8) -> Option<u8> {
        match v {
            None => Some(default),
            Some(p) if *p.get_ref() <= 100 => Some(*p.get_ref()),
            Some(p) => {
                self.at(p.span(), format!("{key} = {} is not a percentage (0-100)", p.get_ref()));
                None
            }
        }
    }

    /// A name made of ASCII letters, digits, '-' and '_' (`what` names
    /// the thing in the error).
    pub fn plain_name(&mut self, name: &toml::Spanned<String>, what: &str) {
        let n = name.get_ref();
        if n.is_empty() || !n.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
            self.at(
                name.span(),
                format!("{what} `{n}` must be non-empty ASCII letters, digits, '-' or '_'"),
            );
        }
    }

    pub fn new(file: &'a Path, text: &'a str, errors: &'a mut Vec<ConfigError>) -> Self {
        Collector { file, text, errors }
    }

    pub fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The file this collector reports on.
    pub fn file(&self) -> &Path {
        self.file
    }

    /// 1-based line and column of a span's start.
    pub fn line_col(&self, span: Range<usize>) -> (usize, usize) {
        line_col(self.text, span.start)
    }

    pub fn at_line(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column: 1,
            message: message.into(),
        });
    }

    pub fn from_toml(&mut self, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        self.at(span, e.message().trim().to_string());
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 8), (2, 3));
    }
}
