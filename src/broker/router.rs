//! Who is subscribed to what, and delivery of publishes to them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rumqttc::mqttbytes::matches;
use rumqttc::{Publish, QoS};
use tokio::sync::{mpsc, Notify};

/// What a connection's writer task sends to its client.
pub enum Outgoing {
    /// A publish to deliver with the given QoS (the writer numbers QoS 1).
    Deliver(Publish, QoS),
    /// Any other packet, already complete.
    Packet(rumqttc::Packet),
}

struct Subscription {
    conn: u64,
    filter: String,
    qos: QoS,
    tx: mpsc::Sender<Outgoing>,
}

#[derive(Default)]
pub struct Router {
    /// Read on every publish, changed on (rare) (un)subscribes: a snapshot.
    subs: ArcSwap<Vec<Arc<Subscription>>>,
    /// Live connection per client id, and how to tell it to go away.
    clients: Mutex<HashMap<String, (u64, Arc<Notify>)>>,
}

impl Router {
    /// Registers a connection; an older one with the same client id is told
    /// to close, as MQTT requires.
    pub fn connect(&self, client_id: &str, conn: u64) -> Arc<Notify> {
        let kick = Arc::new(Notify::new());
        let old = self
            .clients
            .lock()
            .map(|mut c| c.insert(client_id.to_string(), (conn, kick.clone())))
            .ok()
            .flatten();
        if let Some((_, old_kick)) = old {
            old_kick.notify_one();
        }
        kick
    }

    pub fn disconnect(&self, client_id: &str, conn: u64) {
        if let Ok(mut c) = self.clients.lock() {
            if c.get(client_id).is_some_and(|(id, _)| *id == conn) {
                c.remove(client_id);
            }
        }
        self.subs.rcu(|subs| {
            subs.iter()
                .filter(|s| s.conn != conn)
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    pub fn subscribe(&self, conn: u64, filter: &str, qos: QoS, tx: &mpsc::Sender<Outgoing>) {
        let sub = Arc::new(Subscription {
            conn,
            filter: filter.to_string(),
            qos,
            tx: tx.clone(),
        });
        self.subs.rcu(|subs| {
            let mut next: Vec<_> = subs
                .iter()
                .filter(|s| !(s.conn == conn && s.filter == filter))
                .cloned()
                .collect();
            next.push(sub.clone());
            next
        });
    }

    pub fn unsubscribe(&self, conn: u64, filter: &str) {
        self.subs.rcu(|subs| {
            subs.iter()
                .filter(|s| !(s.conn == conn && s.filter == filter))
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// Hands `publish` to every matching subscription, once per connection
    /// (the highest granted QoS wins), waiting while a subscriber's queue is
    /// full: back-pressure rather than loss.
    pub async fn route(&self, publish: &Publish) {
        let subs = self.subs.load();
        let mut targets: Vec<(&Subscription, QoS)> = Vec::new();
        for s in subs.iter().filter(|s| matches(&publish.topic, &s.filter)) {
            let qos = min_qos(publish.qos, s.qos);
            match targets.iter_mut().find(|(t, _)| t.conn == s.conn) {
                Some((_, q)) => *q = max_qos(*q, qos),
                None => targets.push((s, qos)),
            }
        }
        for (s, qos) in targets {
            let mut out = publish.clone();
            out.dup = false;
            out.retain = false;
            // A closed queue means the subscriber left; nothing to deliver.
            let _ = s.tx.send(Outgoing::Deliver(out, qos)).await;
        }
    }
}

fn rank(q: QoS) -> u8 {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

fn min_qos(a: QoS, b: QoS) -> QoS {
    if rank(a) <= rank(b) {
        a
    } else {
        b
    }
}

fn max_qos(a: QoS, b: QoS) -> QoS {
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}
