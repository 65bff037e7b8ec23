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
pub mod security;
pub mod topics;

use std::time::Duration;

use miette::Diagnostic;
use rdkafka::ClientConfig;
use thiserror::Error;

/// How long a first TCP connection to a bootstrap address may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the first request after a connection may take (TLS and SASL included).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
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

    #[error("the broker at {brokers} refused the login: {reason}")]
    #[diagnostic(
        code(chinook::kafka::authentication),
        help(
            "check the user name (--sasl-username), the password (CHINOOK_SASL_PASSWORD) and the mechanism (--sasl-mechanism), or the profile's"
        )
    )]
    Authentication { brokers: String, reason: String },

    #[error("no secure connection to {brokers}: {reason}")]
    #[diagnostic(
        code(chinook::kafka::tls),
        help(
            "the broker's certificate must be signed by a CA you trust: pass it with --ca-cert (chinook's own broker writes .chinook/broker/tls-ca.pem); and use TLS only with a TLS listener"
        )
    )]
    Tls { brokers: String, reason: String },

    #[error("{brokers} accepts connections but closes them at the first request: {reason}")]
    #[diagnostic(
        code(chinook::kafka::handshake),
        help(
            "it probably requires TLS or SASL: --security-protocol SSL|SASL_SSL|SASL_PLAINTEXT, --ca-cert, --sasl-username with CHINOOK_SASL_PASSWORD, or --profile NAME"
        )
    )]
    Handshake { brokers: String, reason: String },

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
            KafkaError::Unreachable { .. }
            | KafkaError::Authentication { .. }
            | KafkaError::Tls { .. }
            | KafkaError::Handshake { .. } => crate::exit::UNAVAILABLE,
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
#[derive(Clone)]
pub struct Connection {
    /// Comma-separated host:port list.
    pub brokers: String,
    /// Extra librdkafka properties (`-X key=value`), applied last.
    pub overrides: Vec<(String, String)>,
}

impl std::fmt::Debug for Connection {
    /// Secrets (a SASL password) are shown as `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let overrides: Vec<(&str, &str)> = self
            .overrides
            .iter()
            .map(|(k, v)| (k.as_str(), if security::is_secret(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("Connection").field("brokers", &self.brokers).field("overrides", &overrides).finish()
    }
}

/// What librdkafka said while a connection failed (its error callbacks).
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<String>>);

impl rdkafka::ClientContext for Heard {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel::*;
        // A connection's failures are logged under FAIL, some only as information.
        if facility == "FAIL" || matches!(level, Emerg | Alert | Critical | Error | Warning) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(message.to_string());
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{reason} ({error})"));
    }
}

impl rdkafka::consumer::ConsumerContext for Heard {}

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

    /// [`Connection::client_config`], with librdkafka's information messages
    /// too (where it explains a failed connection).
    fn chatty_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        // rdkafka sets the client's level from this field, whatever the log_level property says.
        config.set_log_level(rdkafka::config::RDKafkaLogLevel::Info);
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
                Ok(Ok(_)) => return self.handshake().await,
                Ok(Err(e)) => reasons.push(format!("{addr}: {e}")),
                Err(_) => reasons.push(format!("{addr}: no answer within {} s", PROBE_TIMEOUT.as_secs())),
            }
        }
        if reasons.is_empty() {
            return Err(KafkaError::BadBrokers { value: self.brokers.clone(), reason: "no address given".into() });
        }
        Err(KafkaError::Unreachable { brokers: self.brokers.clone(), reason: reasons.join("; ") })
    }

    /// One Metadata request with these settings: the TLS handshake and the
    /// SASL login happen before it, so a refusal is told apart here — a wrong
    /// password, an untrusted certificate, or a broker that wants TLS or SASL.
    async fn handshake(&self) -> Result<(), KafkaError> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let conn = self.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let c: BaseConsumer<Heard> = conn
                .chatty_config()
                .create_with_context(Heard::default())
                .map_err(|e| KafkaError::BadBrokers { value: conn.brokers.clone(), reason: e.to_string() })?;
            // The broker accepted the connection: a busy one gets time to answer, while a
            // refused login or certificate ends the wait as soon as librdkafka reports it.
            let deadline = std::time::Instant::now() + HANDSHAKE_TIMEOUT;
            loop {
                if c.fetch_metadata(None, Duration::from_millis(500)).is_ok() {
                    return Ok(());
                }
                // Logs and error events reach the context only when the client is polled.
                for _ in 0..100 {
                    if c.poll(Duration::ZERO).is_none() {
                        break;
                    }
                }
                let heard = c.context().0.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(refused) = classify(&conn.brokers, &heard) {
                    return Err(refused);
                }
                // Anything else (a silent or slow broker, a timeout) is the operation's to
                // meet and report, as it would without this check.
                if !heard.is_empty() || std::time::Instant::now() >= deadline {
                    return Ok(());
                }
            }
        });
        checked.await.map_err(|e| KafkaError::request("connecting", e))?
    }
}

/// The refusal librdkafka's messages (`heard`, oldest first) report, if any:
/// a login refused, a certificate not trusted, or a connection closed at the
/// first request (a plaintext client at a TLS or SASL listener).
fn classify(brokers: &str, heard: &[String]) -> Option<KafkaError> {
    let brokers = brokers.to_string();
    let find = |words: &[&str]| {
        heard.iter().find(|m| {
            let m = m.to_ascii_lowercase();
            words.iter().any(|w| m.contains(w))
        })
    };
    // The message itself, without librdkafka's thread prefix.
    let said = |m: &String| m.rsplit("]: ").next().unwrap_or(m).trim().to_string();
    if let Some(m) = find(&["authentication"]) {
        Some(KafkaError::Authentication { brokers, reason: said(m) })
    } else if let Some(m) = find(&["ssl", "certificate", "tls"]) {
        Some(KafkaError::Tls { brokers, reason: said(m) })
    } else {
        find(&["security.protocol", "broken pipe", "disconnected", "connection reset"])
            .map(|m| KafkaError::Handshake { brokers, reason: said(m) })
    }
}
