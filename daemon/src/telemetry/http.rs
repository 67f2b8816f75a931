//! The metrics endpoint: `GET /metrics` in Prometheus text format. A tiny
//! HTTP/1.0-style responder — one request per connection, bounded reads.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Produces the exposition text; called once per scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

pub async fn serve(listener: TcpListener, render: Render) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let req = std::str::from_utf8(&buf[..n]).unwrap_or("");
            let path = req.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = if req.starts_with("GET ") && (path == "/metrics" || path == "/") {
                ("200 OK", "text/plain; version=0.0.4", render())
            } else {
                ("404 Not Found", "text/plain", "not found; try /metrics\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

/// Blocking scrape of `http://addr/metrics` (for `furui stats` and tests).
pub fn scrape(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: furui\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(std::io::Error::other("metrics endpoint did not answer 200")),
    }
}
