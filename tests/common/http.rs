//! The tests' one HTTP/1.1 client, on hyper (already in the tree through
//! axum): a request and its whole body, or a Server-Sent Events stream read
//! frame by frame. hyper undoes the chunked transfer encoding, so an event
//! split across chunks or reads arrives whole.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::time::Instant;

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    /// The body as sent (a workbook is not text).
    pub bytes: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A header's value, "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends one request on a connection of its own; a JSON body when `body`.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> hyper::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to HTTP");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    sender.send_request(req).await.expect("HTTP response")
}

fn auth(token: Option<&str>) -> Option<String> {
    token.map(|t| format!("Bearer {t}"))
}

/// A request with an optional bearer token and JSON body, and the whole
/// response.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Response {
    http_with(addr, method, path, token, &[], body).await
}

/// [`http`] with more request headers (`accept`, ...).
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<String>,
) -> Response {
    let bearer = auth(token);
    let mut headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    headers.extend_from_slice(extra);
    let r = send(addr, method, path, &headers, body).await;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes();
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body.to_vec(),
    }
}

/// Only the status of a GET (for endless responses such as SSE).
pub async fn http_status_only(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let bearer = auth(token);
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    send(addr, "GET", path, &headers, None)
        .await
        .status()
        .as_u16()
}

/// A Server-Sent Events listener.
pub struct SseClient {
    body: Incoming,
    /// Received and not yet parsed, line ends made `\n`.
    buf: Vec<u8>,
}

impl SseClient {
    pub async fn connect(addr: SocketAddr, path: &str, token: &str) -> SseClient {
        Self::connect_with(addr, path, token, &[]).await
    }

    /// [`SseClient::connect`] with more request headers (`last-event-id`).
    pub async fn connect_with(
        addr: SocketAddr,
        path: &str,
        token: &str,
        extra: &[(&str, &str)],
    ) -> SseClient {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![
            ("authorization", bearer.as_str()),
            ("accept", "text/event-stream"),
        ];
        headers.extend_from_slice(extra);
        let r = send(addr, "GET", path, &headers, None).await;
        assert_eq!(r.status(), 200, "SSE {path}");
        SseClient {
            body: r.into_body(),
            buf: Vec::new(),
        }
    }

    /// The next `(event, data)` within `limit`; data lines joined by `\n`.
    pub async fn next_event(&mut self, limit: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                if let Some(event) = parse_event(&String::from_utf8_lossy(&block)) {
                    return Some(event);
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
                normalize_line_ends(&mut self.buf);
            }
        }
    }
}

impl SseClient {
    /// Whether the server ends the stream within `limit` (events before
    /// the end are skipped).
    pub async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

/// `\r\n` and a lone `\r` end a line as `\n` does; a `\r` at the very end
/// waits for what follows it.
fn normalize_line_ends(buf: &mut Vec<u8>) {
    let mut out = Vec::with_capacity(buf.len());
    let mut i = 0;
    while i < buf.len() {
        match (buf[i], buf.get(i + 1)) {
            (b'\r', Some(b'\n')) => {
                out.push(b'\n');
                i += 2;
            }
            (b'\r', Some(_)) => {
                out.push(b'\n');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    *buf = out;
}

fn parse_event(block: &str) -> Option<(String, String)> {
    let mut event = String::new();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value.to_string(),
            "data" => data.push(value),
            _ => {}
        }
    }
    (!event.is_empty() || !data.is_empty()).then(|| (event, data.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_whatever_the_line_ends() {
        let mut buf = b"event: alert\r\ndata: {\"a\":1}\r".to_vec();
        normalize_line_ends(&mut buf);
        assert!(!buf.windows(2).any(|w| w == b"\n\n"), "not whole yet");
        buf.extend_from_slice(b"\n\r\n: keep-alive\n\n");
        normalize_line_ends(&mut buf);
        let end = buf.windows(2).position(|w| w == b"\n\n").unwrap();
        let block = String::from_utf8_lossy(&buf[..end + 2]).into_owned();
        assert_eq!(
            parse_event(&block),
            Some(("alert".into(), "{\"a\":1}".into()))
        );
        assert_eq!(parse_event(": keep-alive\n\n"), None);
    }
}
