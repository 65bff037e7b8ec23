//! The broker a student runs: engines (embedded tansu, Bufstream, or an
//! external broker), the background process and its state files under
//! `.chinook/broker/`, the front door that stages outages and guards the
//! broker (TLS, SASL, topic prefixes), and the control endpoint the CLI talks to.

pub mod acl;
pub mod adapter;
pub mod bufstream;
pub mod context;
pub mod control;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "embedded")]
pub mod framed;
pub mod frontdoor;
#[cfg(feature = "embedded")]
pub mod groups;
pub mod guard;
pub mod ports;
pub mod process;
#[cfg(feature = "embedded")]
pub mod registry;
pub mod sasl;
#[cfg(feature = "embedded")]
pub mod storage;
pub mod tls;
#[cfg(feature = "embedded")]
pub mod txn;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Which broker chinook runs or talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// tansu, inside chinook, in memory, schema-enforcing (default).
    Embedded,
    /// A `bufstream` binary found on PATH, run in local mode.
    Bufstream,
    /// A broker you run yourself (Kafka, Redpanda, Bufstream, ...): use --brokers.
    External,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Embedded => "embedded (tansu 0.6.0, in memory)",
            Engine::Bufstream => "bufstream",
            Engine::External => "external",
        })
    }
}

#[derive(Debug, Error, Diagnostic)]
pub enum BrokerError {
    #[error("port {port} is already in use{}", owner.as_ref().map(|o| format!(" by {o}")).unwrap_or_default())]
    #[diagnostic(
        code(chinook::broker::port_in_use),
        help(
            "stop whatever holds it, or pick another port: `chinook broker start --port 19092` (then pass --brokers localhost:19092 or set CHINOOK_BROKERS)"
        )
    )]
    PortInUse { port: u16, owner: Option<String> },

    #[error("the broker process exited during start-up (exit status: {status})")]
    #[diagnostic(code(chinook::broker::died), help("last lines of {log}:\n{tail}"))]
    DiedAtStart { status: String, log: String, tail: String },

    #[error("no chinook-managed broker is running here (no {state})")]
    #[diagnostic(
        code(chinook::broker::not_running),
        help(
            "start one with `chinook broker start`; state is kept per directory, so run chinook from the same directory"
        )
    )]
    NotRunning { state: String },

    #[error("the broker's control endpoint at {addr} did not answer: {reason}")]
    #[diagnostic(
        code(chinook::broker::control),
        help("the process may have died: `chinook broker status` tells, `chinook broker logs` shows why")
    )]
    Control { addr: SocketAddr, reason: String },

    #[error("{what}: {reason}")]
    #[diagnostic(code(chinook::broker::io))]
    Io { what: String, reason: String },

    #[error("`bufstream` was not found on PATH")]
    #[diagnostic(
        code(chinook::broker::no_bufstream),
        help(
            "install Bufstream from Buf's documentation and put it on PATH, or use the embedded engine (the default); see SETUP.md"
        )
    )]
    NoBufstream,

    #[error("{feature} needs a broker started by chinook (embedded or bufstream); this one is {engine}")]
    #[diagnostic(code(chinook::broker::unsupported), help("start one with `chinook broker start`"))]
    Unsupported { feature: String, engine: String },

    #[error("the users file {file}: {reason}")]
    #[diagnostic(
        code(chinook::broker::users),
        help(
            "one `user,password` or `user,password,prefix` per line; the prefix (or --topic-prefix, default `{{user}}.`) starts the names of the topics that user may use, `*` lets them use every topic"
        )
    )]
    BadUsers { file: String, reason: String },

    #[error("topic prefixes are enforced in front of the embedded engine only; this broker is {engine}")]
    #[diagnostic(
        code(chinook::broker::prefixes),
        help(
            "use the embedded engine (the default), or let every user use every topic: --topic-prefix '*' (and no prefix in the users file)"
        )
    )]
    PrefixesNeedEmbedded { engine: String },

    #[error("this chinook was built without the embedded broker")]
    #[diagnostic(
        code(chinook::broker::slim),
        help("rebuild with default features (`cargo install --path .`), or use --engine bufstream / external")
    )]
    NoEmbedded,

    #[error("connection settings: {reason}")]
    #[diagnostic(
        code(chinook::connection::settings),
        help(
            "flags win over the profile: --profile NAME (~/.config/chinook/profiles.toml), --security-protocol, --sasl-mechanism, --sasl-username, CHINOOK_SASL_PASSWORD, --ca-cert"
        )
    )]
    Settings { reason: String },
}

impl BrokerError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BrokerError::Settings { .. } => crate::exit::USAGE,
            BrokerError::NotRunning { .. } | BrokerError::Control { .. } => crate::exit::UNAVAILABLE,
            _ => crate::exit::FAILED,
        }
    }

    pub fn io(path: &Path, e: std::io::Error) -> Self {
        BrokerError::Io { what: path.display().to_string(), reason: e.to_string() }
    }
}

/// Files a managed broker keeps in the working directory.
#[derive(Clone, Debug)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    /// `.chinook/broker` under `root` (the working directory by default).
    pub fn under(root: &Path) -> Self {
        Self { dir: root.join(".chinook").join("broker") }
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("broker.log")
    }
    pub fn schemas(&self) -> PathBuf {
        self.dir.join("schemas")
    }
    /// The schema registry's subjects, versions and schemas.
    pub fn registry(&self) -> PathBuf {
        self.dir.join("registry.json")
    }
    /// The CA certificate a TLS front door's certificate is signed by.
    pub fn tls_ca(&self) -> PathBuf {
        self.dir.join("tls-ca.pem")
    }
    pub fn bufstream_config(&self) -> PathBuf {
        self.dir.join("bufstream.yaml")
    }
    /// The workshop `.proto` files, written out for Bufstream's `--schema`.
    pub fn proto(&self) -> PathBuf {
        self.dir.join("proto")
    }
}

/// What a running managed broker wrote about itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub pid: u32,
    pub engine: Engine,
    /// The address clients use (the front door).
    pub bootstrap: SocketAddr,
    /// The broker's own listener behind the front door.
    pub internal: SocketAddr,
    /// The control endpoint.
    pub control: SocketAddr,
    pub started_unix_ms: u64,
    pub log: PathBuf,
    pub schema_enforcement: bool,
    /// The CA certificate of its TLS front door, when it serves TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// The users file, when it requires SASL (the path only: passwords stay in the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<PathBuf>,
    /// The topic prefix template for users without a third column (with `users`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_prefix: Option<String>,
    /// The address it listens on, when not loopback (0.0.0.0: every address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::IpAddr>,
    /// The schema registry (Confluent's REST API), when it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<SocketAddr>,
}

impl State {
    pub fn read(paths: &Paths) -> Result<Option<State>, BrokerError> {
        match std::fs::read(paths.state()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| BrokerError::Io {
                what: paths.state().display().to_string(),
                reason: format!("unreadable ({e}); delete it"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BrokerError::io(&paths.state(), e)),
        }
    }

    /// Writes atomically (temp file + rename) so readers never see half a file.
    pub fn write(&self, paths: &Paths) -> Result<(), BrokerError> {
        let tmp = paths.dir.join(format!("state.json.{}", self.pid));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).expect("state serializes"))
            .map_err(|e| BrokerError::io(&tmp, e))?;
        std::fs::rename(&tmp, paths.state()).map_err(|e| BrokerError::io(&paths.state(), e))
    }
}

/// Where clients should connect for a listening address (0.0.0.0 → loopback).
pub fn client_address(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// Is a process with this pid alive?
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
