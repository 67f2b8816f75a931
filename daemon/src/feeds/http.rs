//! A small HTTP/1.1 GET client for the feeds: one request per connection,
//! over TCP or TLS (rustls, the configured CA only), with a deadline and a
//! bound on the response size.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

use crate::config::taxii::Url;

/// The largest response furui reads (a TAXII page of indicators).
pub const MAX_BODY: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("TLS with {host}: {source}")]
    Tls { host: String, source: std::io::Error },
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("HTTP: {}", chain(.0))]
    Http(#[from] hyper::Error),
    #[error("the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("the response body: {0}")]
    Body(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// An error and its causes, `a: b: c` (a refused TLS handshake shows up
/// as hyper's connection error caused by the peer's alert).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A response: status, the headers furui reads, body.
pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// GETs `path_and_query` on `url`'s server with `headers`.
pub async fn get(
    url: &Url,
    path_and_query: &str,
    headers: &[(&str, String)],
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    tokio::time::timeout(timeout, get_inner(url, path_and_query, headers, tls))
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}

async fn get_inner(
    url: &Url,
    path_and_query: &str,
    headers: &[(&str, String)],
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Response, HttpError> {
    let host = url.host.trim_start_matches('[').trim_end_matches(']').to_string();
    let tcp = tokio::net::TcpStream::connect((host.as_str(), url.port))
        .await
        .map_err(|source| HttpError::Connect {
            host: host.clone(),
            port: url.port,
            source,
        })?;
    match tls {
        None => send(TokioIo::new(tcp), url, path_and_query, headers).await,
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| HttpError::ServerName(host.clone()))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|source| HttpError::Tls { host, source })?;
            send(TokioIo::new(stream), url, path_and_query, headers).await
        }
    }
}

async fn send<S>(
    io: TokioIo<S>,
    url: &Url,
    path_and_query: &str,
    headers: &[(&str, String)],
) -> Result<Response, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(conn);
    let default_port = if url.https { 443 } else { 80 };
    let host_header = if url.port == default_port {
        url.host.clone()
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let mut req = hyper::Request::get(path_and_query).header(hyper::header::HOST, host_header);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = sender.send_request(req.body(Empty::<Bytes>::new())?).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| HttpError::Body(e.to_string()))?
        .to_bytes();
    driver.abort();
    Ok(Response { status, headers, body })
}

/// `Authorization: Basic …` for a user and password.
pub fn basic_auth(user: &str, password: &str) -> zeroize::Zeroizing<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = zeroize::Zeroizing::new(format!("{user}:{password}").into_bytes());
    let mut out = String::from("Basic ");
    for chunk in raw.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    zeroize::Zeroizing::new(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_auth_is_rfc7617_base64() {
        // RFC 7617 section 2's example.
        assert_eq!(
            *super::basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(*super::basic_auth("a", "b"), "Basic YTpi");
        assert_eq!(*super::basic_auth("ab", "c"), "Basic YWI6Yw==");
    }
}
