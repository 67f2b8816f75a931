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

/// A reload asked for over the socket; the supervisor answers on `reply`.
pub struct ReloadRequest {
    pub reply: oneshot::Sender<Result<String, Vec<String>>>,
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
            let allowed = stream.peer_cred().is_ok_and(|c| c.uid() == 0 || c.uid() == own_uid);
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
                let answer = match line.trim() {
                    "reload" => {
                        let (reply, rx) = oneshot::channel();
                        if tx.send(ReloadRequest { reply }).await.is_err() {
                            "error: the daemon is shutting down\n".to_string()
                        } else {
                            match rx.await {
                                Ok(Ok(report)) => format!("ok: {report}\n"),
                                Ok(Err(errors)) => errors.iter().map(|e| format!("error: {e}\n")).collect(),
                                Err(_) => "error: no answer\n".to_string(),
                            }
                        }
                    }
                    other => format!("error: unknown command `{other}` (known: reload)\n"),
                };
                let _ = w.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok(rx)
}

/// Client side, for `furui reload`: sends `reload`, returns the answer.
pub fn request_reload(path: &Path) -> io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(b"reload\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
