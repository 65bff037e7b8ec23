//! Secured brokers: the embedded broker behind a TLS front door (`--tls`,
//! certificate made at start) and with SASL users (`--users`: PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512). Right credentials work — for chinook and
//! for kcat, which nobody here wrote —; a wrong password, an untrusted
//! certificate and a plaintext client each get a clear error (exit 4); a
//! profile carries the settings; and no password is left in anything a run
//! writes or prints. A broker for a room holds each student to their topic
//! prefix (`alice.`), for chinook and for kcat, and prints a card per student.

mod common;

use std::process::Output;

use common::*;

const PASSWORD: &str = "lovelace-7f3a9c";

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A broker in `s` with `extra` flags and a users file (ada, and grace),
/// both allowed every topic (`*`: these tests use the lab's topics).
fn start(s: &Workdir, extra: &[&str]) {
    std::fs::write(
        s.dir.path().join("class.csv"),
        format!("user,password,prefix\nada,{PASSWORD},*\ngrace,hopper-11,*\n"),
    )
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

/// Debian's kcat with the librdkafka it was built against (2.0.2): under
/// `cargo test`, LD_LIBRARY_PATH points at the librdkafka rdkafka-sys built
/// (2.12), which kcat would otherwise load, and a test of "kcat" would test
/// chinook's own librdkafka.
fn kcat_command() -> std::process::Command {
    let mut kcat = std::process::Command::new("kcat");
    kcat.env_remove("LD_LIBRARY_PATH");
    kcat
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
    let kcat = kcat_command()
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
    let kcat = kcat_command()
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

const ALICE: &str = "alice-secret-4e1d";
const BOB: &str = "bob-secret-93c2";

/// A room: alice and bob, each held to their own prefix (the default `{user}.`).
fn room(s: &Workdir, extra: &[&str]) -> Output {
    std::fs::write(s.dir.path().join("class.csv"), format!("# the class\nalice,{ALICE}\nbob,{BOB}\n")).unwrap();
    let mut args = vec!["broker", "start", "--port", &s.port, "--users", "class.csv"];
    args.extend_from_slice(extra);
    s.ok(&args)
}

/// kcat as `user` (PLAIN), with `args`; its output.
fn kcat(s: &Workdir, user: &str, password: &str, args: &[&str], input: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = kcat_command()
        .args(["-b", &s.brokers(), "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN"])
        .arg("-X")
        .arg(format!("sasl.username={user}"))
        .arg("-X")
        .arg(format!("sasl.password={password}"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kcat is installed (.ci/run installs it)");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    let status = wait_or_kill(&mut child, std::time::Duration::from_secs(60));
    let mut out = child.wait_with_output().unwrap();
    out.status = status;
    out
}

#[test]
fn a_room_broker_holds_each_student_to_their_prefix() {
    let s = Workdir::new();
    room(&s, &[]);
    // chinook (librdkafka through the rdkafka crate), SCRAM-SHA-512.
    let scram = ["--sasl-mechanism", "SCRAM-SHA-512"];
    let alice = |args: &[&str]| as_user(&s, "alice", ALICE, &[args, &scram[..]].concat());
    let out = alice(&["topics", "create", "alice.orders"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = as_user(&s, "bob", BOB, &["topics", "create", "bob.orders", "--sasl-mechanism", "SCRAM-SHA-256"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = alice(&["topics", "create", "bob.sneaky"]);
    assert!(!out.status.success(), "alice created a topic outside her prefix: {}", text(&out));
    assert!(text(&out).contains("authorization failed"), "{}", text(&out));
    // alice's listing has her topic only (bob's and the broker's others are cut).
    let out = alice(&["topics", "list", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("alice.orders"), "{listed}");
    assert!(!listed.contains("bob.orders"), "alice sees bob's topic: {listed}");
    // kcat, which nobody here wrote: produce and consume her own topic.
    let out = kcat(&s, "alice", ALICE, &["-P", "-t", "alice.orders"], Some("first\nsecond\n"));
    assert!(out.status.success(), "{}", text(&out));
    let out = kcat(&s, "alice", ALICE, &["-C", "-t", "alice.orders", "-o", "beginning", "-e"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(), ["first", "second"]);
    // bob's topic: a clear authorization error, to produce and in metadata.
    let out = kcat(&s, "alice", ALICE, &["-P", "-t", "bob.orders"], Some("intruder\n"));
    assert!(text(&out).contains("Topic authorization failed"), "{}", text(&out));
    let out = kcat(&s, "alice", ALICE, &["-L", "-t", "bob.orders"], None);
    assert!(text(&out).contains("Topic authorization failed"), "{}", text(&out));
    // Nothing of alice's reached bob's topic; bob reads it as empty, and does not see alice's.
    let out = kcat(&s, "bob", BOB, &["-C", "-t", "bob.orders", "-o", "beginning", "-e"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "alice's record reached bob's topic");
    let out = kcat(&s, "bob", BOB, &["-L"], None);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("\"bob.orders\"") && !listing.contains("alice.orders"), "{listing}");
    // The door said what it refused, in the broker's log (no password there).
    let log = std::fs::read_to_string(s.dir.path().join(".chinook/broker/broker.log")).unwrap();
    assert!(log.contains("refused \"alice\"'s request") && log.contains("bob.orders"), "{log}");
}

#[test]
fn a_users_file_that_will_not_do_is_a_diagnostic() {
    let s = Workdir::new();
    // One prefix covers another user's topics.
    std::fs::write(s.dir.path().join("class.csv"), "al,x1\nal.ice,x2\n").unwrap();
    let out = s.run(&["broker", "start", "--port", &s.port, "--users", "class.csv"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("also covers") && !text(&out).contains("panicked"), "{}", text(&out));
    assert!(!text(&out).contains("x1") && !text(&out).contains("x2"), "a password in the error: {}", text(&out));
    std::fs::write(s.dir.path().join("class.csv"), "ada,pw-77,bad prefix\n").unwrap();
    let out = s.run(&["broker", "start", "--port", &s.port, "--users", "class.csv"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not a topic prefix") && !text(&out).contains("pw-77"), "{}", text(&out));
}

/// Every command of a class's day that touches a password, then a search
/// for the passwords in everything printed and everything left on disk.
#[test]
fn passwords_never_leave_the_users_file() {
    let s = Workdir::new();
    let mut printed = Vec::new();
    let mut keep = |out: Output| {
        printed.push(text(&out));
        out
    };
    let out = keep(room(&s, &["--tls", "--format", "json"]));
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cards = started["cards"]["cards"].as_array().expect("cards in the start's JSON");
    assert_eq!(cards.len(), 2);
    assert_eq!(cards[0]["user"], "alice");
    assert_eq!(cards[0]["security_protocol"], "SASL_SSL");
    assert!(cards[0]["topics"].as_str().unwrap().starts_with("alice."), "{}", cards[0]);
    assert!(cards[0]["ca_file"].as_str().unwrap().ends_with("tls-ca.pem"));
    for args in [&["broker", "cards"][..], &["broker", "cards", "--format", "json"]] {
        let out = keep(s.ok(args));
        assert!(text(&out).contains("--sasl-username bob"), "{}", text(&out));
    }
    let scram = ["--sasl-mechanism", "SCRAM-SHA-512"];
    for (args, ok) in [
        (&["topics", "create", "alice.orders"][..], true),
        (&["produce", "customer-created", "--topic", "alice.orders", "--count", "3"], true),
        (&["consume", "--topic", "alice.orders", "--until-end", "--offset", "start", "--format", "jsonl"], true),
        (&["broker", "status"], true),
        (&["broker", "status", "--format", "json"], true),
        (&["topics", "create", "bob.orders", "-v"], false),
    ] {
        let out = keep(as_user(&s, "alice", ALICE, &[args, &scram[..]].concat()));
        assert_eq!(out.status.success(), ok, "{args:?}: {}", text(&out));
    }
    // A wrong password (bob's, as alice), with -v and as JSON.
    for args in [&["topics", "list", "-v"][..], &["broker", "status", "--format", "json"]] {
        let out = keep(as_user(&s, "alice", BOB, &[args, &scram[..]].concat()));
        assert!(!out.status.success(), "{}", text(&out));
    }
    keep(s.ok(&["broker", "logs"]));
    for (i, out) in printed.iter().enumerate() {
        for password in [ALICE, BOB] {
            assert!(!out.contains(password), "output {i} holds a password: {out}");
        }
    }
    let files = files_under(s.dir.path());
    assert!(files.iter().any(|(p, _)| p.ends_with("broker.log")), "the broker log is searched");
    for (path, content) in files {
        if !path.ends_with("class.csv") {
            for password in [ALICE, BOB] {
                assert!(!content.contains(password), "{path} holds a password");
            }
        }
    }
}

/// librdkafka before 2.6.1 (Debian's kcat has 2.0.2) answers SCRAM's
/// server-first `r=C+S` with `r=C+C+S`; the door refused that as "the SCRAM
/// nonce does not match", for every user and both hashes. Logins with several
/// users (a name and a password with `=`, which SCRAM escapes in names), each
/// a fresh pair of nonces, must all get in; a wrong password still must not.
#[test]
fn kcat_with_debians_librdkafka_logs_in_with_scram_every_time() {
    let version = kcat_command().arg("-V").output().expect("kcat is installed (.ci/run installs it)");
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    let ours = rdkafka::util::get_rdkafka_version().1;
    assert!(
        version.contains("librdkafka ") && !version.contains(&format!("librdkafka {ours} ")),
        "kcat should load its own librdkafka, not rdkafka-sys's {ours}: {version}"
    );
    let users = [("alice", ALICE), ("bob", BOB), ("grace", "hopper-11"), ("dev=ops", "p=ss;w0rd~-")];
    let s = Workdir::new();
    let mut file = String::from("user,password,prefix\n");
    for (user, password) in users {
        file += &format!("{user},{password},*\n");
    }
    std::fs::write(s.dir.path().join("class.csv"), file).unwrap();
    s.start(&["--users", "class.csv"]);
    // -m: how long kcat waits for metadata; a refused login waits it out.
    let login = |mechanism: &str, user: &str, password: &str, wait: &str| {
        let mut child = kcat_command()
            .args(["-b", &s.brokers(), "-L", "-m", wait, "-X", "security.protocol=SASL_PLAINTEXT", "-X"])
            .arg(format!("sasl.mechanisms={mechanism}"))
            .arg("-X")
            .arg(format!("sasl.username={user}"))
            .arg("-X")
            .arg(format!("sasl.password={password}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_or_kill(&mut child, std::time::Duration::from_secs(60));
        let mut out = child.wait_with_output().unwrap();
        out.status = status;
        out
    };
    const ATTEMPTS: usize = 4;
    let mut failures = Vec::new();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        for (user, password) in users {
            for attempt in 1..=ATTEMPTS {
                let out = login(mechanism, user, password, "10");
                let listed = String::from_utf8_lossy(&out.stdout).contains("Metadata for all topics");
                if !out.status.success() || !listed {
                    failures.push(format!("{mechanism} {user} attempt {attempt}: {}", text(&out)));
                    break; // one is enough to tell, and each waits out -m
                }
            }
        }
        let out = login(mechanism, "alice", BOB, "3");
        assert!(!out.status.success(), "{mechanism}: alice got in with bob's password: {}", text(&out));
        assert!(text(&out).contains("Authentication failed"), "{mechanism}: {}", text(&out));
    }
    assert!(
        failures.is_empty(),
        "{} (user, mechanism) pairs of {} failed a kcat login ({version}):\n{}",
        failures.len(),
        2 * users.len(),
        failures.join("\n")
    );
}
