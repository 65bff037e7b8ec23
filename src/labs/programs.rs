//! The student's programs: which commands play the producer and the consumer
//! (`--producer`/`--consumer`, or `[programs]` in `chinook.toml`), and running
//! one under the lab contract — through `sh -c` in the current directory, with
//! the `CHINOOK_*` variables set, its output kept under `.chinook/runs/`, and
//! its whole process group stopped afterwards (SIGTERM, then SIGKILL).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::LabError;

/// A part the student writes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Producer,
    Consumer,
    Projector,
    Orchestrator,
    Aggregator,
    /// The schema check a student's CI runs (lab 3).
    SchemaCheck,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Producer, Role::Consumer, Role::Projector, Role::Orchestrator, Role::Aggregator, Role::SchemaCheck];

    pub fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Projector => "projector",
            Role::Orchestrator => "orchestrator",
            Role::Aggregator => "aggregator",
            Role::SchemaCheck => "schema_check",
        }
    }
}

/// Whose programs a verification runs.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The student's own (the default).
    Student,
    /// chinook's own commands, the lab's model solution (`--reference`).
    Reference,
}

/// The environment variables of the contract: name, what it holds, and the
/// roles it is set for (empty: every role).
pub const CONTRACT_VARIABLES: [(&str, &str, &[Role]); 18] = [
    ("CHINOOK_BROKERS", "bootstrap address of the broker to use (host:port)", &[]),
    (
        "CHINOOK_TOPIC",
        "the topic to publish to (producer) or read (consumer, projector, aggregator)",
        &[Role::Producer, Role::Consumer, Role::Projector, Role::Aggregator],
    ),
    ("CHINOOK_GROUP", "the consumer group to join", &[Role::Consumer, Role::Orchestrator]),
    ("CHINOOK_COUNT", "how many events to publish", &[Role::Producer]),
    ("CHINOOK_DLQ_TOPIC", "where to put what cannot be processed", &[Role::Consumer]),
    ("CHINOOK_OUTPUT", "the file to write the rebuilt customer table to", &[Role::Projector]),
    ("CHINOOK_COMMANDS_TOPIC", "where CreateCustomer commands arrive", &[Role::Orchestrator]),
    ("CHINOOK_SAGA_TOPIC", "where the saga's messages go and come back", &[Role::Orchestrator]),
    ("CHINOOK_EVENTS_TOPIC", "where customer events go", &[Role::Orchestrator]),
    (
        "CHINOOK_FAIL_AT",
        "when set, the saga step that must fail: create-customer, welcome-email or billing-setup",
        &[Role::Orchestrator],
    ),
    ("CHINOOK_METRICS_ADDR", "when set, host:port to serve Prometheus metrics on, at /metrics", &[Role::Consumer]),
    ("CHINOOK_OUTPUT_TOPIC", "where to publish each closed window's events.v1.WindowResult", &[Role::Aggregator]),
    ("CHINOOK_WINDOW_MS", "the size of the tumbling windows, in milliseconds", &[Role::Aggregator]),
    ("CHINOOK_GRACE_MS", "how late a record may be and still count, in milliseconds", &[Role::Aggregator]),
    ("CHINOOK_TUNED", "1 when the producer must use its tuned settings", &[Role::Producer]),
    (
        "CHINOOK_SCHEMA_REGISTRY",
        "when set, the schema registry's URL: values are Confluent-framed",
        &[Role::Producer, Role::Consumer],
    ),
    ("CHINOOK_OLD_PROTO", "the directory of the deployed .proto files", &[Role::SchemaCheck]),
    ("CHINOOK_NEW_PROTO", "the directory of the changed .proto files", &[Role::SchemaCheck]),
];

/// The contract's variables of `lab`: every role's, and those of the roles
/// it runs that its contract texts name.
pub fn variables(lab: &super::Lab) -> Vec<(&'static str, &'static str)> {
    let roles = lab.roles();
    CONTRACT_VARIABLES
        .iter()
        .filter(|(name, _, for_roles)| {
            for_roles.is_empty()
                || for_roles.iter().any(|r| roles.contains(r) && lab.contract.get(r).is_some_and(|c| c.contains(name)))
        })
        .map(|(name, holds, _)| (*name, *holds))
        .collect()
}

/// The commands that play each role.
#[derive(Clone, Debug)]
pub struct Programs {
    pub source: Source,
    pub commands: BTreeMap<Role, String>,
}

/// `chinook.toml` in the student's working directory.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub programs: BTreeMap<Role, String>,
}

pub const CONFIG_FILE: &str = "chinook.toml";

impl Config {
    pub fn load(root: &Path) -> Result<Self, LabError> {
        let path = root.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| LabError::Config { path: path.display().to_string(), reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(LabError::Io { what: path.display().to_string(), reason: e.to_string() }),
        }
    }

    pub fn save(&self, root: &Path) -> Result<(), LabError> {
        let path = root.join(CONFIG_FILE);
        let text = format!(
            "# Your programs, run by `chinook lab N verify` under the lab contract\n# (`chinook lab 1 contract`). Any language; run through `sh -c` here.\n{}",
            toml::to_string(self).expect("the config serializes")
        );
        std::fs::write(&path, text)
            .map_err(|e| LabError::Io { what: path.display().to_string(), reason: e.to_string() })
    }
}

impl Programs {
    /// The student's programs: the flags first, then `chinook.toml` under `root`.
    pub fn student(root: &Path, flags: &[(Role, Option<String>)]) -> Result<Self, LabError> {
        let mut commands = Config::load(root)?.programs;
        for (role, command) in flags {
            if let Some(c) = command {
                commands.insert(*role, c.clone());
            }
        }
        commands.retain(|_, c| !c.trim().is_empty());
        Ok(Self { source: Source::Student, commands })
    }

    /// The lab's reference solution.
    pub fn reference(lab: &super::Lab) -> Self {
        Self { source: Source::Reference, commands: lab.reference.clone() }
    }

    /// Nothing configured.
    pub fn none() -> Self {
        Self { source: Source::Student, commands: BTreeMap::new() }
    }

    pub fn get(&self, role: Role) -> Option<&str> {
        self.commands.get(&role).map(String::as_str)
    }
}

/// What to tell a student whose `role` program is not configured.
pub fn how_to_configure(role: Role) -> String {
    let r = role.name();
    format!(
        "Not attempted: no {r} configured. Name the command that runs yours with `--{r} \"go run ./cmd/{r}\"` or `{r} = \"…\"` under [programs] in {CONFIG_FILE} (`chinook lab init`); `--reference` runs chinook's own."
    )
}

/// A student program running for one check.
pub struct Running {
    pub label: String,
    pub log: PathBuf,
    child: tokio::process::Child,
    /// Its process group (the child's pid, kept: tokio forgets it once the child is reaped).
    group: Option<libc::pid_t>,
    /// How it ended, once it has.
    pub exit: Option<ExitStatus>,
    terminated: bool,
}

/// Starts `command` for `role` with the contract variables `vars`; its
/// output (stdout and stderr) goes to `log`. Reference commands find this
/// chinook binary first on PATH.
pub fn spawn(command: &str, label: &str, vars: &[(&str, String)], log: &Path) -> Result<Running, LabError> {
    let io = |e: std::io::Error| LabError::Io { what: log.display().to_string(), reason: e.to_string() };
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let out = std::fs::File::create(log).map_err(io)?;
    let err = out.try_clone().map_err(io)?;
    let mut path = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
    if let Some(rest) = std::env::var_os("PATH") {
        path = PathBuf::from(
            std::env::join_paths(std::iter::once(path).chain(std::env::split_paths(&rest))).unwrap_or(rest),
        );
    }
    let child = tokio::process::Command::new("sh")
        .args(["-c", command])
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: `go run` and `sh` children are stopped with it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| LabError::Io { what: format!("starting `{command}`"), reason: e.to_string() })?;
    let group = child.id().map(|pid| pid as libc::pid_t);
    Ok(Running { label: label.to_string(), log: log.to_path_buf(), child, group, exit: None, terminated: false })
}

impl Running {
    /// Its exit status, if it has ended by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits for it to end by itself, up to `limit`.
    pub async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Ok(Ok(status)) = tokio::time::timeout(limit, self.child.wait()).await
        {
            self.exit = Some(status);
        }
        self.exit
    }

    /// Sends SIGTERM to its process group and waits up to `grace` for the
    /// whole group to end, then kills what is left. Returns how it ended.
    /// (The `sh -c` that leads the group may end first while the program it
    /// started is still committing — or hangs: the group is what is waited for.)
    pub async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.exited().is_none() {
            self.terminated = true;
            self.signal(libc::SIGTERM);
            let deadline = tokio::time::Instant::now() + grace;
            self.wait(grace).await;
            while self.group_alive() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.signal(libc::SIGKILL);
        if self.exit.is_none() {
            self.exit = self.child.wait().await.ok();
        }
        self.exit
    }

    /// Kills its whole process group at once (SIGKILL): a crash, not a stop.
    pub async fn kill(&mut self) -> Option<ExitStatus> {
        self.terminated = true;
        self.signal(libc::SIGKILL);
        self.exit = self.child.wait().await.ok();
        self.exit
    }

    /// Whether any process of its group is still there.
    fn group_alive(&self) -> bool {
        // SAFETY: kill(2) with signal 0 only checks that the group exists.
        self.group.is_some_and(|g| unsafe { libc::kill(-g, 0) } == 0)
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(group) = self.group {
            // SAFETY: kill(2) on the process group this child leads (set at spawn).
            unsafe {
                libc::kill(-group, signal);
            }
        }
    }

    /// How it ended, in words: "exit 0", "exit 1 by itself", "stopped by SIGTERM", ….
    pub fn ending(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match self.exit {
            None => "still running".into(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) if self.terminated => format!("exit {code} after SIGTERM"),
                (Some(code), _) => format!("exit {code} by itself"),
                (None, Some(sig)) => format!("ended by signal {sig}"),
                _ => s.to_string(),
            },
        }
    }

    /// Whether it ended by itself with a failure (a crash, not our SIGTERM).
    pub fn crashed(&mut self) -> bool {
        !self.terminated && self.exited().is_some_and(|s| !s.success())
    }

    /// The last `lines` lines it wrote.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!("{} ({}):\n{tail}", self.label, self.log.display())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A check that ends early never leaves a program behind, nor anything it started.
        if self.exited().is_none() || self.group_alive() {
            self.signal(libc::SIGKILL);
        }
    }
}
