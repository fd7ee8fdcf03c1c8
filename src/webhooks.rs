//! Delivers the outbox (`crate::store`'s `outbox_*`) to the configured
//! webhooks: each event POSTed as its stored JSON body, signed
//! (`X-Muckwatch-Signature: sha256=<hex HMAC-SHA256 of the body>`), until
//! the webhook answers 2xx. Never dropped: a failed attempt is counted and
//! retried after a wait that doubles from 1 s up to `max_backoff_s`, kept
//! in the database (so it holds across restarts); a process killed while
//! delivering leaves a lease that runs out, and the event is sent again
//! under the same `id` (receivers de-duplicate).
//!
//! One task per webhook, so a webhook that is down delays only itself. In
//! each pass it takes the events due, oldest first, each the first
//! undelivered event of its case (or permit) for that webhook, so a case's
//! events arrive in the order they happened. After a failure the webhook
//! is left alone for a while too (doubling, reset by a success), rather
//! than tried event after event while it is away.
//!
//! Plain HTTP/1.1 over TCP (hyper's client connection, kept alive between
//! deliveries); HTTPS is for a TLS-terminating proxy next to muckwatch.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::outbox::{signature, OutboxSettings, Webhook, SIGNATURE_HEADER};
use crate::store::{DueEvent, Store};

/// Events taken from the outbox per pass and webhook.
const BATCH: i64 = 200;

/// How the delivery tasks behave (from `[outbox]`).
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    pub timeout: Duration,
    pub max_backoff: Duration,
    pub poll: Duration,
    /// How long delivered events are kept (`None`: for ever).
    pub keep_delivered: Option<Duration>,
}

impl Pacing {
    pub fn from_settings(s: &OutboxSettings) -> Pacing {
        Pacing {
            timeout: Duration::from_secs(s.request_timeout_s.max(1)),
            max_backoff: Duration::from_secs(s.max_backoff_s.max(1)),
            poll: Duration::from_millis(s.poll_ms.max(1)),
            keep_delivered: (s.keep_delivered_days > 0)
                .then(|| Duration::from_secs(s.keep_delivered_days.saturating_mul(86_400))),
        }
    }

    /// The wait after the `n`th failure in a row (1 s, 2 s, 4 s, ... capped).
    pub fn backoff(&self, n: i64) -> Duration {
        let exp = n.clamp(1, 30) as u32 - 1;
        Duration::from_secs(1u64 << exp).min(self.max_backoff)
    }
}

/// Starts a delivery task per webhook and one keeping
/// `muckwatch_outbox_pending` current; they end at shutdown. The backlog
/// is counted once before this returns, so that /metrics, served after,
/// never shows an uncounted backlog as 0.
pub async fn spawn(
    store: Store,
    metrics: Arc<Metrics>,
    webhooks: Vec<Webhook>,
    pacing: Pacing,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    refresh_pending(&store, &metrics).await;
    let mut tasks = vec![tokio::spawn(count_pending(
        store.clone(),
        metrics.clone(),
        pacing,
        shutdown.clone(),
    ))];
    for hook in webhooks {
        tracing::info!(url = %hook.url.text, "delivering outbound events");
        tasks.push(tokio::spawn(deliver(
            store.clone(),
            metrics.clone(),
            hook,
            pacing,
            shutdown.clone(),
        )));
    }
    tasks
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sleeps `d`; false when shutdown came first.
async fn pause(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.wait_for(|s| *s) => false,
    }
}

/// Sets `muckwatch_outbox_pending` from the database.
async fn refresh_pending(store: &Store, metrics: &Metrics) {
    match store.outbox_pending().await {
        Ok(n) => metrics.outbox_pending.store(n.max(0) as u64, Relaxed),
        Err(e) => tracing::warn!(error = %e, "cannot count the outbox"),
    }
}

/// Keeps `muckwatch_outbox_pending` current, and once an hour forgets
/// events delivered longer ago than `keep_delivered`.
/// What was delivered before this is pruned. Saturating: "keep for ever"
/// spelt as a huge number of days must not wrap into a cutoff in the future.
fn prune_cutoff(now_ms: i64, keep: Duration) -> i64 {
    now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
}

async fn count_pending(
    store: Store,
    metrics: Arc<Metrics>,
    pacing: Pacing,
    mut shutdown: watch::Receiver<bool>,
) {
    const PRUNE_EVERY: Duration = Duration::from_secs(3600);
    let mut pruned_at: Option<tokio::time::Instant> = None;
    loop {
        refresh_pending(&store, &metrics).await;
        if let Some(keep) = pacing.keep_delivered {
            if pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(tokio::time::Instant::now());
                let cutoff = prune_cutoff(now_ms(), keep);
                match store.outbox_prune(cutoff).await {
                    Ok((0, 0)) => {}
                    Ok((deliveries, events)) => {
                        tracing::info!(deliveries, events, "pruned delivered outbound events")
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot prune the outbox"),
                }
            }
        }
        if !pause(pacing.poll, &mut shutdown).await {
            return;
        }
    }
}

async fn deliver(
    store: Store,
    metrics: Arc<Metrics>,
    hook: Webhook,
    pacing: Pacing,
    mut shutdown: watch::Receiver<bool>,
) {
    let key = hook.key().to_string();
    let mut client = Client::new(&hook, pacing.timeout);
    let mut failures_in_a_row = 0i64;
    loop {
        let delivery = pass(
            &store,
            &metrics,
            &hook,
            &key,
            &mut client,
            pacing,
            &shutdown,
        );
        let wait = match delivery.await {
            Ok(delivered) => {
                failures_in_a_row = 0;
                // Something went: the next event of those cases may be due now.
                if delivered > 0 {
                    Duration::ZERO
                } else {
                    pacing.poll
                }
            }
            Err(e) => {
                failures_in_a_row += 1;
                let wait = pacing.backoff(failures_in_a_row).max(pacing.poll);
                tracing::warn!(url = %key, error = %e, retry_in = ?wait, "outbound event not delivered");
                wait
            }
        };
        if *shutdown.borrow() || (!wait.is_zero() && !pause(wait, &mut shutdown).await) {
            return;
        }
    }
}

/// Delivers what is due to one webhook; stops at the first failure.
/// Returns how many were delivered.
async fn pass(
    store: &Store,
    metrics: &Metrics,
    hook: &Webhook,
    key: &str,
    client: &mut Client,
    pacing: Pacing,
    shutdown: &watch::Receiver<bool>,
) -> Result<usize, String> {
    let mut delivered = 0;
    let due = store
        .outbox_due(key, now_ms(), BATCH)
        .await
        .map_err(|e| format!("reading the outbox: {e}"))?;
    for ev in due {
        if *shutdown.borrow() {
            break; // what is left waits for the next start
        }
        let lease = now_ms() + pacing.timeout.as_millis() as i64 + 5_000;
        let claimed = store
            .outbox_claim(key, ev.seq, ev.next_ms, lease)
            .await
            .map_err(|e| format!("claiming event {}: {e}", ev.id))?;
        if !claimed {
            continue; // another instance has it
        }
        match client.post(hook, &ev).await {
            Ok(()) => {
                // Retried until stored (not marking it sends it again,
                // same id, once its lease runs out), but not past shutdown.
                while let Err(e) = store.outbox_delivered(key, ev.seq, now_ms()).await {
                    tracing::error!(error = %e, id = %ev.id, "cannot mark an event delivered; retrying");
                    if *shutdown.borrow() {
                        return Ok(delivered);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                metrics.outbox_delivered.fetch_add(1, Relaxed);
                delivered += 1;
            }
            Err(why) => {
                metrics.outbox_failures.fetch_add(1, Relaxed);
                let next = now_ms() + pacing.backoff(ev.attempts + 1).as_millis() as i64;
                let why = format!("event {} (attempt {}): {why}", ev.id, ev.attempts + 1);
                if let Err(e) = store.outbox_failed(key, ev.seq, next, &why).await {
                    tracing::error!(error = %e, "cannot record a failed delivery (its lease runs out instead)");
                }
                return Err(why);
            }
        }
    }
    Ok(delivered)
}

/// One webhook's HTTP/1.1 connection, opened when needed, reused while the
/// webhook keeps it alive.
struct Client {
    timeout: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
    host: String,
    port: u16,
}

impl Client {
    fn new(hook: &Webhook, timeout: Duration) -> Client {
        Client {
            timeout,
            conn: None,
            host: hook.url.host.clone(),
            port: hook.url.port,
        }
    }

    async fn post(&mut self, hook: &Webhook, ev: &DueEvent) -> Result<(), String> {
        let result = tokio::time::timeout(self.timeout, self.exchange(hook, ev)).await;
        let result = result.unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)));
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn exchange(&mut self, hook: &Webhook, ev: &DueEvent) -> Result<(), String> {
        let mut sender = match self.conn.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let request = Request::post(hook.url.path.as_str())
            .header(HOST, hook.url.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("muckwatch/", env!("CARGO_PKG_VERSION")))
            .header(
                SIGNATURE_HEADER,
                signature(&hook.secret, ev.body.as_bytes()),
            )
            .body(Full::new(Bytes::from(ev.body.clone())))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("sending: {e}"))?;
        let status = response.status();
        // Read the answer (capped) so the connection can carry the next event.
        let read = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
        if read.is_ok() {
            self.conn = Some(sender);
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", self.host, self.port))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_keep_prunes_nothing() {
        let now = 1_800_000_000_000;
        let day = Duration::from_secs(86_400);
        assert_eq!(prune_cutoff(now, day), now - 86_400_000);
        let huge = Pacing::from_settings(&OutboxSettings {
            keep_delivered_days: 200_000_000_000,
            ..OutboxSettings::default()
        });
        let cutoff = prune_cutoff(now, huge.keep_delivered.expect("kept"));
        assert!(cutoff < 0, "a cutoff before every delivery: {cutoff}");
    }

    #[test]
    fn backoff_doubles_from_a_second_up_to_the_cap() {
        let p = Pacing {
            timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
            poll: Duration::from_millis(500),
            keep_delivered: None,
        };
        let waits: Vec<u64> = (1..=11).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(p.backoff(1_000_000).as_secs(), 300);
    }
}
