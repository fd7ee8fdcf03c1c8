//! One client's session: the deliveries queued for it, the QoS 1 ones sent
//! and not yet acknowledged, and its filters.
//!
//! The queue is bounded (messages and bytes). What happens when it is full
//! is decided by who the subscriber is (see `Router::route`): a QoS 0
//! delivery is dropped and counted; a QoS 1 delivery holds its publisher
//! back (no PUBACK yet) until there is room, for at most the slow-subscriber
//! deadline, after which the subscriber is disconnected and its clean session
//! ends. muckwatch's own clients are the exception: their publishers wait
//! without a deadline, because muckwatch acknowledges a fix only once it is
//! stored, and a session of its own survives a reconnect (a long database
//! stall makes its client miss keep-alives), so a PUBACK a truck got is
//! never a fix lost.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use rumqttc::{Publish, QoS};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::mqtt_access::MqttClient;

pub struct Session {
    /// Unique for the broker's life; the index's key.
    pub key: u64,
    pub client_id: String,
    pub client: MqttClient,
    /// Kept after the connection ends (muckwatch's own, asked for).
    pub persistent: bool,
    state: Mutex<State>,
    /// Wakes the connection's writer: something queued, or the window opened.
    pub wake: Notify,
    /// Wakes publishers waiting for room in the queue.
    pub room: Notify,
    limits: QueueLimits,
}

#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub messages: usize,
    pub bytes: usize,
    /// QoS 1 deliveries sent and not yet acknowledged.
    pub inflight: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Publish>,
    queued_bytes: usize,
    inflight: BTreeMap<u16, Publish>,
    last_pkid: u16,
    /// Since when a QoS 1 delivery found the queue full (cleared by room).
    full_since: Option<Instant>,
    /// Disconnected for good: deliveries are dropped.
    closed: bool,
    /// The connection serving the session now, and how to make it go.
    conn: Option<(u64, Arc<Notify>)>,
    filters: HashMap<String, QoS>,
}

pub enum Offer {
    Queued,
    /// The session ended; nothing to deliver.
    Closed,
    /// No room; the publish is handed back.
    Full(Publish),
}

impl Session {
    pub fn new(
        key: u64,
        client_id: String,
        client: MqttClient,
        persistent: bool,
        limits: QueueLimits,
    ) -> Session {
        Session {
            key,
            client_id,
            client,
            persistent,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            room: Notify::new(),
            limits,
        }
    }

    #[cfg(test)]
    pub fn for_tests(key: u64) -> Arc<Session> {
        Arc::new(Session::new(
            key,
            format!("c{key}"),
            MqttClient::Anonymous,
            false,
            QueueLimits {
                messages: 10,
                bytes: 1 << 20,
                inflight: 10,
            },
        ))
    }

    /// Muckwatch's own clients: publishers wait for them without deadline.
    pub fn privileged(&self) -> bool {
        self.client == MqttClient::Service
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue half
        // changed in a way that matters more than stopping delivery.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `p` (its QoS already the granted one) if there is room.
    pub fn offer(&self, p: Publish) -> Offer {
        let mut st = self.state();
        if st.closed {
            return Offer::Closed;
        }
        let size = p.payload.len() + p.topic.len();
        let fits = st.queue.len() < self.limits.messages
            && (st.queue.is_empty() || st.queued_bytes + size <= self.limits.bytes);
        if !fits {
            if p.qos != QoS::AtMostOnce && st.full_since.is_none() {
                st.full_since = Some(Instant::now());
            }
            return Offer::Full(p);
        }
        st.queued_bytes += size;
        st.queue.push_back(p);
        drop(st);
        self.wake.notify_one();
        Offer::Queued
    }

    /// When a publisher waiting for room gives up on this subscriber.
    pub fn full_deadline(&self, timeout: std::time::Duration) -> Instant {
        let st = self.state();
        st.full_since.unwrap_or_else(Instant::now) + timeout
    }

    /// Still full since before `deadline`'s start: the subscriber is slow.
    pub fn still_full(&self) -> bool {
        let st = self.state();
        !st.closed && st.full_since.is_some()
    }

    /// Moves queued deliveries into `out` for the writer, numbering QoS 1
    /// ones and keeping them until acknowledged; stops at the in-flight
    /// window or when `out` holds `max_bytes`. Returns false once closed.
    pub fn take(&self, out: &mut Vec<Publish>, max_bytes: usize) -> bool {
        let mut st = self.state();
        if st.closed {
            return false;
        }
        let mut bytes = 0;
        let mut moved = false;
        while bytes < max_bytes {
            let Some(front) = st.queue.front() else { break };
            if front.qos != QoS::AtMostOnce && st.inflight.len() >= self.limits.inflight {
                break;
            }
            let Some(mut p) = st.queue.pop_front() else {
                break;
            };
            let size = p.payload.len() + p.topic.len();
            st.queued_bytes = st.queued_bytes.saturating_sub(size);
            bytes += size;
            moved = true;
            if p.qos != QoS::AtMostOnce {
                // A resent delivery keeps its number; a new one gets a free one.
                if p.pkid == 0 {
                    p.pkid = next_pkid(&mut st);
                }
                st.inflight.insert(p.pkid, p.clone());
            }
            out.push(p);
        }
        if moved {
            // Room again only below half: a subscriber that merely keeps
            // pace with a full queue is as slow as one that never reads.
            if st.queue.len() <= self.limits.messages / 2
                && st.queued_bytes <= self.limits.bytes / 2
            {
                st.full_since = None;
            }
            drop(st);
            self.room.notify_waiters();
        }
        true
    }

    /// The client acknowledged a QoS 1 delivery.
    pub fn acked(&self, pkid: u16) {
        let removed = self.state().inflight.remove(&pkid).is_some();
        if removed {
            self.wake.notify_one();
        }
    }

    /// Binds a new connection; on a resumed session, what was sent and not
    /// acknowledged goes out again first (same packet id, DUP set).
    pub fn attach(&self, conn: u64, kick: Arc<Notify>) {
        let mut st = self.state();
        let unacked: Vec<Publish> = std::mem::take(&mut st.inflight).into_values().collect();
        for mut p in unacked.into_iter().rev() {
            p.dup = true;
            st.queued_bytes += p.payload.len() + p.topic.len();
            st.queue.push_front(p);
        }
        if let Some((_, old)) = st.conn.replace((conn, kick)) {
            old.notify_one();
        }
        drop(st);
        self.wake.notify_one();
    }

    /// The connection `conn` ended; true if it was the session's current one.
    pub fn detach(&self, conn: u64) -> bool {
        let mut st = self.state();
        if st.conn.as_ref().is_some_and(|(c, _)| *c == conn) {
            st.conn = None;
            true
        } else {
            false
        }
    }

    /// Ends the session for good: its connection is told to go, waiting
    /// publishers move on, and what was queued is dropped (its count is
    /// returned; `None` if it was closed already).
    pub fn close(&self) -> Option<usize> {
        let mut st = self.state();
        if st.closed {
            return None;
        }
        st.closed = true;
        let dropped = st.queue.len() + st.inflight.len();
        st.queue.clear();
        st.inflight.clear();
        st.queued_bytes = 0;
        if let Some((_, kick)) = st.conn.take() {
            kick.notify_one();
        }
        drop(st);
        self.room.notify_waiters();
        self.wake.notify_one();
        Some(dropped)
    }

    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Records a granted filter; false if the client already holds `max`
    /// other filters.
    pub fn add_filter(&self, filter: &str, qos: QoS, max: usize) -> bool {
        let mut st = self.state();
        if !st.filters.contains_key(filter) && st.filters.len() >= max {
            return false;
        }
        st.filters.insert(filter.to_string(), qos);
        true
    }

    pub fn remove_filter(&self, filter: &str) -> bool {
        self.state().filters.remove(filter).is_some()
    }

    pub fn filters(&self) -> Vec<String> {
        self.state().filters.keys().cloned().collect()
    }
}

fn next_pkid(st: &mut State) -> u16 {
    loop {
        st.last_pkid = st.last_pkid.checked_add(1).unwrap_or(1);
        if !st.inflight.contains_key(&st.last_pkid) {
            return st.last_pkid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(qos: QoS) -> Publish {
        Publish::new("t", qos, vec![1u8; 10])
    }

    #[test]
    fn the_queue_is_bounded_and_the_window_holds_back() {
        let s = Session::for_tests(1);
        for _ in 0..10 {
            assert!(matches!(s.offer(publish(QoS::AtLeastOnce)), Offer::Queued));
        }
        assert!(matches!(s.offer(publish(QoS::AtLeastOnce)), Offer::Full(_)));
        assert!(s.still_full());
        let mut out = Vec::new();
        assert!(s.take(&mut out, usize::MAX));
        assert_eq!(out.len(), 10);
        assert!(!s.still_full(), "emptied");
        let pkids: Vec<u16> = out.iter().map(|p| p.pkid).collect();
        assert_eq!(pkids, (1..=10).collect::<Vec<_>>());
        // The window (10) is full: nothing more goes out until an ack.
        assert!(matches!(s.offer(publish(QoS::AtLeastOnce)), Offer::Queued));
        out.clear();
        s.take(&mut out, usize::MAX);
        assert!(out.is_empty());
        s.acked(3);
        s.take(&mut out, usize::MAX);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].pkid, 11);
    }

    #[test]
    fn a_resumed_session_resends_what_was_not_acknowledged() {
        let s = Session::for_tests(1);
        s.offer(publish(QoS::AtLeastOnce));
        s.offer(publish(QoS::AtLeastOnce));
        let mut out = Vec::new();
        s.take(&mut out, usize::MAX);
        s.acked(1);
        s.attach(2, Arc::new(Notify::new()));
        out.clear();
        s.take(&mut out, usize::MAX);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].pkid, 2);
        assert!(out[0].dup);
    }

    #[test]
    fn a_closed_session_takes_nothing() {
        let s = Session::for_tests(1);
        s.offer(publish(QoS::AtMostOnce));
        assert_eq!(s.close(), Some(1));
        assert_eq!(s.close(), None);
        assert!(matches!(s.offer(publish(QoS::AtMostOnce)), Offer::Closed));
        assert!(!s.take(&mut Vec::new(), usize::MAX));
    }
}
