//! Secured brokers: the embedded broker behind a TLS front door (`--tls`,
//! certificate made at start) and with SASL users (`--users`: PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512). Right credentials work — for chinook and
//! for kcat, which nobody here wrote —; a wrong password, an untrusted
//! certificate and a plaintext client each get a clear error (exit 4); a
//! profile carries the settings; and no password is left in anything a run
//! writes or prints.

mod common;

use std::process::Output;

use common::*;

const PASSWORD: &str = "lovelace-7f3a9c";

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A broker in `s` with `extra` flags and a users file (ada, and grace).
fn start(s: &Workdir, extra: &[&str]) {
    std::fs::write(s.dir.path().join("class.csv"), format!("user,password\nada,{PASSWORD}\ngrace,hopper-11\n"))
        .unwrap();
    let mut args = vec!["--users", "class.csv"];
    args.extend_from_slice(extra);
    s.start(&args);
}

/// `chinook` in `s` as `user` with `password` (in the environment, as advised).
fn as_user(s: &Workdir, user: &str, password: &str, args: &[&str]) -> Output {
    chinook()
        .current_dir(s.dir.path())
        .env("CHINOOK_BROKERS", s.brokers())
        .env("CHINOOK_SASL_USERNAME", user)
        .env("CHINOOK_SASL_PASSWORD", password)
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap()
}

/// Everything under `dir`, as text where it is text.
fn files_under(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), String::from_utf8_lossy(&bytes).to_string()));
        }
    }
    out
}

#[test]
fn sasl_users_log_in_with_each_mechanism_and_a_wrong_password_is_refused_clearly() {
    let s = Workdir::new();
    start(&s, &[]);
    let mut printed = String::new();
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let out = as_user(&s, "ada", PASSWORD, &["topics", "create", "--sasl-mechanism", mechanism, "-v"]);
        assert!(out.status.success(), "{mechanism}: {}", text(&out));
        printed += &text(&out);
        let out = as_user(&s, "ada", "babbage", &["topics", "list", "--sasl-mechanism", mechanism]);
        assert_eq!(out.status.code(), Some(4), "{mechanism}: {}", text(&out));
        assert!(text(&out).contains("refused the login"), "{mechanism}: {}", text(&out));
        printed += &text(&out);
    }
    // Events go through and come back as ada.
    let out = as_user(
        &s,
        "ada",
        PASSWORD,
        &["produce", "customer-created", "--count", "5", "--sasl-mechanism", "SCRAM-SHA-512"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = as_user(
        &s,
        "ada",
        PASSWORD,
        &["consume", "--until-end", "--offset", "start", "--format", "jsonl", "--sasl-mechanism", "SCRAM-SHA-256"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    printed += &text(&out);
    // Without credentials the broker closes the connection: chinook says it probably wants SASL.
    let out = s.run(&["topics", "list"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("TLS or SASL"), "{}", text(&out));
    // kcat, with the same users.
    let kcat = std::process::Command::new("kcat")
        .args([
            "-b",
            &s.brokers(),
            "-L",
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=SCRAM-SHA-256",
        ])
        .args(["-X", "sasl.username=grace", "-X", "sasl.password=hopper-11"])
        .output()
        .expect("kcat is installed (.ci/run installs it)");
    assert!(kcat.status.success(), "{}", text(&kcat));
    assert!(String::from_utf8_lossy(&kcat.stdout).contains("customer_events"), "{}", text(&kcat));
    // No password in what was printed, or in anything the runs left behind.
    assert!(!printed.contains(PASSWORD));
    for (path, content) in files_under(s.dir.path()) {
        if !path.ends_with("class.csv") {
            assert!(!content.contains(PASSWORD), "{path} holds the password");
        }
    }
}

#[test]
fn tls_is_verified_and_a_plaintext_client_is_told_so() {
    let s = Workdir::new();
    s.start(&["--tls"]);
    let ca = s.dir.path().join(".chinook/broker/tls-ca.pem");
    assert!(std::fs::read_to_string(&ca).unwrap().contains("BEGIN CERTIFICATE"));
    // In the broker's directory chinook trusts the CA it wrote.
    s.ok(&["topics", "create"]);
    s.ok(&["produce", "customer-created", "--count", "3"]);
    let out = s.ok(&["consume", "--until-end", "--offset", "start", "--format", "jsonl"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    // Elsewhere, plaintext: a clear error, not a hang.
    let elsewhere = tempfile::tempdir().unwrap();
    let plain =
        chinook().current_dir(elsewhere.path()).args(["topics", "list", "--brokers", &s.brokers()]).output().unwrap();
    assert_eq!(plain.status.code(), Some(4), "{}", text(&plain));
    assert!(text(&plain).contains("TLS or SASL"), "{}", text(&plain));
    // Verification is on: a CA that did not sign the certificate is refused.
    let other = Workdir::new();
    other.start(&["--tls"]);
    let wrong_ca = other.dir.path().join(".chinook/broker/tls-ca.pem");
    let out = chinook()
        .current_dir(elsewhere.path())
        .args(["topics", "list", "--brokers", &s.brokers(), "--ca-cert", wrong_ca.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("no secure connection"), "{}", text(&out));
    // The right one, from anywhere; and kcat with it.
    let out = chinook()
        .current_dir(elsewhere.path())
        .args(["topics", "list", "--brokers", &s.brokers(), "--ca-cert", ca.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let kcat = std::process::Command::new("kcat")
        .args(["-b", &s.brokers(), "-L", "-X", "security.protocol=ssl", "-X"])
        .arg(format!("ssl.ca.location={}", ca.display()))
        .output()
        .expect("kcat is installed (.ci/run installs it)");
    assert!(kcat.status.success(), "{}", text(&kcat));
}

/// TLS and SASL together, from a profile: brokers, mechanism, user, the
/// password's environment variable and the CA, named once.
#[test]
fn a_profile_carries_brokers_tls_and_sasl() {
    let s = Workdir::new();
    start(&s, &["--tls"]);
    let ca = s.dir.path().join(".chinook/broker/tls-ca.pem");
    let profiles = s.dir.path().join("profiles.toml");
    std::fs::write(
        &profiles,
        format!(
            "[profiles.class]\nbrokers = \"{}\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"ada\"\nsasl_password_env = \"CLASS_PASSWORD\"\nca_cert = \"{}\"\n",
            s.brokers(),
            ca.display()
        ),
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |password: &str, args: &[&str]| {
        chinook()
            .current_dir(elsewhere.path())
            .env("CHINOOK_PROFILES", &profiles)
            .env("CLASS_PASSWORD", password)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(PASSWORD, &["topics", "create", "--profile", "class"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run("wrong", &["topics", "list", "--profile", "class"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("refused the login"), "{}", text(&out));
    let out = run(PASSWORD, &["topics", "list", "--profile", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no profile \"nope\"") && text(&out).contains("(it has: class)"), "{}", text(&out));
}
