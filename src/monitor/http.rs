//! The metrics endpoint: `GET /metrics` (or `/`) answers a fresh snapshot in
//! Prometheus' text format, over HTTP/1.1 with hyper.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use http_body_util::Full;
use hyper::{Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

use crate::kafka::{Connection, KafkaError};

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn answer(conn: &Connection, scrapes: &AtomicU64, path: &str) -> Response<Full<Bytes>> {
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
    match super::snapshot(conn).await {
        Ok(s) => reply(200, super::prometheus(&s, scrapes.fetch_add(1, Ordering::Relaxed) + 1)),
        Err(e) => reply(503, format!("# the broker did not answer: {e}\n")),
    }
}

/// Serves the metrics on `listener` until `stop` is set.
pub async fn serve(
    conn: Connection,
    listener: tokio::net::TcpListener,
    stop: Arc<AtomicBool>,
) -> Result<(), KafkaError> {
    let scrapes = Arc::new(AtomicU64::new(0));
    let conn = Arc::new(conn);
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        let Ok(Ok((stream, _peer))) = accepted else { continue };
        let (conn, scrapes) = (conn.clone(), scrapes.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (conn, scrapes) = (conn.clone(), scrapes.clone());
                async move { Ok::<_, Infallible>(answer(&conn, &scrapes, req.uri().path()).await) }
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
