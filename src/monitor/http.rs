//! Metrics over HTTP. The server (hyper, HTTP/1.1) answers `GET /metrics`
//! (or `/`) with a text rendered afresh for each scrape: the monitor's takes a
//! snapshot and adds it to the history (so each scrape is a sample of the
//! statuses' window); `consume --metrics` renders its counters. [`scrape`]
//! is the other end: one GET, as Prometheus makes it, for the lab checks
//! that read a student's metrics.

use std::{
    convert::Infallible,
    future::Future,
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::History;
use crate::kafka::{Connection, KafkaError};

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `render()`'s text at `/metrics` on `listener` until `stop` is set;
/// a render that fails answers 503 with its reason.
pub async fn serve_text<F, Fut>(listener: tokio::net::TcpListener, stop: Arc<AtomicBool>, render: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    let render = Arc::new(render);
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        let Ok(Ok((stream, _peer))) = accepted else { continue };
        let render = render.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let render = render.clone();
                async move {
                    let (status, body) = if req.uri().path() != "/metrics" && req.uri().path() != "/" {
                        (404, "chinook serves /metrics\n".to_string())
                    } else {
                        match render().await {
                            Ok(text) => (200, text),
                            Err(e) => (503, format!("# {e}\n")),
                        }
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .header("content-type", CONTENT_TYPE)
                            .body(Full::new(Bytes::from(body)))
                            .expect("a valid response"),
                    )
                }
            });
            // No writev: it raises SIGPIPE (which chinook keeps at its default) when a scraper hangs up.
            let _ = http1::Builder::new().writev(false).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Serves the monitor's metrics on `listener` until `stop` is set; statuses
/// are judged over the last `window` scrapes.
pub async fn serve(
    conn: Connection,
    control: Option<SocketAddr>,
    window: usize,
    listener: tokio::net::TcpListener,
    stop: Arc<AtomicBool>,
) -> Result<(), KafkaError> {
    let conn = Arc::new(conn);
    let history = Arc::new(Mutex::new(History::new(window)));
    let scrapes = Arc::new(AtomicU64::new(0));
    serve_text(listener, stop, move || {
        let (conn, history, scrapes) = (conn.clone(), history.clone(), scrapes.clone());
        async move {
            let s = super::snapshot(&conn, control).await.map_err(|e| format!("the broker did not answer: {e}"))?;
            let view = history.lock().expect("the history lock is never poisoned").push(s);
            Ok(super::prometheus(&view, scrapes.fetch_add(1, Ordering::Relaxed) + 1))
        }
    })
    .await;
    Ok(())
}

/// Binds the metrics address, with a clear error when it is taken.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, KafkaError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| KafkaError::request(&format!("listening on {addr}"), e))
}

/// `GET /metrics` from `addr`, within `limit`: the body of a 200 answer, or why not.
pub async fn scrape(addr: &str, limit: Duration) -> Result<String, String> {
    let get = async {
        let mut stream =
            tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
        // HTTP/1.0: the answer comes whole (never chunked) and the connection closes after it.
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("asking {addr}: {e}"))?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(|e| format!("reading {addr}'s answer: {e}"))?;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| format!("{addr} answered no HTTP"))?;
        let status = head.lines().next().unwrap_or_default();
        if status.split_whitespace().nth(1) != Some("200") {
            return Err(format!("{addr} answered `{status}`"));
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(limit, get).await.map_err(|_| format!("{addr} did not answer within {limit:?}"))?
}
