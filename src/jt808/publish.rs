//! Publishing with the broker's acknowledgement in hand: a terminal is
//! answered only after the broker has acknowledged (QoS 1 PUBACK) what the
//! gateway published for it, so an acknowledged location is never lost.
//!
//! rumqttc numbers QoS 1 publishes itself and reports, in order, the packet
//! id each request got (`Outgoing::Publish`) and each PUBACK. Requests are
//! queued under one lock in the order their waiters are, so the n-th
//! `Outgoing::Publish` belongs to the n-th waiter. When the connection
//! fails, the client and its event loop are replaced whole, under the same
//! lock, and every waiter is told "not acknowledged": nothing of the old
//! session is resent, so no acknowledgement can reach the wrong waiter (the
//! terminal sends its unanswered location again; duplicates are ignored).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{AsyncClient, ClientError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::oneshot;

use crate::configuration::MqttUrl;

/// Publishes not yet acknowledged, at most (rumqttc's in-flight window).
const INFLIGHT: u16 = 200;
/// Requests queued towards the event loop, at most.
const QUEUE: usize = 10_000;

type Waiter = oneshot::Sender<()>;

struct State {
    client: AsyncClient,
    /// Waiters of requests queued, in order, not yet given a packet id.
    queued: VecDeque<Waiter>,
    /// Waiters by packet id, in the order rumqttc sent them.
    inflight: HashMap<u16, VecDeque<Waiter>>,
    /// A publish rumqttc holds back because its id is still in flight.
    collided: Option<u16>,
    connected: bool,
}

#[derive(Clone)]
pub struct AckedPublisher {
    state: Arc<Mutex<State>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

/// Who the gateway is at the broker.
#[derive(Debug, Clone)]
pub struct BrokerLogin {
    pub url: MqttUrl,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug)]
pub enum PublishError {
    /// The broker did not acknowledge in time, or the connection failed.
    NotAcknowledged,
    Closed,
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::NotAcknowledged => f.write_str("the broker did not acknowledge"),
            PublishError::Closed => f.write_str("the publisher is stopped"),
        }
    }
}

fn connect(login: &BrokerLogin) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(
        login.client_id.clone(),
        login.url.host.clone(),
        login.url.port,
    );
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(INFLIGHT);
    if let Some(user) = &login.username {
        o.set_credentials(user.clone(), login.password.clone().unwrap_or_default());
    }
    AsyncClient::new(o, QUEUE)
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic elsewhere while holding the lock leaves plain data behind.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl AckedPublisher {
    pub fn start(login: BrokerLogin) -> AckedPublisher {
        let (client, eventloop) = connect(&login);
        let state = Arc::new(Mutex::new(State {
            client,
            queued: VecDeque::new(),
            inflight: HashMap::new(),
            collided: None,
            connected: false,
        }));
        let task = tokio::spawn(drive(state.clone(), eventloop, login));
        AckedPublisher {
            state,
            task: Arc::new(task),
        }
    }

    pub fn is_connected(&self) -> bool {
        lock(&self.state).connected
    }

    /// Publishes at QoS 1 and returns once the broker acknowledged it.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (tx, rx) = oneshot::channel();
        let mut waiter = Some(tx);
        let mut payload = Some(payload);
        loop {
            {
                let mut s = lock(&self.state);
                let Some(p) = payload.take() else {
                    return Err(PublishError::Closed);
                };
                match s.client.try_publish(topic, QoS::AtLeastOnce, false, p) {
                    Ok(()) => {
                        if let Some(w) = waiter.take() {
                            s.queued.push_back(w);
                        }
                        break;
                    }
                    Err(ClientError::TryRequest(rumqttc::Request::Publish(p))) => {
                        payload = Some(p.payload.to_vec());
                    }
                    Err(_) => return Err(PublishError::Closed),
                }
            }
            // The queue towards the broker is full: wait a little.
            if tokio::time::Instant::now() >= deadline {
                return Err(PublishError::NotAcknowledged);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(PublishError::NotAcknowledged),
        }
    }
}

impl Drop for AckedPublisher {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

async fn drive(state: Arc<Mutex<State>>, mut eventloop: EventLoop, login: BrokerLogin) {
    let broker = format!("{}:{}", login.url.host, login.url.port);
    let mut complained = false;
    loop {
        match eventloop.poll().await {
            Ok(event) => {
                let mut s = lock(&state);
                match event {
                    Event::Incoming(Packet::ConnAck(ack))
                        if ack.code == rumqttc::ConnectReturnCode::Success =>
                    {
                        s.connected = true;
                        if complained {
                            tracing::info!(%broker, "JT/T 808 gateway: broker connection back");
                        }
                        complained = false;
                    }
                    Event::Outgoing(Outgoing::Publish(pkid)) => {
                        if s.collided == Some(pkid) {
                            s.collided = None;
                        } else if let Some(w) = s.queued.pop_front() {
                            s.inflight.entry(pkid).or_default().push_back(w);
                        }
                    }
                    Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
                        if let Some(w) = s.queued.pop_front() {
                            s.inflight.entry(pkid).or_default().push_back(w);
                        }
                        s.collided = Some(pkid);
                    }
                    Event::Incoming(Packet::PubAck(ack)) => {
                        let w = s.inflight.get_mut(&ack.pkid).and_then(VecDeque::pop_front);
                        if s.inflight.get(&ack.pkid).is_some_and(VecDeque::is_empty) {
                            s.inflight.remove(&ack.pkid);
                        }
                        if let Some(w) = w {
                            let _ = w.send(());
                        }
                    }
                    _ => {}
                }
            }
            Err(e) => {
                if !complained {
                    tracing::warn!(%broker, error = %e, "JT/T 808 gateway: broker connection failed; retrying (terminals are not answered meanwhile)");
                    complained = true;
                }
                {
                    let mut s = lock(&state);
                    let (client, fresh) = connect(&login);
                    s.client = client;
                    eventloop = fresh;
                    // Dropping the waiters tells each publisher "not acknowledged".
                    s.queued.clear();
                    s.inflight.clear();
                    s.collided = None;
                    s.connected = false;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
