//! Ctrl-C (SIGINT) — or SIGTERM, every other scenario — in the middle of every
//! `chinook break` scenario: exit 130,
//! a note saying what was cleaned up (and a JSON summary with `--format json`),
//! no scratch topic of that run left on the broker, and the managed broker's
//! front door as it was before. (`produce` and `consume` under Ctrl-C:
//! tests/crashes.rs and tests/pipeline.rs.)
//!
//! The scenario list comes from `chinook break list`, so a new scenario fails
//! here until it has a plan below or a reason in [`NOT_INTERRUPTED`].

mod common;

use std::{
    io::Read,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chinook::broker::{Paths, State, control, frontdoor::FrontDoor};
use common::*;
use serde_json::Value;

/// Scenarios this test does not interrupt, and why.
const NOT_INTERRUPTED: &[(&str, &str)] =
    &[("schema-break", "runs offline and in milliseconds: no broker, no scratch topic, nothing to clean up")];

/// What shows that a scenario is mid-run.
#[derive(Clone, Copy, Debug)]
enum Evidence {
    /// A scratch topic of its run exists.
    ScratchTopic,
    /// The front door is down (`broker-down`).
    Outage,
    /// The front door answers this many ms late (`duplicates`).
    Latency(u64),
}

/// How to run a scenario so it can be caught mid-run.
struct Plan {
    args: &'static [&'static str],
    /// Latency the test adds at the front door for the run: the quick
    /// scenarios take seconds instead of milliseconds, so the interrupt lands
    /// while their scratch topics exist. (The test itself looks through a door
    /// of its own, without latency.)
    latency_ms: u64,
    evidence: Evidence,
}

const SLOW_LINK_MS: u64 = 300;

fn plan(scenario: &str) -> Option<Plan> {
    let slow = |args| Plan { args, latency_ms: SLOW_LINK_MS, evidence: Evidence::ScratchTopic };
    Some(match scenario {
        // The plain run writes to the shared stand-in, which is kept; --bypass-schema makes scratch topics.
        "malformed" => slow(&["--bypass-schema"]),
        "broker-down" => Plan {
            args: &["--count", "100000", "--rate", "1000", "--after", "200", "--for", "60s"],
            latency_ms: 0,
            evidence: Evidence::Outage,
        },
        "duplicates" => {
            Plan { args: &["--count", "20", "--delay", "30s"], latency_ms: 0, evidence: Evidence::Latency(30_000) }
        }
        "poison" => slow(&["--count", "50"]),
        "out-of-order" => slow(&[]),
        "late-events" => slow(&[]),
        "oversized" => slow(&[]),
        "registry-break" => slow(&[]),
        "slow-consumer" => slow(&["--rate", "10", "--for", "60s"]),
        _ => return None,
    })
}

fn listed_scenarios() -> Vec<String> {
    let out = chinook().args(["break", "list", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array().unwrap().iter().map(|s| s["scenario"].as_str().unwrap().to_string()).collect()
}

/// A scratch topic made by process `pid` (its run id carries the pid in hex).
fn of_run(name: &str, pid: u32) -> bool {
    name.starts_with("chinook.") && name.contains(&format!("-{pid:x}-"))
}

async fn door(state: &State) -> chinook::broker::frontdoor::DoorState {
    match control::request(state.control, &control::Request::Status).await.unwrap() {
        control::Reply::Status { door, .. } => door,
        other => panic!("{other:?}"),
    }
}

async fn set_latency(state: &State, millis: u64) {
    control::request(state.control, &control::Request::Latency { millis }).await.unwrap();
}

/// Reads a pipe to the end on a thread of its own (so the child never blocks on a full pipe).
fn drain(pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(pipe).read_to_string(&mut text);
        text
    })
}

/// Runs `scenario`, interrupts it mid-run and returns what was wrong (nothing: empty).
async fn interrupt(
    w: &Workdir,
    state: &State,
    peek: &chinook::kafka::Connection,
    scenario: &str,
    signal: libc::c_int,
) -> Vec<String> {
    let plan = plan(scenario).unwrap_or_else(|| {
        panic!("`break {scenario}` is new: give it a plan in tests/interrupts.rs, or a reason in NOT_INTERRUPTED")
    });
    set_latency(state, plan.latency_ms).await;
    let mut child: Child = Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .current_dir(w.dir.path())
        .env("NO_COLOR", "1")
        .env("CHINOOK_BROKERS", w.brokers())
        .args(["break", scenario])
        .args(plan.args)
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (stdout, stderr) = (drain(child.stdout.take().unwrap()), drain(child.stderr.take().unwrap()));
    let mine = || async {
        let names = chinook::kafka::admin::topic_names(peek).await.unwrap();
        names.into_iter().filter(|n| of_run(n, pid)).collect::<Vec<_>>()
    };
    // Poll for the evidence (every 20 ms, with a deadline).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_topics = Vec::new();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return vec![format!(
                "{scenario}: ended ({status}) before it was seen mid-run: {}",
                stderr.join().unwrap()
            )];
        }
        let mid_run = match plan.evidence {
            Evidence::ScratchTopic => {
                seen_topics = mine().await;
                !seen_topics.is_empty()
            }
            Evidence::Outage => door(state).await.outage_left_ms > 0,
            Evidence::Latency(ms) => door(state).await.latency_ms == ms,
        };
        if mid_run {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{scenario}: not seen mid-run within 120 s: {}", stderr.join().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if seen_topics.is_empty() {
        // Seen by its front door: its topics, through the test's own door (up, and without latency).
        seen_topics = mine().await;
    }
    // SAFETY: signalling the child process this test started.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
    let status = tokio::task::block_in_place(|| wait_or_kill(&mut child, Duration::from_secs(120)));
    let (out, err) = (stdout.join().unwrap(), stderr.join().unwrap());

    let mut wrong = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            wrong.push(format!("{scenario}: {what}\n  stderr: {err}\n  stdout: {out}"));
        }
    };
    check(status.code() == Some(130), format!("exit {status}, not 130"));
    check(
        err.contains(&format!("interrupted: break {scenario} stopped")),
        "no note on stderr saying it was interrupted".into(),
    );
    match serde_json::from_str::<Value>(&out) {
        Ok(summary) => {
            check(summary["interrupted"] == true && summary["scenario"] == scenario, format!("summary {summary}"));
            check(
                summary["scratch_topics_left"].as_array().is_some_and(Vec::is_empty),
                format!("topics left behind by its own account: {summary}"),
            );
            let removed: Vec<String> = summary["scratch_topics_removed"]
                .as_array()
                .map(|a| a.iter().filter_map(|n| n.as_str().map(String::from)).collect())
                .unwrap_or_default();
            check(
                seen_topics.iter().all(|t| removed.contains(t)),
                format!("it saw {seen_topics:?} and reports removing {removed:?}"),
            );
        }
        Err(e) => check(false, format!("no JSON summary on stdout ({e})")),
    }
    check(!seen_topics.is_empty(), "no scratch topic of its run was seen before the interrupt".into());
    let left = mine().await;
    check(left.is_empty(), format!("scratch topics left on the broker: {left:?}"));
    let after = door(state).await;
    check(after.outage_left_ms == 0, format!("the front door is still down: {after:?}"));
    check(
        after.latency_ms == plan.latency_ms,
        format!("front door latency {} ms, was {} ms", after.latency_ms, plan.latency_ms),
    );
    set_latency(state, 0).await;
    wrong
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_in_every_break_scenario_exits_130_says_so_and_leaves_no_scratch_topic() {
    let scenarios = listed_scenarios();
    for (name, why) in NOT_INTERRUPTED {
        assert!(
            scenarios.iter().any(|s| s == name),
            "{name} is not a scenario any more (it was left out because it {why})"
        );
        assert!(plan(name).is_none(), "{name} has a plan and a reason not to run it");
    }
    let w = Workdir::new();
    tokio::task::block_in_place(|| w.start(&[]));
    let state = State::read(&Paths::under(w.dir.path())).unwrap().expect("a managed broker");
    // The test's view of the broker: a door of its own in front of the broker's listener,
    // without the latency and outages of the scenarios' door.
    let own_door = FrontDoor::start_private(state.internal).await.unwrap();
    let peek = chinook::kafka::Connection::new(own_door.addr().to_string());
    let mut wrong = Vec::new();
    for (i, scenario) in scenarios.iter().filter(|s| !NOT_INTERRUPTED.iter().any(|(n, _)| n == s)).enumerate() {
        let signal = if i % 2 == 0 { libc::SIGINT } else { libc::SIGTERM };
        wrong.extend(interrupt(&w, &state, &peek, scenario, signal).await);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
