//! The Bufstream engine: a `bufstream` binary from PATH, run in local mode
//! behind the front door, with the workshop `.proto` files (written to
//! `.chinook/broker/proto/`) as its schema input.
//!
//! Bufstream cannot be downloaded on the machines chinook is tested on, so
//! the config and command line are generated and tested here, and SETUP.md
//! says plainly what has and has not been run against a real Bufstream.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// The config template shipped in `fixtures/bufstream/bufstream.yaml`.
const TEMPLATE: &str = include_str!("../../fixtures/bufstream/bufstream.yaml");

/// The bufstream.yaml for a broker listening on `internal` and advertising `advertised`.
pub fn config(internal: SocketAddr, advertised: SocketAddr) -> String {
    TEMPLATE.replace("127.0.0.1:19092", &internal.to_string()).replace("127.0.0.1:9092", &advertised.to_string())
}

/// `bufstream serve -c <config> --schema <dir>` as program and arguments.
pub fn command_line(binary: &Path, config: &Path, schema_dir: &Path) -> (PathBuf, Vec<String>) {
    (
        binary.to_path_buf(),
        vec![
            "serve".into(),
            "--config".into(),
            config.display().to_string(),
            "--schema".into(),
            schema_dir.display().to_string(),
        ],
    )
}

/// Writes the workshop `.proto` files under `dir` (a Buf input directory).
pub fn write_protos(dir: &Path) -> Result<(), super::BrokerError> {
    for (name, text) in crate::codec::PROTO_SOURCES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| super::BrokerError::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| super::BrokerError::io(&path, e))?;
    }
    Ok(())
}

/// The first `bufstream` on PATH.
pub fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("bufstream")).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_listens_inside_and_advertises_the_front_door() {
        let text = config("127.0.0.1:40001".parse().unwrap(), "127.0.0.1:9092".parse().unwrap());
        assert!(text.contains("version: v1beta1"));
        assert!(text.contains("listen_address: 127.0.0.1:40001"), "{text}");
        assert!(text.contains("advertise_address: 127.0.0.1:9092"), "{text}");
    }

    #[test]
    fn command_line_uses_serve_with_config_and_schema() {
        let (bin, args) = command_line(
            Path::new("/usr/bin/bufstream"),
            Path::new(".chinook/broker/bufstream.yaml"),
            Path::new("proto"),
        );
        assert_eq!(bin, Path::new("/usr/bin/bufstream"));
        assert_eq!(args, ["serve", "--config", ".chinook/broker/bufstream.yaml", "--schema", "proto"]);
    }
}
