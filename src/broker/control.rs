//! The control endpoint of a running chinook broker process: one JSON request
//! per line on a loopback TCP port recorded in the state file, one JSON reply.
//! `broker status`, `stop`, `outage` and `latency` talk to it.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

use super::{
    BrokerError,
    frontdoor::{DoorState, FrontDoor},
};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    Outage { millis: u64 },
    Restore,
    Latency { millis: u64 },
    Stop,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Status { pid: u32, uptime_ms: u64, door: DoorState },
    Done,
}

/// Serves requests until the process ends; a `Stop` is passed on to `stop`.
pub async fn serve(listener: TcpListener, door: FrontDoor, started: std::time::Instant, stop: mpsc::Sender<()>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let door = door.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (rx, mut tx) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(rx).read_line(&mut line).await.is_err() {
                return;
            }
            let reply = match serde_json::from_str::<Request>(&line) {
                Ok(Request::Status) => Reply::Status {
                    pid: std::process::id(),
                    uptime_ms: started.elapsed().as_millis() as u64,
                    door: door.state(),
                },
                Ok(Request::Outage { millis }) => {
                    door.outage(Duration::from_millis(millis)).await;
                    Reply::Done
                }
                Ok(Request::Restore) => {
                    door.restore().await;
                    Reply::Done
                }
                Ok(Request::Latency { millis }) => {
                    door.set_latency(Duration::from_millis(millis));
                    Reply::Done
                }
                Ok(Request::Stop) => {
                    let _ = stop.send(()).await;
                    Reply::Done
                }
                Err(_) => return,
            };
            let mut text = serde_json::to_string(&reply).expect("replies serialize");
            text.push('\n');
            let _ = tx.write_all(text.as_bytes()).await;
        });
    }
}

/// Sends one request to the control endpoint at `addr`.
pub async fn request(addr: SocketAddr, request: &Request) -> Result<Reply, BrokerError> {
    let call = async {
        let stream = TcpStream::connect(addr).await?;
        let (rx, mut tx) = stream.into_split();
        let mut text = serde_json::to_string(request).expect("requests serialize");
        text.push('\n');
        tx.write_all(text.as_bytes()).await?;
        let mut line = String::new();
        BufReader::new(rx).read_line(&mut line).await?;
        serde_json::from_str::<Reply>(&line).map_err(std::io::Error::other)
    };
    match tokio::time::timeout(Duration::from_secs(3), call).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(BrokerError::Control { addr, reason: e.to_string() }),
        Err(_) => Err(BrokerError::Control { addr, reason: "no reply within 3 s".into() }),
    }
}
