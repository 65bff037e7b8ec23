//! Connecting to secured brokers: TLS and SASL (PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512), from flags, the environment, or a named profile in
//! `~/.config/chinook/profiles.toml` (as rpk's `--profile`), mapped to
//! librdkafka's settings. A password never shows: [`Secret`] prints `***`,
//! and a connection's settings print with their secrets masked.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A password or other secret: kept, used, never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Whether a librdkafka setting holds a secret (its value is masked when shown).
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret") || key.ends_with(".key.pem") || key.contains("sasl.jaas")
}

/// How to reach a secured broker; what is not set is left to librdkafka.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (inferred when not given).
    #[serde(default, rename = "security_protocol")]
    pub protocol: Option<String>,
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[serde(default, rename = "sasl_mechanism")]
    pub mechanism: Option<String>,
    #[serde(default, rename = "sasl_username")]
    pub username: Option<String>,
    #[serde(default, rename = "sasl_password")]
    pub password: Option<Secret>,
    /// The CA certificate(s) that sign the broker's certificate (PEM).
    #[serde(default, rename = "ca_cert")]
    pub ca: Option<PathBuf>,
}

pub const PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
pub const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

impl Security {
    /// `self`, with what `over` sets taking its place.
    pub fn under(self, over: Security) -> Security {
        Security {
            protocol: over.protocol.or(self.protocol),
            mechanism: over.mechanism.or(self.mechanism),
            username: over.username.or(self.username),
            password: over.password.or(self.password),
            ca: over.ca.or(self.ca),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Security::default()
    }

    /// The protocol given, else the one the other settings imply: SASL when
    /// a user is named, TLS when a CA is.
    pub fn protocol(&self) -> Option<String> {
        self.protocol.as_ref().map(|p| p.to_ascii_uppercase()).or_else(|| {
            match (self.username.is_some() || self.mechanism.is_some(), self.ca.is_some()) {
                (true, true) => Some("SASL_SSL".into()),
                (true, false) => Some("SASL_PLAINTEXT".into()),
                (false, true) => Some("SSL".into()),
                (false, false) => None,
            }
        })
    }

    /// What is wrong with these settings, before any connection is tried.
    pub fn problem(&self) -> Option<String> {
        if let Some(p) = self.protocol()
            && !PROTOCOLS.contains(&p.as_str())
        {
            return Some(format!("security protocol {p:?} is not one of {}", PROTOCOLS.join(", ")));
        }
        if let Some(m) = &self.mechanism
            && !MECHANISMS.contains(&m.to_ascii_uppercase().as_str())
        {
            return Some(format!("SASL mechanism {m:?} is not one of {}", MECHANISMS.join(", ")));
        }
        let sasl = self.protocol().is_some_and(|p| p.starts_with("SASL"));
        if sasl && (self.username.is_none() || self.password.is_none()) {
            return Some(
                "SASL needs a user name and a password: --sasl-username and CHINOOK_SASL_PASSWORD (or a profile)"
                    .into(),
            );
        }
        if let Some(ca) = &self.ca
            && !ca.is_file()
        {
            return Some(format!("the CA certificate {} does not exist", ca.display()));
        }
        None
    }

    /// librdkafka's settings for these (secrets included: for the client only).
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(p) = self.protocol() {
            out.push(("security.protocol".into(), p));
        }
        if self.protocol().is_some_and(|p| p.starts_with("SASL")) {
            let mechanism = self.mechanism.clone().unwrap_or_else(|| "PLAIN".into()).to_ascii_uppercase();
            out.push(("sasl.mechanism".into(), mechanism));
        }
        if let Some(u) = &self.username {
            out.push(("sasl.username".into(), u.clone()));
        }
        if let Some(p) = &self.password {
            out.push(("sasl.password".into(), p.expose().to_string()));
        }
        if let Some(ca) = &self.ca {
            out.push(("ssl.ca.location".into(), ca.display().to_string()));
        }
        out
    }
}

/// One profile of `profiles.toml`: brokers and security.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub brokers: Option<String>,
    #[serde(flatten)]
    pub security: Security,
    /// The environment variable that holds the password (instead of `sasl_password`).
    pub sasl_password_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, Profile>,
}

/// Where profiles live: `CHINOOK_PROFILES`, else `$XDG_CONFIG_HOME/chinook/profiles.toml`,
/// else `~/.config/chinook/profiles.toml`.
pub fn profiles_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CHINOOK_PROFILES").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
        .unwrap_or_default();
    config.join("chinook").join("profiles.toml")
}

/// The profile `name` from `path`, its password read from the environment
/// variable it names; or why not.
pub fn load_profile(path: &Path, name: &str) -> Result<Profile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let file: ProfilesFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
    let mut profile = file.profiles.get(name).cloned().ok_or_else(|| {
        format!(
            "{} has no profile {name:?} (it has: {})",
            path.display(),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )
    })?;
    if let Some(var) = &profile.sasl_password_env {
        let value = std::env::var(var)
            .map_err(|_| format!("profile {name:?} takes its password from ${var}, which is not set"))?;
        profile.security.password = Some(Secret::new(value));
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_what_is_given_and_secrets_never_print() {
        let s = Security {
            username: Some("ada".into()),
            password: Some(Secret::new("s3cret")),
            mechanism: Some("scram-sha-512".into()),
            ..Default::default()
        };
        assert_eq!(s.protocol().as_deref(), Some("SASL_PLAINTEXT"));
        let settings = s.settings();
        assert!(settings.contains(&("sasl.mechanism".into(), "SCRAM-SHA-512".into())));
        assert!(settings.contains(&("sasl.password".into(), "s3cret".into())));
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(is_secret("sasl.password") && !is_secret("sasl.username"));
        // Flags over a profile.
        let merged = s.clone().under(Security { username: Some("bob".into()), ..Default::default() });
        assert_eq!((merged.username.as_deref(), merged.password), (Some("bob"), Some(Secret::new("s3cret"))));
        assert!(Security { username: Some("x".into()), ..Default::default() }.problem().unwrap().contains("password"));
        assert!(
            Security { mechanism: Some("GSSAPI".into()), ..Default::default() }.problem().unwrap().contains("GSSAPI")
        );
    }

    #[test]
    fn a_profile_reads_its_password_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        std::fs::write(
            &path,
            "[profiles.work]\nbrokers = \"kafka.example:9093\"\nsasl_username = \"ada\"\nsasl_password_env = \"CHINOOK_TEST_PROFILE_PW\"\nsasl_mechanism = \"SCRAM-SHA-256\"\n",
        )
        .unwrap();
        assert!(load_profile(&path, "work").unwrap_err().contains("CHINOOK_TEST_PROFILE_PW"));
        unsafe { std::env::set_var("CHINOOK_TEST_PROFILE_PW", "pw") };
        let p = load_profile(&path, "work").unwrap();
        assert_eq!(p.brokers.as_deref(), Some("kafka.example:9093"));
        assert_eq!(p.security.password, Some(Secret::new("pw")));
        assert!(load_profile(&path, "home").unwrap_err().contains("has: work"));
    }
}
