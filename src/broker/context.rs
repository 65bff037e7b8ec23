//! Which broker a command talks to, decided once per command: the working
//! directory's managed-broker files, the broker chinook manages there (only
//! when the connection points at it) and the connection settings. Commands
//! resolve a [`Context`] at the start and hand it down; nothing below asks
//! again.

use std::{
    net::{SocketAddr, ToSocketAddrs},
    path::Path,
};

use super::{BrokerError, Paths, State, process};
use crate::kafka::{Connection, security::Security};

/// Where a command works.
#[derive(Clone, Debug)]
pub struct Context {
    pub paths: Paths,
    /// The broker chinook manages in this directory, when the connection is to it.
    pub managed: Option<State>,
    pub conn: Connection,
}

impl Context {
    /// Resolves the context under `root`: the brokers given (flag or
    /// `CHINOOK_BROKERS`), else the managed broker, else `localhost:9092`.
    /// A managed broker counts as the one in use when no brokers were given
    /// or when one of them resolves to its address (`localhost:19092` is the
    /// same broker as `127.0.0.1:19092`). A managed broker that serves TLS
    /// is verified with the CA it wrote, unless `security` names another.
    /// The security settings come first in the connection's overrides, the
    /// `-X` ones after them (they win).
    pub fn resolve(
        root: &Path,
        brokers: Option<&str>,
        mut security: Security,
        overrides: Vec<(String, String)>,
    ) -> Result<Self, BrokerError> {
        let paths = Paths::under(root);
        let state = process::current(&paths)?.0;
        let managed = state.filter(|s| brokers.is_none_or(|b| points_at(b, s.bootstrap)));
        let brokers = brokers
            .map(str::to_string)
            .or_else(|| managed.as_ref().map(|s| s.bootstrap.to_string()))
            .unwrap_or_else(|| "localhost:9092".to_string());
        if let Some(ca) = managed.as_ref().and_then(|m| m.tls_ca.clone())
            && security.ca.is_none()
            && security.protocol.is_none()
        {
            security.ca = Some(ca);
        }
        if let Some(reason) = security.problem() {
            return Err(BrokerError::Settings { reason });
        }
        let overrides = security.settings().into_iter().chain(overrides).collect();
        Ok(Self { paths, managed, conn: Connection { brokers, overrides } })
    }

    /// The context of the current directory.
    pub fn here(
        brokers: Option<&str>,
        security: Security,
        overrides: Vec<(String, String)>,
    ) -> Result<Self, BrokerError> {
        Self::resolve(&std::env::current_dir().unwrap_or_default(), brokers, security, overrides)
    }
}

/// Whether one of the comma-separated `brokers` resolves to `addr`. Two
/// loopback addresses with the same port count as the same listener.
pub fn points_at(brokers: &str, addr: SocketAddr) -> bool {
    brokers
        .split(',')
        .map(str::trim)
        .filter_map(|b| b.to_socket_addrs().ok())
        .flatten()
        .any(|a| a == addr || (a.port() == addr.port() && a.ip().is_loopback() && addr.ip().is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::points_at;

    #[test]
    fn localhost_and_loopback_are_the_same_broker() {
        let addr = "127.0.0.1:19092".parse().unwrap();
        assert!(points_at("localhost:19092", addr));
        assert!(points_at("127.0.0.1:19092", addr));
        assert!(points_at("example.invalid:1, localhost:19092", addr));
        assert!(!points_at("localhost:19093", addr));
        assert!(!points_at("not an address", addr));
    }
}
