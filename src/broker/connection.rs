//! One client connection: a reader loop that handles incoming packets and a
//! writer task that sends what the router and the reader queue for it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use rumqttc::mqttbytes::{valid_filter, valid_topic, Error as CodecError};
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, QoS, SubAck, SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use super::router::{Outgoing, Router};
use super::MAX_PACKET;

/// Packets waiting for one client's socket.
const QUEUE: usize = 4096;
/// Unacknowledged QoS 1 deliveries per client.
const INFLIGHT: usize = 4096;

pub async fn serve(stream: TcpStream, router: Arc<Router>, conn: u64) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (mut rd, wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let first = tokio::time::timeout(Duration::from_secs(10), read_packet(&mut rd, &mut buf))
        .await
        .context("no CONNECT within 10 s")??;
    let Packet::Connect(connect) = first else {
        bail!("first packet is not CONNECT")
    };
    let client_id = if connect.client_id.is_empty() {
        format!("anon-{conn}")
    } else {
        connect.client_id.clone()
    };
    let keep_alive = Duration::from_secs(u64::from(connect.keep_alive));

    let (tx, rx) = mpsc::channel(QUEUE);
    let window = Arc::new(Semaphore::new(INFLIGHT));
    tx.send(Outgoing::Packet(Packet::ConnAck(ConnAck::new(
        ConnectReturnCode::Success,
        false,
    ))))
    .await?;
    let writer = tokio::spawn(write_loop(wr, rx, window.clone()));
    let kicked = router.connect(&client_id, conn);

    let result = async {
        loop {
            let packet = tokio::select! {
                _ = kicked.notified() => bail!("client id {client_id} connected again"),
                p = read_with_keepalive(&mut rd, &mut buf, keep_alive) => p?,
            };
            match packet {
                Packet::Publish(p) => {
                    if p.qos == QoS::ExactlyOnce {
                        bail!("QoS 2 is not supported by the embedded broker");
                    }
                    if !valid_topic(&p.topic) {
                        bail!("invalid topic {:?}", p.topic);
                    }
                    router.route(&p).await;
                    if p.qos == QoS::AtLeastOnce {
                        tx.send(Outgoing::Packet(Packet::PubAck(PubAck::new(p.pkid))))
                            .await?;
                    }
                }
                Packet::PubAck(_) => window.add_permits(1),
                Packet::Subscribe(s) => {
                    let codes = s
                        .filters
                        .iter()
                        .map(|f| {
                            if valid_filter(&f.path) {
                                let qos = if f.qos == QoS::AtMostOnce {
                                    QoS::AtMostOnce
                                } else {
                                    QoS::AtLeastOnce
                                };
                                router.subscribe(conn, &f.path, qos, &tx);
                                SubscribeReasonCode::Success(qos)
                            } else {
                                SubscribeReasonCode::Failure
                            }
                        })
                        .collect();
                    tx.send(Outgoing::Packet(Packet::SubAck(SubAck::new(s.pkid, codes))))
                        .await?;
                }
                Packet::Unsubscribe(u) => {
                    for t in &u.topics {
                        router.unsubscribe(conn, t);
                    }
                    tx.send(Outgoing::Packet(Packet::UnsubAck(UnsubAck::new(u.pkid))))
                        .await?;
                }
                Packet::PingReq => tx.send(Outgoing::Packet(Packet::PingResp)).await?,
                Packet::Disconnect => return Ok(()),
                other => tracing::debug!(?other, "ignored MQTT packet"),
            }
        }
    }
    .await;
    router.disconnect(&client_id, conn);
    drop(tx);
    writer.abort();
    result
}

/// MQTT allows one and a half keep-alive periods of silence.
async fn read_with_keepalive(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    keep_alive: Duration,
) -> anyhow::Result<Packet> {
    if keep_alive.is_zero() {
        return read_packet(rd, buf).await;
    }
    tokio::time::timeout(keep_alive * 3 / 2, read_packet(rd, buf))
        .await
        .context("keep-alive expired")?
}

async fn read_packet(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> anyhow::Result<Packet> {
    loop {
        match Packet::read(buf, MAX_PACKET) {
            Ok(p) => return Ok(p),
            Err(CodecError::InsufficientBytes(n)) => {
                buf.reserve(n.max(4096));
                if rd.read_buf(buf).await? == 0 {
                    bail!("connection closed");
                }
            }
            Err(e) => bail!("bad MQTT packet: {e:?}"),
        }
    }
}

/// Writes queued packets, numbering QoS 1 deliveries and holding them back
/// while the client has `INFLIGHT` of them unacknowledged.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    window: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut pkid: u16 = 0;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Gather what is already queued into one write.
        while let Some(item) = next {
            let packet = match item {
                Outgoing::Packet(p) => p,
                Outgoing::Deliver(mut p, qos) => {
                    p.qos = qos;
                    if qos == QoS::AtLeastOnce {
                        if out.is_empty() {
                            window.acquire().await?.forget();
                        } else if let Ok(permit) = window.try_acquire() {
                            permit.forget();
                        } else {
                            wr.write_all(&out).await?;
                            out.clear();
                            window.acquire().await?.forget();
                        }
                        pkid = if pkid == u16::MAX { 1 } else { pkid + 1 };
                        p.pkid = pkid;
                    } else {
                        p.pkid = 0;
                    }
                    Packet::Publish(p)
                }
            };
            packet
                .write(&mut out, usize::MAX)
                .map_err(|e| anyhow::anyhow!("encode: {e:?}"))?;
            next = if out.len() < 256 * 1024 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        wr.write_all(&out).await?;
        out.clear();
    }
    Ok(())
}
