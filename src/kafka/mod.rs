//! Talking to a Kafka-compatible broker with rdkafka: connection settings
//! (`--brokers`, `-X key=value`), a fast reachability probe, and the admin
//! operations behind `topics` and `broker status`.

pub mod admin;
pub mod consumer;
pub mod groups;
pub mod offsets;
pub mod producer;
pub mod records;
pub mod scratch;
pub mod topics;

use std::time::Duration;

use miette::Diagnostic;
use rdkafka::ClientConfig;
use thiserror::Error;

/// How long a first TCP connection to a bootstrap address may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a metadata or admin request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error, Diagnostic)]
pub enum KafkaError {
    #[error("no Kafka broker answers at {brokers}: {reason}")]
    #[diagnostic(
        code(chinook::kafka::unreachable),
        help(
            "start the embedded broker with `chinook broker start`, or point --brokers (or CHINOOK_BROKERS) at yours"
        )
    )]
    Unreachable { brokers: String, reason: String },

    #[error("bad --brokers value {value:?}: {reason}")]
    #[diagnostic(
        code(chinook::kafka::brokers),
        help("give host:port pairs separated by commas, e.g. --brokers localhost:9092")
    )]
    BadBrokers { value: String, reason: String },

    #[error("{operation} failed: {reason}")]
    #[diagnostic(code(chinook::kafka::request), help("{help}"))]
    Request { operation: String, reason: String, help: String },

    #[error("topic {topic} does not exist")]
    #[diagnostic(
        code(chinook::kafka::no_topic),
        help("create the lab topics with `chinook topics create`; `chinook topics list` shows what exists")
    )]
    NoTopic { topic: String },
}

impl KafkaError {
    pub fn exit_code(&self) -> i32 {
        match self {
            KafkaError::Unreachable { .. } => crate::exit::UNAVAILABLE,
            KafkaError::BadBrokers { .. } => crate::exit::USAGE,
            _ => crate::exit::FAILED,
        }
    }

    pub fn request(operation: &str, reason: impl ToString) -> Self {
        KafkaError::Request {
            operation: operation.into(),
            reason: reason.to_string(),
            help: "check `chinook broker status`; run with -v for details".into(),
        }
    }
}

/// Where the broker is and how to talk to it.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Comma-separated host:port list.
    pub brokers: String,
    /// Extra librdkafka properties (`-X key=value`), applied last.
    pub overrides: Vec<(String, String)>,
}

impl Connection {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self { brokers: brokers.into(), overrides: Vec::new() }
    }

    /// rdkafka settings with chinook's defaults, then the `-X` overrides.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "chinook")
            .set("socket.connection.setup.timeout.ms", "5000")
            .set("reconnect.backoff.max.ms", "250")
            .set("log_level", "3");
        self.apply_overrides(&mut config);
        config
    }

    /// Applies the `-X` properties last, so they win over chinook's own settings.
    pub fn apply_overrides(&self, config: &mut ClientConfig) {
        for (k, v) in &self.overrides {
            config.set(k, v);
        }
    }

    /// Fails fast, with the address tried, when no bootstrap address accepts
    /// a TCP connection (librdkafka alone would retry quietly for a long time).
    pub async fn probe(&self) -> Result<(), KafkaError> {
        let mut reasons = Vec::new();
        for addr in self.brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            if !addr.contains(':') {
                return Err(KafkaError::BadBrokers {
                    value: self.brokers.clone(),
                    reason: format!("{addr} has no port"),
                });
            }
            match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => reasons.push(format!("{addr}: {e}")),
                Err(_) => reasons.push(format!("{addr}: no answer within {} s", PROBE_TIMEOUT.as_secs())),
            }
        }
        if reasons.is_empty() {
            return Err(KafkaError::BadBrokers { value: self.brokers.clone(), reason: "no address given".into() });
        }
        Err(KafkaError::Unreachable { brokers: self.brokers.clone(), reason: reasons.join("; ") })
    }
}
