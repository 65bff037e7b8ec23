//! Helpers shared by the integration tests: the built binary and the fixtures.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// The chinook binary, run from the repository root with colour off.
pub fn chinook() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("chinook").expect("the chinook binary is built");
    cmd.current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("CHINOOK_BROKERS");
    cmd
}

#[derive(Deserialize)]
pub struct Fixture {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

pub fn event_fixtures() -> Vec<Fixture> {
    #[derive(Deserialize)]
    struct File {
        fixture: Vec<Fixture>,
    }
    let text = std::fs::read_to_string(fixture("events/fixtures.toml")).unwrap();
    toml::from_str::<File>(&text).unwrap().fixture
}

#[derive(Deserialize)]
pub struct Malformed {
    pub file: String,
    pub what: String,
    pub offset: usize,
    pub says: String,
    #[serde(default)]
    pub length_delimited: bool,
    pub protoc_rejects: bool,
}

pub fn malformed_cases() -> Vec<Malformed> {
    #[derive(Deserialize)]
    struct File {
        case: Vec<Malformed>,
    }
    let text = std::fs::read_to_string(fixture("malformed/cases.toml")).unwrap();
    toml::from_str::<File>(&text).unwrap().case
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
