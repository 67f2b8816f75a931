//! `[metrics]` and `[control]`: the daemon's own endpoints, the Prometheus
//! listener and the Unix socket of `furui reload`.

use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::read::unspanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: default_listen(),
        }
    }
}

pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
fn default_listen() -> Spanned<String> {
    unspanned(DEFAULT_METRICS_LISTEN.to_string())
}

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/furui/control.sock";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Unix socket for `furui reload` (mode 0600: root and the daemon's user).
    #[serde(default = "default_control_socket")]
    pub socket: String,
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection {
            socket: default_control_socket(),
        }
    }
}

fn default_control_socket() -> String {
    DEFAULT_CONTROL_SOCKET.to_string()
}

pub(super) fn validate_metrics(m: &MetricsSection, c: &mut Collector<'_>) -> Option<SocketAddr> {
    match m.listen.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            c.at(
                m.listen.span(),
                format!(
                    "metrics listen address `{}` is not ADDR:PORT (e.g. 127.0.0.1:9464)",
                    m.listen.get_ref()
                ),
            );
            None
        }
    }
}
