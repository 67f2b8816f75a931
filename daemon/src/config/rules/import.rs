//! What the foreign formats (Suricata rules, MISP, Zeek intel, STIX) share:
//! the options that shape imported rules, the per-file import context, and
//! the summary of what was loaded, refused, skipped or not applicable.
//!
//! A construct furui cannot honour exactly refuses its whole rule, with the
//! file, line, rule and keyword: never a silently half-honoured rule. By
//! default a refusal is a config error; with `skip_refused` the rule is
//! left out and counted.

use std::collections::HashMap;
use std::path::Path;

use super::super::errors::ConfigError;
use crate::classify::NUM_CLASSES;
pub use crate::select::rules::imports::ImportSummary;

/// How imported rules are compiled (from `[selection]`).
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Suricata address variables (`$NAME` without the `$`), besides
    /// `HOME_NET` and `EXTERNAL_NET`, which are the domestic set and its
    /// complement.
    pub address_vars: HashMap<String, String>,
    /// Suricata port variables.
    pub port_vars: HashMap<String, String>,
    /// Leave refused rules out (counted) instead of rejecting the load.
    pub skip_refused: bool,
    /// The classes (measures) imported rules apply to.
    pub classes: [bool; NUM_CLASSES],
}

/// suricata.yaml's default address groups, other than the two furui fixes.
const DEFAULT_ADDRESS_VARS: &[(&str, &str)] = &[
    ("HTTP_SERVERS", "$HOME_NET"),
    ("SMTP_SERVERS", "$HOME_NET"),
    ("SQL_SERVERS", "$HOME_NET"),
    ("DNS_SERVERS", "$HOME_NET"),
    ("TELNET_SERVERS", "$HOME_NET"),
    ("AIM_SERVERS", "$EXTERNAL_NET"),
    ("DC_SERVERS", "$HOME_NET"),
    ("DNP3_SERVER", "$HOME_NET"),
    ("DNP3_CLIENT", "$HOME_NET"),
    ("MODBUS_CLIENT", "$HOME_NET"),
    ("MODBUS_SERVER", "$HOME_NET"),
    ("ENIP_CLIENT", "$HOME_NET"),
    ("ENIP_SERVER", "$HOME_NET"),
];

/// suricata.yaml's default port groups.
const DEFAULT_PORT_VARS: &[(&str, &str)] = &[
    ("HTTP_PORTS", "80"),
    ("SHELLCODE_PORTS", "!80"),
    ("ORACLE_PORTS", "1521"),
    ("SSH_PORTS", "22"),
    ("DNP3_PORTS", "20000"),
    ("MODBUS_PORTS", "502"),
    ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
    ("FTP_PORTS", "21"),
    ("GENEVE_PORTS", "6081"),
    ("VXLAN_PORTS", "4789"),
    ("TEREDO_PORTS", "3544"),
];

impl Default for ImportOptions {
    fn default() -> Self {
        let owned = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut classes = [false; NUM_CLASSES];
        for m in crate::classify::Measure::ALL {
            classes[m.class() as usize] = true;
        }
        ImportOptions {
            address_vars: owned(DEFAULT_ADDRESS_VARS),
            port_vars: owned(DEFAULT_PORT_VARS),
            skip_refused: false,
            classes,
        }
    }
}

/// One file being imported: where its errors and refusals go.
pub struct ImportFile<'a> {
    pub path: &'a Path,
    /// "suricata", "misp", "zeek", "stix".
    pub format: &'static str,
    pub opts: &'a ImportOptions,
    pub summary: &'a mut ImportSummary,
    pub errors: &'a mut Vec<ConfigError>,
}

impl ImportFile<'_> {
    /// A mistake in the file (not a refusal): always an error.
    pub fn error(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.path.to_path_buf(),
            line,
            column: 0,
            message: message.into(),
        });
    }

    /// A rule furui cannot honour exactly: `what` names the rule (e.g.
    /// "sid:2019401"), `keyword` the construct, `why` the reason.
    pub fn refuse(&mut self, line: usize, what: &str, keyword: &str, why: &str) {
        self.summary.count(format!("{} refused {keyword}", self.format));
        let e = ConfigError {
            file: self.path.to_path_buf(),
            line,
            column: 0,
            message: format!("{what} refused: `{keyword}` {why}"),
        };
        self.summary.refusals.push(e.to_string());
        if !self.opts.skip_refused {
            self.errors.push(e);
        }
    }

    /// Counts an outcome that is neither an error nor a refusal.
    pub fn count(&mut self, outcome: &str) {
        self.summary.count(format!("{} {outcome}", self.format));
    }
}
