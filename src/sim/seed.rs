//! What muckwatch must know before the fleet drives: firms, vehicles, permits, and how
//! to tell it, through the real HTTP API with an admin token, as an administrator
//! would (so seeding exercises the same validation and registry updates).

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::permit::Permit;

#[derive(Debug, Clone, PartialEq)]
pub struct SeedVehicle {
    pub plate: String,
    pub device_id: String,
    pub firm_id: String,
    pub rated_load_t: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeedData {
    /// (id, name)
    pub firms: Vec<(String, String)>,
    pub vehicles: Vec<SeedVehicle>,
    pub permits: Vec<Permit>,
}

impl SeedData {
    /// The request bodies, in the order they must be sent (firms before the vehicles
    /// and permits that name them).
    pub fn requests(&self) -> Vec<(&'static str, Value)> {
        let firms = self
            .firms
            .iter()
            .map(|(id, name)| ("/api/v1/firms", json!({"id": id, "name": name})));
        let vehicles = self.vehicles.iter().map(|v| {
            ("/api/v1/vehicles", json!({"plate": v.plate, "device_id": v.device_id, "firm_id": v.firm_id, "rated_load_t": v.rated_load_t}))
        });
        let permits = self
            .permits
            .iter()
            .map(|p| ("/api/v1/permits", p.to_json()));
        firms.chain(vehicles).chain(permits).collect()
    }
}

/// How seeding went: objects created, and objects that were there already (a second
/// run of the same scenario against the same database).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub created: usize,
    pub existing: usize,
}

/// Sends the seed to muckwatch's API at `addr` (`host:port`, or an `http://` URL).
/// 201 and 409 (already there) are fine; anything else stops with the server's answer.
pub async fn through_api(
    addr: &str,
    admin_token: &str,
    seed: &SeedData,
) -> anyhow::Result<SeedReport> {
    let addr = addr.trim_start_matches("http://").trim_end_matches('/');
    let mut report = SeedReport::default();
    for (path, body) in seed.requests() {
        let (status, answer) = post_json(addr, path, admin_token, &body).await?;
        match status {
            201 => report.created += 1,
            409 => report.existing += 1,
            _ => bail!("POST {path} answered {status}: {answer}\n  body: {body}"),
        }
    }
    Ok(report)
}

/// One request on its own connection (HTTP/1.1, `Connection: close`).
pub async fn post_json(
    addr: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to muckwatch at {addr}"))?;
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .with_context(|| format!("POST {path}: no answer from {addr} within 30 s"))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, rest.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firms_come_before_what_names_them() {
        let permit = Permit::from_json(&json!({"id": "P", "firm_id": "f1", "plates": ["苏J1"], "source_site": "s01",
            "disposal_site": "d01", "routes": [], "valid_from": "2021-06-01", "valid_until": "2021-06-02"}))
        .expect("permit");
        let seed = SeedData {
            firms: vec![("f1".into(), "F".into())],
            vehicles: vec![SeedVehicle {
                plate: "苏J1".into(),
                device_id: "d1".into(),
                firm_id: "f1".into(),
                rated_load_t: 31.0,
            }],
            permits: vec![permit],
        };
        let paths: Vec<&str> = seed.requests().iter().map(|(p, _)| *p).collect();
        assert_eq!(
            paths,
            ["/api/v1/firms", "/api/v1/vehicles", "/api/v1/permits"]
        );
        assert_eq!(seed.requests()[2].1["valid_until"], "2021-06-02");
    }
}
