//! The control socket: `furui reload` asks the running daemon to reload
//! and gets back the result, errors included. A Unix socket of mode 0600,
//! so only root and the daemon's own user can connect; peers of any other
//! uid are refused even if the mode is loosened.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// Who asked for a reload, and what they confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadAsk {
    /// The peer's uid over the socket; None for SIGHUP.
    pub uid: Option<u32>,
    /// `furui reload --confirm-domestic-removal`: the operator accepts that
    /// this reload stops covering more of the domestic set than
    /// `[domestic] reload_max_removed_percent` allows.
    pub confirm_domestic_removal: bool,
    /// `furui reload --confirm-rules-removal`: the operator accepts that
    /// this reload drops more of the rules in force than `[selection]
    /// reload_max_removed_percent` allows.
    pub confirm_rules_removal: bool,
    /// A TAXII feed's pull changed its bundle (the feed's name).
    pub feed: Option<&'static str>,
}

impl ReloadAsk {
    pub const SIGHUP: ReloadAsk = ReloadAsk {
        uid: None,
        confirm_domestic_removal: false,
        confirm_rules_removal: false,
        feed: None,
    };

    /// A reload a feed asks for after its pull changed the rules.
    pub const FEED: ReloadAsk = ReloadAsk {
        uid: None,
        confirm_domestic_removal: false,
        confirm_rules_removal: false,
        feed: Some("taxii"),
    };
}

/// The word after `reload` that confirms a large domestic removal.
pub const CONFIRM_DOMESTIC_REMOVAL: &str = "confirm-domestic-removal";

/// The word after `reload` that confirms dropping many rules.
pub const CONFIRM_RULES_REMOVAL: &str = "confirm-rules-removal";

/// A reload asked for over the socket; the supervisor answers on `reply`.
pub struct ReloadRequest {
    pub ask: ReloadAsk,
    pub reply: oneshot::Sender<Result<String, Vec<String>>>,
}

/// The request line: `reload`, or `reload confirm-domestic-removal`.
pub fn parse_request(line: &str, uid: u32) -> Result<ReloadAsk, String> {
    let mut words = line.split_whitespace();
    if words.next() != Some("reload") {
        return Err(format!(
            "unknown command `{}` (known: reload [{CONFIRM_DOMESTIC_REMOVAL}] [{CONFIRM_RULES_REMOVAL}])",
            line.trim()
        ));
    }
    let mut ask = ReloadAsk {
        uid: Some(uid),
        confirm_domestic_removal: false,
        confirm_rules_removal: false,
        feed: None,
    };
    for w in words {
        match w {
            CONFIRM_DOMESTIC_REMOVAL => ask.confirm_domestic_removal = true,
            CONFIRM_RULES_REMOVAL => ask.confirm_rules_removal = true,
            other => {
                return Err(format!(
                    "unknown reload option `{other}` (known: {CONFIRM_DOMESTIC_REMOVAL}, {CONFIRM_RULES_REMOVAL})"
                ))
            }
        }
    }
    Ok(ask)
}

/// Binds the socket (replacing a stale one) and serves it; requests come
/// out of the returned channel.
pub fn listen(path: &Path) -> io::Result<mpsc::Receiver<ReloadRequest>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let (tx, rx) = mpsc::channel(4);
    let own_uid = nix::unistd::geteuid().as_raw();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let uid = stream.peer_cred().ok().map(|c| c.uid());
            let allowed = uid.is_some_and(|u| u == 0 || u == own_uid);
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                if !allowed {
                    let _ = w.write_all(b"error: not allowed\n").await;
                    return;
                }
                let mut line = String::new();
                let mut r = BufReader::new(r);
                if tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line))
                    .await
                    .is_err()
                {
                    return;
                }
                let answer = match parse_request(&line, uid.unwrap_or(u32::MAX)) {
                    Ok(ask) => {
                        let (reply, rx) = oneshot::channel();
                        if tx.send(ReloadRequest { ask, reply }).await.is_err() {
                            "error: the daemon is shutting down\n".to_string()
                        } else {
                            match rx.await {
                                Ok(Ok(report)) => format!("ok: {report}\n"),
                                Ok(Err(errors)) => errors.iter().map(|e| format!("error: {e}\n")).collect(),
                                Err(_) => "error: no answer\n".to_string(),
                            }
                        }
                    }
                    Err(e) => format!("error: {e}\n"),
                };
                let _ = w.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok(rx)
}

/// Client side, for `furui reload`: sends `reload` (with the confirmation
/// if asked), returns the answer.
pub fn request_reload(path: &Path, confirm_domestic_removal: bool, confirm_rules_removal: bool) -> io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut line = "reload".to_string();
    if confirm_domestic_removal {
        line.push_str(&format!(" {CONFIRM_DOMESTIC_REMOVAL}"));
    }
    if confirm_rules_removal {
        line.push_str(&format!(" {CONFIRM_RULES_REMOVAL}"));
    }
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request("reload\n", 0),
            Ok(ReloadAsk {
                uid: Some(0),
                confirm_domestic_removal: false,
                confirm_rules_removal: false,
                feed: None,
            })
        );
        assert_eq!(
            parse_request("reload confirm-domestic-removal\n", 1000),
            Ok(ReloadAsk {
                uid: Some(1000),
                confirm_domestic_removal: true,
                confirm_rules_removal: false,
                feed: None,
            })
        );
        assert_eq!(
            parse_request("reload confirm-rules-removal confirm-domestic-removal\n", 7),
            Ok(ReloadAsk {
                uid: Some(7),
                confirm_domestic_removal: true,
                confirm_rules_removal: true,
                feed: None,
            })
        );
        assert!(parse_request("reload --force\n", 0)
            .unwrap_err()
            .contains("unknown reload option"));
        assert!(parse_request("stop\n", 0)
            .unwrap_err()
            .contains("unknown command `stop`"));
    }
}
