//! Sessions by client id, the subscription index, and delivery of
//! publishes to the sessions they match.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rumqttc::{Publish, QoS};
use tokio::sync::Notify;

use super::index::Index;
use super::session::{Offer, QueueLimits, Session};
use crate::metrics::{Metrics, MqttRefusal};
use crate::mqtt_access::MqttClient;

pub struct Router {
    index: RwLock<Index>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    next_key: AtomicU64,
    queue: QueueLimits,
    max_filters: usize,
    slow_subscriber: Duration,
    metrics: Arc<Metrics>,
}

/// A connection asked for a client id held by someone else.
#[derive(Debug)]
pub struct ClientIdTaken;

impl Router {
    pub fn new(
        queue: QueueLimits,
        max_filters: usize,
        slow_subscriber: Duration,
        metrics: Arc<Metrics>,
    ) -> Router {
        Router {
            index: RwLock::default(),
            sessions: Mutex::default(),
            next_key: AtomicU64::new(1),
            queue,
            max_filters,
            slow_subscriber,
            metrics,
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session for a new connection. A live client id is taken over only
    /// by the same identity (so a device cannot knock muckwatch's own client
    /// off by borrowing its id); muckwatch's own clients asking to keep their
    /// session resume it. Returns the session and whether it was resumed.
    pub fn open_session(
        &self,
        client_id: &str,
        client: MqttClient,
        clean_session: bool,
        conn: u64,
        kick: Arc<Notify>,
    ) -> Result<(Arc<Session>, bool), ClientIdTaken> {
        let persistent = !clean_session && client == MqttClient::Service;
        let mut sessions = self.sessions();
        if let Some(old) = sessions.get(client_id).cloned() {
            if old.client != client {
                return Err(ClientIdTaken);
            }
            if old.persistent && persistent && !old.is_closed() {
                old.attach(conn, kick);
                return Ok((old, true));
            }
            sessions.remove(client_id);
            self.end(&old);
        }
        let key = self.next_key.fetch_add(1, Relaxed);
        let session = Arc::new(Session::new(
            key,
            client_id.to_string(),
            client,
            persistent,
            self.queue,
        ));
        session.attach(conn, kick);
        sessions.insert(client_id.to_string(), session.clone());
        Ok((session, false))
    }

    /// The connection `conn` of `session` closed: a clean session ends with
    /// it (its subscriptions go), a persistent one waits for its client.
    pub fn connection_ended(&self, session: &Arc<Session>, conn: u64) {
        if !session.detach(conn) {
            return; // taken over by a newer connection
        }
        if session.persistent && !session.is_closed() {
            return;
        }
        {
            let mut sessions = self.sessions();
            if sessions
                .get(&session.client_id)
                .is_some_and(|s| s.key == session.key)
            {
                sessions.remove(&session.client_id);
            }
        }
        self.end(session);
    }

    /// Closes a session and removes its subscriptions from the index.
    fn end(&self, session: &Arc<Session>) {
        if let Some(dropped) = session.close() {
            self.metrics
                .mqtt_deliveries_dropped
                .fetch_add(dropped as u64, Relaxed);
        }
        let filters = session.filters();
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        for f in &filters {
            index.remove(f, session.key);
        }
    }

    /// Subscribes `session` to a valid `filter`; false when the client holds
    /// as many filters as it may.
    pub fn subscribe(&self, session: &Arc<Session>, filter: &str, qos: QoS) -> bool {
        if !session.add_filter(filter, qos, self.max_filters) {
            return false;
        }
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        index.insert(filter, session, qos);
        // Closed meanwhile: `end` may have run before this insert.
        if session.is_closed() {
            index.remove(filter, session.key);
        }
        true
    }

    pub fn unsubscribe(&self, session: &Arc<Session>, filter: &str) {
        if session.remove_filter(filter) {
            let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
            index.remove(filter, session.key);
        }
    }

    /// Hands `publish` to every session it matches, once each, at the lower
    /// of the publish's QoS and the one granted. Never waits on a QoS 0
    /// delivery; waits for room for a QoS 1 one at most the slow-subscriber
    /// deadline (muckwatch's own sessions: until there is room), then
    /// disconnects that subscriber. Returns once every delivery is queued or
    /// given up, so a PUBACK sent after it is a promise kept.
    pub async fn route(&self, publish: &Publish) {
        let targets = {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            index.matches(&publish.topic)
        };
        for (session, granted) in targets {
            let mut out = publish.clone();
            out.qos = if publish.qos == QoS::AtMostOnce || granted == QoS::AtMostOnce {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
            out.pkid = 0;
            out.dup = false;
            out.retain = false;
            self.deliver(&session, out).await;
        }
    }

    async fn deliver(&self, session: &Session, mut out: Publish) {
        loop {
            // Registered before the offer, so that room made between the
            // offer and the wait is not missed.
            let room = session.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match session.offer(out) {
                Offer::Queued | Offer::Closed => return,
                Offer::Full(back) => out = back,
            }
            if out.qos == QoS::AtMostOnce {
                self.metrics.mqtt_deliveries_dropped.fetch_add(1, Relaxed);
                return;
            }
            if session.privileged() {
                room.await;
                continue;
            }
            let deadline = session.full_deadline(self.slow_subscriber);
            if tokio::time::timeout_at(deadline, room).await.is_ok() || !session.still_full() {
                continue;
            }
            if let Some(dropped) = session.close() {
                self.metrics.mqtt_refused(MqttRefusal::SlowSubscriber);
                self.metrics
                    .mqtt_deliveries_dropped
                    .fetch_add(dropped as u64 + 1, Relaxed);
                tracing::warn!(
                    client_id = %session.client_id,
                    deadline = ?self.slow_subscriber,
                    "MQTT subscriber's queue stayed full past the deadline; disconnected it"
                );
            }
            return;
        }
    }
}
