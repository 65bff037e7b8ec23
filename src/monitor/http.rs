//! The metrics endpoint: `GET /metrics` (or `/`) takes a fresh snapshot, adds
//! it to the history (so each scrape is a sample of the statuses' window) and
//! answers in Prometheus' text format, over HTTP/1.1 with hyper.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use http_body_util::Full;
use hyper::{Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

use super::History;
use crate::kafka::{Connection, KafkaError};

/// What every scrape shares.
struct Shared {
    conn: Connection,
    /// The broker's control endpoint, when chinook started it.
    control: Option<SocketAddr>,
    history: Mutex<History>,
    scrapes: AtomicU64,
}

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn answer(shared: &Shared, path: &str) -> Response<Full<Bytes>> {
    let reply = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", CONTENT_TYPE)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if path != "/metrics" && path != "/" {
        return reply(404, "chinook serves /metrics\n".into());
    }
    match super::snapshot(&shared.conn, shared.control).await {
        Ok(s) => {
            let view = shared.history.lock().expect("the history lock is never poisoned").push(s);
            reply(200, super::prometheus(&view, shared.scrapes.fetch_add(1, Ordering::Relaxed) + 1))
        }
        Err(e) => reply(503, format!("# the broker did not answer: {e}\n")),
    }
}

/// Serves the metrics on `listener` until `stop` is set; statuses are judged
/// over the last `window` scrapes.
pub async fn serve(
    conn: Connection,
    control: Option<SocketAddr>,
    window: usize,
    listener: tokio::net::TcpListener,
    stop: Arc<AtomicBool>,
) -> Result<(), KafkaError> {
    let shared =
        Arc::new(Shared { conn, control, history: Mutex::new(History::new(window)), scrapes: AtomicU64::new(0) });
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        let Ok(Ok((stream, _peer))) = accepted else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, req.uri().path()).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
    Ok(())
}

/// Binds the metrics address, with a clear error when it is taken.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, KafkaError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| KafkaError::request(&format!("listening on {addr}"), e))
}
