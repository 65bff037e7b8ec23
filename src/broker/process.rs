//! The managed broker process: `broker run` serves in the foreground;
//! `broker start` re-executes chinook as `broker run` in the background and
//! waits until it is ready; `stop` and `status` find it through the state file.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant, SystemTime},
};

use tokio::{net::TcpListener, sync::mpsc};

use super::{BrokerError, Engine, Paths, State, control, frontdoor::FrontDoor, guard::Guard, pid_alive};

/// How to run a broker.
#[derive(Clone, Debug)]
pub struct Options {
    pub engine: Engine,
    pub host: IpAddr,
    /// Advertised (front door) port; 0 picks a free one.
    pub port: u16,
    /// Bind record values to the lab schemas (embedded engine).
    pub schemas: bool,
    /// Serve TLS at the front door, with a certificate made at start.
    pub tls: bool,
    /// Require SASL (PLAIN, SCRAM-SHA-256/512) from the users in this file.
    pub users: Option<PathBuf>,
    /// The topic prefix of users without one in the file's third column
    /// (`{user}` stands for the name; `*`: every topic). See [`super::acl`].
    pub topic_prefix: String,
    /// Where the schema registry listens (embedded engine).
    pub registry: RegistryPort,
}

/// The schema registry's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryPort {
    /// 8081, or a free port when 8081 is taken (said in the log).
    Default,
    /// This port, or fail.
    Port(u16),
    /// No registry.
    Off,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            engine: Engine::Embedded,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 9092,
            schemas: true,
            tls: false,
            users: None,
            topic_prefix: super::acl::DEFAULT_TEMPLATE.into(),
            registry: RegistryPort::Default,
        }
    }
}

/// What `start` found or did.
#[derive(Debug, serde::Serialize)]
pub struct Started {
    pub state: State,
    /// False when a broker was already running here.
    pub fresh: bool,
    /// A stale state file that was cleared first, if any.
    pub cleared_stale_pid: Option<u32>,
    pub ready_ms: u64,
}

/// The engine behind the front door while it runs.
enum Running {
    #[cfg(feature = "embedded")]
    Embedded(super::embedded::Embedded),
    Child(tokio::process::Child),
}

/// Serves a broker in this process until Ctrl-C, SIGTERM or a control `stop`.
/// `on_ready` is called once clients can connect.
pub async fn serve(options: &Options, paths: &Paths, on_ready: impl FnOnce(&State)) -> Result<(), BrokerError> {
    std::fs::create_dir_all(&paths.dir).map_err(|e| BrokerError::io(&paths.dir, e))?;
    let guard = guard(options, paths)?;
    let door_listener = bind(options.host, options.port).await?;
    let advertised =
        door_listener.local_addr().map_err(|e| BrokerError::Io { what: "front door".into(), reason: e.to_string() })?;
    let (engine, internal, door, registry) = start_engine(options, paths, door_listener, advertised, guard).await?;
    let control_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| BrokerError::Io { what: "control endpoint".into(), reason: e.to_string() })?;
    let state = State {
        pid: std::process::id(),
        engine: options.engine,
        bootstrap: super::client_address(door.addr()),
        internal,
        control: control_listener
            .local_addr()
            .map_err(|e| BrokerError::Io { what: "control endpoint".into(), reason: e.to_string() })?,
        started_unix_ms: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis()
            as u64,
        log: paths.log(),
        schema_enforcement: options.schemas,
        tls_ca: options.tls.then(|| paths.tls_ca()),
        users: options.users.as_ref().map(|u| std::path::absolute(u).unwrap_or_else(|_| u.clone())),
        topic_prefix: options.users.as_ref().map(|_| options.topic_prefix.clone()),
        listen: (!options.host.is_loopback()).then_some(options.host),
        registry: registry.map(super::client_address),
    };
    let (stop_tx, mut stop_rx) = mpsc::channel(1);
    tokio::spawn(control::serve(control_listener, door, std::time::Instant::now(), stop_tx));
    state.write(paths)?;
    on_ready(&state);

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| BrokerError::Io { what: "installing the SIGTERM handler".into(), reason: e.to_string() })?;
    let mut engine = engine;
    let child_exit = async {
        match &mut engine {
            Running::Child(child) => {
                let _ = child.wait().await;
            }
            #[cfg(feature = "embedded")]
            Running::Embedded(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        _ = stop_rx.recv() => {}
        _ = child_exit => {}
    }
    match engine {
        #[cfg(feature = "embedded")]
        Running::Embedded(e) => e.shutdown(),
        Running::Child(mut child) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
    // Only remove the state file if it is still ours.
    if State::read(paths).ok().flatten().is_some_and(|s| s.pid == std::process::id()) {
        let _ = std::fs::remove_file(paths.state());
    }
    Ok(())
}

async fn bind(host: IpAddr, port: u16) -> Result<TcpListener, BrokerError> {
    TcpListener::bind((host, port)).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => BrokerError::PortInUse { port, owner: super::ports::owner(port) },
        _ => BrokerError::Io { what: format!("binding {host}:{port}"), reason: e.to_string() },
    })
}

/// The front door's guard: TLS with a fresh certificate (its CA written for
/// clients), SASL with the users of the file named.
fn guard(options: &Options, paths: &Paths) -> Result<Guard, BrokerError> {
    let tls = match options.tls {
        true => {
            let tls = super::tls::generate(super::tls::names(options.host))
                .map_err(|reason| BrokerError::Io { what: "TLS".into(), reason })?;
            std::fs::write(paths.tls_ca(), &tls.ca_pem).map_err(|e| BrokerError::io(&paths.tls_ca(), e))?;
            Some(tls)
        }
        false => None,
    };
    let (users, acl) = match class(options)? {
        Some((users, acl)) => (Some(std::sync::Arc::new(users)), Some(std::sync::Arc::new(acl))),
        None => (None, None),
    };
    Ok(Guard { tls, users, acl })
}

/// The users file named, read, and each user's topic scope.
fn class(options: &Options) -> Result<Option<(super::sasl::Users, super::acl::Acl)>, BrokerError> {
    let Some(path) = &options.users else { return Ok(None) };
    let bad = |reason| BrokerError::BadUsers { file: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| BrokerError::io(path, e))?;
    let users = super::sasl::Users::parse(&text).map_err(bad)?;
    let acl = super::acl::Acl::new(&users, &options.topic_prefix).map_err(bad)?;
    if acl.scopes().any(|(_, s)| *s != super::acl::Scope::Any) && options.engine != Engine::Embedded {
        return Err(BrokerError::PrefixesNeedEmbedded { engine: options.engine.to_string() });
    }
    Ok(Some((users, acl)))
}

async fn start_engine(
    options: &Options,
    paths: &Paths,
    door: TcpListener,
    advertised: SocketAddr,
    guard: Guard,
) -> Result<(Running, SocketAddr, FrontDoor, Option<SocketAddr>), BrokerError> {
    match options.engine {
        #[cfg(feature = "embedded")]
        Engine::Embedded => {
            let registry = if options.schemas {
                super::embedded::write_registry(&paths.schemas())?;
                Some(paths.schemas())
            } else {
                None
            };
            let (framed, registry_addr) = match options.registry {
                RegistryPort::Off => (None, None),
                port => {
                    let (registry, addr) = start_registry(options.host, port, paths).await?;
                    (Some(super::framed::Framed::lab(registry)), Some(addr))
                }
            };
            let embedded = super::embedded::start(door, registry.as_deref(), true, guard, framed).await?;
            let (internal, front) = (embedded.internal, embedded.door.clone());
            Ok((Running::Embedded(embedded), internal, front, registry_addr))
        }
        #[cfg(not(feature = "embedded"))]
        Engine::Embedded => Err(BrokerError::NoEmbedded),
        Engine::Bufstream => {
            let binary = super::bufstream::find_binary().ok_or(BrokerError::NoBufstream)?;
            let internal = free_loopback_port()?;
            let config = paths.bufstream_config();
            std::fs::write(&config, super::bufstream::config(internal, super::client_address(advertised)))
                .map_err(|e| BrokerError::io(&config, e))?;
            super::bufstream::write_protos(&paths.proto())?;
            let (program, args) = super::bufstream::command_line(&binary, &config, &paths.proto());
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| BrokerError::Io { what: "starting bufstream".into(), reason: e.to_string() })?;
            tokio::select! {
                listening = wait_listening(internal, Duration::from_secs(60)) => listening?,
                status = child.wait() => {
                    let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    return Err(BrokerError::Io { what: "starting bufstream".into(), reason: format!("it exited before listening ({status})") });
                }
            }
            let front = FrontDoor::start(door, internal, guard)
                .map_err(|e| BrokerError::Io { what: "front door".into(), reason: e.to_string() })?;
            Ok((Running::Child(child), internal, front, None))
        }
        Engine::External => Err(BrokerError::Unsupported {
            feature: "`broker start`".into(),
            engine: "external: it is already running; pass --brokers to every command".into(),
        }),
    }
}

/// Opens the registry (kept in `.chinook/broker/registry.json`), preloads
/// the lab schemas and serves it on `port` of `host`.
#[cfg(feature = "embedded")]
async fn start_registry(
    host: IpAddr,
    port: RegistryPort,
    paths: &Paths,
) -> Result<(crate::registry::Registry, SocketAddr), BrokerError> {
    use crate::registry::{DEFAULT_PORT, Registry, http};
    let fail = |reason: String| BrokerError::Io { what: "the schema registry".into(), reason };
    let registry = Registry::open(paths.registry()).map_err(|e| fail(e.message))?;
    registry.preload().map_err(|e| fail(e.message))?;
    let listener = match port {
        RegistryPort::Port(p) => bind(host, p).await?,
        _ => match http::bind(host, DEFAULT_PORT).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("schema registry: port {DEFAULT_PORT} is not free ({e}); serving it on a free port instead");
                bind(host, 0).await?
            }
        },
    };
    let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    tokio::spawn(http::serve(listener, registry.clone()));
    Ok((registry, addr))
}

fn free_loopback_port() -> Result<SocketAddr, BrokerError> {
    let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| BrokerError::Io { what: "finding a free port".into(), reason: e.to_string() })?;
    probe.local_addr().map_err(|e| BrokerError::Io { what: "finding a free port".into(), reason: e.to_string() })
}

async fn wait_listening(addr: SocketAddr, limit: Duration) -> Result<(), BrokerError> {
    let deadline = Instant::now() + limit;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(BrokerError::Io {
                what: format!("waiting for the broker on {addr}"),
                reason: format!("nothing listened within {} s", limit.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The running managed broker here, if its process is alive; a stale state
/// file (process gone) is removed and its pid returned.
pub fn current(paths: &Paths) -> Result<(Option<State>, Option<u32>), BrokerError> {
    match State::read(paths)? {
        Some(state) if pid_alive(state.pid) => Ok((Some(state), None)),
        Some(stale) => {
            let _ = std::fs::remove_file(paths.state());
            Ok((None, Some(stale.pid)))
        }
        None => Ok((None, None)),
    }
}

/// Starts `chinook broker run` in the background and waits until it is ready.
pub async fn start_detached(options: &Options, paths: &Paths) -> Result<Started, BrokerError> {
    let began = Instant::now();
    let (running, cleared_stale_pid) = current(paths)?;
    if let Some(state) = running {
        return Ok(Started { state, fresh: false, cleared_stale_pid, ready_ms: 0 });
    }
    // Fail early, in this process: a users file that will not do, the owner of the port.
    class(options)?;
    drop(bind(options.host, options.port).await?);
    std::fs::create_dir_all(&paths.dir).map_err(|e| BrokerError::io(&paths.dir, e))?;
    let log = std::fs::File::create(paths.log()).map_err(|e| BrokerError::io(&paths.log(), e))?;
    let log_err = log.try_clone().map_err(|e| BrokerError::io(&paths.log(), e))?;
    let exe = std::env::current_exe()
        .map_err(|e| BrokerError::Io { what: "finding the chinook executable".into(), reason: e.to_string() })?;
    let mut args = vec![
        "broker".to_string(),
        "run".into(),
        "--engine".into(),
        engine_arg(options.engine).into(),
        "--host".into(),
        options.host.to_string(),
        "--port".into(),
        options.port.to_string(),
    ];
    if !options.schemas {
        args.push("--no-schemas".into());
    }
    if options.tls {
        args.push("--tls".into());
    }
    if let Some(users) = &options.users {
        // The broker process starts in this directory too, but an absolute path reads better in `ps`.
        let users = std::path::absolute(users).unwrap_or_else(|_| users.clone());
        args.extend(["--users".into(), users.display().to_string()]);
        args.extend(["--topic-prefix".into(), options.topic_prefix.clone()]);
    }
    match options.registry {
        RegistryPort::Default => {}
        RegistryPort::Port(p) => args.extend(["--registry-port".into(), p.to_string()]),
        RegistryPort::Off => args.push("--no-registry".into()),
    }
    let mut command = std::process::Command::new(exe);
    command.args(&args).stdin(Stdio::null()).stdout(log).stderr(log_err).env("NO_COLOR", "1");
    // Its own process group: a Ctrl-C in the student's shell does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| BrokerError::Io { what: "starting the broker process".into(), reason: e.to_string() })?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(state) = State::read(paths)?.filter(|s| s.pid == child.id()) {
            return Ok(Started { state, fresh: true, cleared_stale_pid, ready_ms: began.elapsed().as_millis() as u64 });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(BrokerError::DiedAtStart {
                status: status.to_string(),
                log: paths.log().display().to_string(),
                tail: log_tail(&paths.log(), 15),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(BrokerError::DiedAtStart {
                status: "not ready after 60 s; stopped".into(),
                log: paths.log().display().to_string(),
                tail: log_tail(&paths.log(), 15),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn engine_arg(engine: Engine) -> &'static str {
    match engine {
        Engine::Embedded => "embedded",
        Engine::Bufstream => "bufstream",
        Engine::External => "external",
    }
}

/// The last `n` lines of a log file (empty when it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Stops the managed broker and waits until its process is gone and its port
/// is free. Returns the stopped state, or `None` when nothing was running.
/// Kills the managed broker with SIGKILL — a crash, not a stop: nothing is
/// flushed or said goodbye to — and waits until its process and port are gone.
pub async fn kill(paths: &Paths) -> Result<Option<State>, BrokerError> {
    let (running, _) = current(paths)?;
    let Some(state) = running else {
        return Ok(None);
    };
    // SAFETY: sending SIGKILL to a pid we started and recorded.
    unsafe { libc::kill(state.pid as libc::pid_t, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(state.pid) || tokio::net::TcpStream::connect(state.bootstrap).await.is_ok() {
        if Instant::now() > deadline {
            return Err(BrokerError::Io {
                what: format!("killing the broker (pid {})", state.pid),
                reason: "it was still there 10 s after SIGKILL".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = std::fs::remove_file(paths.state());
    Ok(Some(state))
}

pub async fn stop(paths: &Paths) -> Result<Option<State>, BrokerError> {
    let (running, _) = current(paths)?;
    let Some(state) = running else {
        return Ok(None);
    };
    if control::request(state.control, &control::Request::Stop).await.is_err() {
        // SAFETY: sending SIGTERM to a pid we started and recorded.
        unsafe { libc::kill(state.pid as libc::pid_t, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(state.pid) || tokio::net::TcpStream::connect(state.bootstrap).await.is_ok() {
        if Instant::now() > deadline {
            // SAFETY: as above; the graceful stop did not finish in time.
            unsafe { libc::kill(state.pid as libc::pid_t, libc::SIGKILL) };
            tokio::time::sleep(Duration::from_millis(100)).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = std::fs::remove_file(paths.state());
    Ok(Some(state))
}
