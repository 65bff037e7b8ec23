//! The front door: a TCP relay on the advertised port in front of the broker.
//!
//! Clients only ever talk to the front door (the broker advertises its
//! address in metadata), so chinook can stage failures a client sees for real
//! while the broker and its data live on:
//! - an *outage* closes every client connection and refuses new ones (the
//!   listening socket is closed) until it ends;
//! - *latency* delays every answer the broker sends back.
//!
//! In front of the embedded engine the door also carries the tansu adapter
//! (`adapter.rs`): it relays one request at a time and corrects the answers
//! tansu 0.6.0 gets wrong for some clients, and answers EndTxn itself.
//!
//! A *private* door ([`FrontDoor::start_private`]) sits in front of a broker
//! that advertises another address: it rewrites the broker list of every
//! Metadata response to its own address, so its clients stay behind it (and
//! an outage there touches nobody else). Lab checks stage their outages so;
//! a private door can also cut its clients off right after it passed a
//! Produce request on, so the answer is lost and the producer must retry.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{Notify, watch},
    time::Instant,
};

use super::{
    acl::{After, Verdict},
    adapter::{Adapter, Head},
    guard::{ClientRx, ClientTx, Guard},
};

/// A running front door, cheap to clone.
#[derive(Clone)]
pub struct FrontDoor {
    shared: Arc<Shared>,
}

struct Shared {
    addr: SocketAddr,
    target: SocketAddr,
    /// Rewrite Metadata responses to advertise `addr` (a private door).
    advertise: bool,
    /// Protocol corrections for the broker behind (the embedded engine).
    adapter: Option<Adapter>,
    /// TLS and SASL, when the broker requires them.
    guard: Guard,
    latency_ms: AtomicU64,
    down_until: Mutex<Option<Instant>>,
    /// Bumped on every outage: relays watching it close their connections.
    epoch: watch::Sender<u64>,
    /// Wakes the accept loop when an outage starts or ends early.
    changed: Notify,
    /// Whether the listening socket is open (the accept loop keeps it current).
    listening: watch::Sender<bool>,
    connections: AtomicU64,
    /// An outage armed to start right after the next Produce request.
    trip: Mutex<Option<Duration>>,
    /// Outages started that way.
    tripped: AtomicU64,
    /// Produce requests passed on by a private door: their bytes, and when
    /// the first and the last went by.
    produced: Mutex<ProduceTraffic>,
}

/// What a private door saw of its clients' Produce requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProduceTraffic {
    pub requests: u64,
    pub bytes: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

impl ProduceTraffic {
    /// Time from the first Produce request to the last.
    pub fn span(&self) -> Duration {
        match (self.first, self.last) {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        }
    }
}

/// What the front door is doing now.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DoorState {
    /// Milliseconds left in the current outage (0 when up).
    pub outage_left_ms: u64,
    pub latency_ms: u64,
    /// Connections accepted since start.
    pub connections: u64,
    /// Produce batches the broker refused as INVALID_RECORD since start
    /// (counted in front of the embedded engine only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_batches: Option<u64>,
}

impl FrontDoor {
    /// Starts relaying `listener`'s connections to `target`, letting in the
    /// clients `guard` admits.
    pub fn start(listener: TcpListener, target: SocketAddr, guard: Guard) -> std::io::Result<Self> {
        Self::open(listener, target, false, None, guard)
    }

    /// Like [`FrontDoor::start`], with `adapter` correcting the broker's answers.
    pub fn start_adapted(
        listener: TcpListener,
        target: SocketAddr,
        adapter: Adapter,
        guard: Guard,
    ) -> std::io::Result<Self> {
        Self::open(listener, target, false, Some(adapter), guard)
    }

    /// Starts a private door to `target` (a single-node broker) on a free
    /// loopback port: clients that bootstrap here are told the broker is here.
    pub async fn start_private(target: SocketAddr) -> std::io::Result<Self> {
        Self::open(TcpListener::bind("127.0.0.1:0").await?, target, true, None, Guard::default())
    }

    fn open(
        listener: TcpListener,
        target: SocketAddr,
        advertise: bool,
        adapter: Option<Adapter>,
        guard: Guard,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            target,
            advertise,
            adapter,
            guard,
            latency_ms: AtomicU64::new(0),
            down_until: Mutex::new(None),
            epoch: watch::channel(0).0,
            changed: Notify::new(),
            listening: watch::channel(true).0,
            connections: AtomicU64::new(0),
            trip: Mutex::new(None),
            tripped: AtomicU64::new(0),
            produced: Mutex::default(),
        });
        tokio::spawn(accept_loop(shared.clone(), listener));
        Ok(Self { shared })
    }

    /// A private door in front of the first bootstrap address of `conn`.
    pub async fn in_front_of(conn: &crate::kafka::Connection) -> Result<Self, crate::kafka::KafkaError> {
        let first = conn.brokers.split(',').next().unwrap_or_default().trim().to_string();
        let unreachable = |reason: String| crate::kafka::KafkaError::Unreachable { brokers: first.clone(), reason };
        let target = tokio::net::lookup_host(first.as_str())
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .next()
            .ok_or_else(|| unreachable("no address".into()))?;
        Self::start_private(target).await.map_err(|e| unreachable(e.to_string()))
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Closes every connection and refuses new ones for `duration`; returns
    /// once the listening socket is closed.
    pub async fn outage(&self, duration: Duration) {
        self.shared.begin_outage(duration);
        let _ = self.shared.listening.subscribe().wait_for(|open| !open).await;
    }

    /// Arms an outage of `duration` that starts the moment the next Produce
    /// request has been passed to the broker: the broker stores the batch,
    /// the answer never reaches the client. Private doors only.
    pub fn cut_after_next_produce(&self, duration: Duration) {
        *self.shared.trip.lock().unwrap_or_else(|p| p.into_inner()) = Some(duration);
    }

    /// How many armed cuts happened.
    pub fn produce_traffic(&self) -> ProduceTraffic {
        *self.shared.produced.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn cuts(&self) -> u64 {
        self.shared.tripped.load(Ordering::Relaxed)
    }

    /// Ends an outage early; returns once the port accepts connections again.
    pub async fn restore(&self) {
        *self.shared.down_until.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.shared.changed.notify_one();
        self.wait_up().await;
    }

    /// Returns once the port accepts connections (at once when up).
    pub async fn wait_up(&self) {
        let _ = self.shared.listening.subscribe().wait_for(|open| *open).await;
    }

    /// Delays every response chunk by `latency` (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.latency_ms.store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn state(&self) -> DoorState {
        let left = self
            .shared
            .down_until()
            .map_or(0, |until| until.saturating_duration_since(Instant::now()).as_millis() as u64);
        DoorState {
            outage_left_ms: left,
            latency_ms: self.shared.latency_ms.load(Ordering::Relaxed),
            connections: self.shared.connections.load(Ordering::Relaxed),
            rejected_batches: self.shared.adapter.as_ref().map(Adapter::rejected_batches),
        }
    }
}

impl Shared {
    /// Refuses connections until `duration` from now and closes every open one.
    fn begin_outage(&self, duration: Duration) {
        *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + duration);
        self.epoch.send_modify(|e| *e += 1);
        self.changed.notify_one();
    }

    /// Starts the armed outage, if any (called after a Produce request went on).
    fn spring_trip(&self) -> bool {
        let Some(duration) = self.trip.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return false;
        };
        self.begin_outage(duration);
        self.tripped.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn down_until(&self) -> Option<Instant> {
        let until = *self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        until.filter(|u| *u > Instant::now())
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut listener = Some(listener);
    loop {
        if let Some(until) = shared.down_until() {
            // Closing the listening socket makes new connections fail with "refused".
            listener = None;
            shared.listening.send_replace(false);
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = shared.changed.notified() => {}
            }
            continue;
        }
        let current = match listener.take() {
            Some(l) => l,
            None => match rebind(shared.addr).await {
                Some(l) => {
                    shared.listening.send_replace(true);
                    l
                }
                None => return,
            },
        };
        tokio::select! {
            accepted = current.accept() => {
                if let Ok((client, _)) = accepted {
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    if shared.advertise {
                        tokio::spawn(advertise::relay(shared.clone(), client));
                    } else if let Some(adapter) = shared.adapter.clone() {
                        tokio::spawn(adapted(shared.clone(), client, adapter));
                    } else {
                        tokio::spawn(relay(shared.clone(), client));
                    }
                }
                listener = Some(current);
            }
            _ = shared.changed.notified() => {
                listener = Some(current);
            }
        }
    }
}

/// Binds the advertised address again after an outage (the port may linger briefly).
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("front door: cannot bind {addr} again after an outage; giving up");
    None
}

/// One relayed client: both connections, split, and the outage epoch to watch.
struct Link {
    client_rx: ClientRx,
    client_tx: ClientTx,
    broker_rx: OwnedReadHalf,
    broker_tx: OwnedWriteHalf,
    epoch: watch::Receiver<u64>,
    /// The topic prefix this client's user is held to, if any.
    gate: Option<super::acl::Gate>,
    /// The address the client reached the door at.
    reached: Option<SocketAddr>,
}

/// Connects `client` to the broker, once the guard lets it in (None when it
/// does not, or the broker does not answer).
async fn link(shared: &Shared, client: TcpStream) -> Option<Link> {
    let broker = TcpStream::connect(shared.target).await.ok()?;
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let reached = client.local_addr().ok();
    let (mut broker_rx, mut broker_tx) = broker.into_split();
    let (client_rx, client_tx, user) =
        shared.guard.enter(client, &mut broker_rx, &mut broker_tx, shared.adapter.as_ref()).await?;
    let gate = match (&shared.guard.acl, user) {
        (Some(acl), Some(user)) => acl.gate(&user),
        _ => None,
    };
    Some(Link { client_rx, client_tx, broker_rx, broker_tx, epoch: shared.epoch.subscribe(), gate, reached })
}

async fn relay(shared: Arc<Shared>, client: TcpStream) {
    let Some(Link { mut client_rx, mut client_tx, mut broker_rx, mut broker_tx, mut epoch, gate, .. }) =
        link(&shared, client).await
    else {
        return;
    };
    if gate.is_some() {
        // A byte relay cannot check requests: a user held to a prefix does not get through.
        eprintln!("front door: topic prefixes are checked in front of the embedded engine only; connection closed");
        return;
    }
    let upstream = tokio::io::copy(&mut client_rx, &mut broker_tx);
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = broker_rx.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            let delay = shared.latency_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            client_tx.write_all(&buf[..n]).await?;
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
        _ = epoch.changed() => {}
    }
}

/// A relay through the adapter: one request at a time, each answer read
/// whole (tansu serves a connection in order, so nothing is lost in pace).
async fn adapted(shared: Arc<Shared>, client: TcpStream, adapter: Adapter) {
    let Some(Link { mut client_rx, mut client_tx, mut broker_rx, mut broker_tx, mut epoch, gate, reached }) =
        link(&shared, client).await
    else {
        return;
    };
    // Listening on every address (0.0.0.0), the broker advertises that: each
    // client is told the address it reached instead, so other machines stay here.
    let advertise = reached.filter(|_| shared.addr.ip().is_unspecified());
    let serve = async {
        while let Ok(request) = read_frame(&mut client_rx).await {
            let Some(head) = Head::of(&request) else { break };
            let (request, after) = match gate.as_ref().map(|g| g.check(request.clone(), head)) {
                None => (request, After::Nothing),
                Some(Verdict::Forward(request, after)) => (request, after),
                Some(Verdict::Answer(Some(answer))) => {
                    if client_tx.write_all(&answer).await.is_err() {
                        break;
                    }
                    continue;
                }
                Some(Verdict::Answer(None)) => continue,
                Some(Verdict::Close) => break,
            };
            let answer = match adapter.exchange(request, &mut broker_rx, &mut broker_tx).await {
                Ok(Some(answer)) => answer,
                Ok(None) => continue,
                Err(_) => break,
            };
            let answer = match &gate {
                Some(g) => match g.after(answer, head, after) {
                    Some(answer) => answer,
                    None => break,
                },
                None => answer,
            };
            let answer = match advertise {
                Some(at) if head.key == advertise::METADATA => {
                    advertise::rewrite(&answer, head.version, at).unwrap_or(answer)
                }
                _ => answer,
            };
            let delay = shared.latency_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if client_tx.write_all(&answer).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = serve => {}
        _ = epoch.changed() => {}
    }
}

/// The largest frame the door reads (Kafka's `socket.request.max.bytes`):
/// anything bigger is not Kafka (an HTTP request's first bytes read as a
/// 1.2 GB size), and the connection is closed.
const MAX_FRAME: usize = 100 * 1024 * 1024;

/// One Kafka frame, its 4-byte size prefix included.
pub(super) async fn read_frame(from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    from.read_exact(&mut size).await?;
    let len = usize::try_from(i32::from_be_bytes(size)).map_err(std::io::Error::other)?;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a Kafka frame: too large"));
    }
    let mut frame = vec![0u8; 4 + len];
    frame[..4].copy_from_slice(&size);
    from.read_exact(&mut frame[4..]).await?;
    Ok(frame)
}

/// The private door's relay: Kafka frames read whole in both directions, and
/// the broker list of Metadata responses rewritten to the door's address.
mod advertise {
    use std::{collections::HashMap, sync::Arc};

    use tansu_sans_io::{Body, Frame};
    use tokio::io::AsyncWriteExt;

    use super::{Link, Shared, TcpStream, link, read_frame};
    use crate::broker::adapter::{Head, PRODUCE};
    pub(super) const METADATA: i16 = 3;

    fn be_i32(b: &[u8]) -> i32 {
        i32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The Metadata response `frame` (of `version`) with every broker at `door`.
    pub(super) fn rewrite(frame: &[u8], version: i16, door: std::net::SocketAddr) -> Option<Vec<u8>> {
        let Frame { header, body, .. } = Frame::response_from_bytes(frame, METADATA, version).ok()?;
        let Body::MetadataResponse(mut metadata) = body else {
            return None;
        };
        for broker in metadata.brokers.iter_mut().flatten() {
            broker.host = door.ip().to_string();
            broker.port = i32::from(door.port());
        }
        Frame::response(header, Body::MetadataResponse(metadata), METADATA, version).ok().map(|b| b.to_vec())
    }

    pub(super) async fn relay(shared: Arc<Shared>, client: TcpStream) {
        let Some(Link { mut client_rx, mut client_tx, mut broker_rx, mut broker_tx, mut epoch, .. }) =
            link(&shared, client).await
        else {
            return;
        };
        // Correlation id → version of the Metadata requests in flight.
        let pending = std::sync::Mutex::new(HashMap::<i32, i16>::new());
        let upstream = async {
            while let Ok(frame) = read_frame(&mut client_rx).await {
                let head = Head::of(&frame);
                if let Some(h) = head.filter(|h| h.key == METADATA) {
                    pending.lock().unwrap_or_else(|p| p.into_inner()).insert(h.correlation_id, h.version);
                }
                let produce = head.is_some_and(|h| h.key == PRODUCE);
                if produce {
                    let mut t = shared.produced.lock().unwrap_or_else(|p| p.into_inner());
                    let now = tokio::time::Instant::now();
                    t.requests += 1;
                    t.bytes += frame.len() as u64;
                    t.first.get_or_insert(now);
                    t.last = Some(now);
                }
                if broker_tx.write_all(&frame).await.is_err() {
                    break;
                }
                // Cut now, before the broker's answer can come back.
                if produce && shared.spring_trip() {
                    break;
                }
            }
        };
        let downstream = async {
            while let Ok(mut frame) = read_frame(&mut broker_rx).await {
                let version = (frame.len() >= 8)
                    .then(|| pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&be_i32(&frame[4..])))
                    .flatten();
                if let Some(rewritten) = version.and_then(|v| rewrite(&frame, v, shared.addr)) {
                    frame = rewritten;
                }
                if client_tx.write_all(&frame).await.is_err() {
                    break;
                }
            }
        };
        tokio::select! {
            _ = upstream => {}
            _ = downstream => {}
            _ = epoch.changed() => {}
        }
    }
}
