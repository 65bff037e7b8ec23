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
    cmd.current_dir(root()).env("NO_COLOR", "1").env_remove("CHINOOK_BROKERS");
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

/// An embedded broker for one test binary: started once on an ephemeral port,
/// on its own runtime thread, with the lab schemas enforced. It lives as long
/// as the test process.
pub struct TestBroker {
    pub bootstrap: String,
    pub door: chinook::broker::frontdoor::FrontDoor,
}

fn spawn_broker(corrected: bool) -> TestBroker {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap().keep();
            chinook::broker::embedded::write_registry(&dir).unwrap();
            let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let running =
                chinook::broker::embedded::start(door, Some(&dir), corrected, Default::default(), None).await.unwrap();
            tx.send(TestBroker { bootstrap: running.bootstrap().to_string(), door: running.door.clone() }).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("the embedded broker starts")
}

/// The shared, corrected broker of this test binary.
pub fn broker() -> &'static TestBroker {
    static BROKER: std::sync::OnceLock<TestBroker> = std::sync::OnceLock::new();
    BROKER.get_or_init(|| spawn_broker(true))
}

/// A broker of its own, for a test that disturbs it (outages).
pub fn isolated_broker() -> &'static TestBroker {
    Box::leak(Box::new(spawn_broker(true)))
}

/// A broker over tansu's storage as it is, to reproduce its bugs.
pub fn raw_broker() -> &'static TestBroker {
    static BROKER: std::sync::OnceLock<TestBroker> = std::sync::OnceLock::new();
    BROKER.get_or_init(|| spawn_broker(false))
}

/// A topic name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

pub fn connection(b: &TestBroker) -> chinook::kafka::Connection {
    chinook::kafka::Connection::new(b.bootstrap.clone())
}

/// Creates a topic with `partitions` partitions and waits until metadata shows it.
pub async fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = connection(b).client_config().create().unwrap();
    let r = admin
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
}

/// An idempotent producer that sends each batch as soon as it is enqueued.
pub fn producer(b: &TestBroker) -> rdkafka::producer::FutureProducer {
    let mut c = connection(b).client_config();
    c.set("enable.idempotence", "true").set("linger.ms", "5");
    c.create().unwrap()
}

/// A loopback port nobody listens on (free when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A student's working directory with a free port for a chinook-managed
/// broker; commands run there with CHINOOK_BROKERS pointing at that port, and
/// the broker is stopped when it goes out of scope.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    pub port: String,
}

impl Workdir {
    pub fn new() -> Self {
        let port = free_port().to_string();
        Self { dir: tempfile::tempdir().unwrap(), port }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_as(&self.brokers(), args)
    }

    /// Runs with `CHINOOK_BROKERS` set to `brokers` (another name for the broker, say).
    pub fn run_as(&self, brokers: &str, args: &[&str]) -> std::process::Output {
        chinook()
            .current_dir(self.dir.path())
            .env("CHINOOK_BROKERS", brokers)
            .args(args)
            .timeout(std::time::Duration::from_secs(180))
            .output()
            .unwrap()
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.run(args);
        assert!(out.status.success(), "chinook {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// `chinook broker start --port <port> <extra…>`.
    pub fn start(&self, extra: &[&str]) {
        let mut args = vec!["broker", "start", "--port", &self.port];
        args.extend_from_slice(extra);
        self.ok(&args);
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = self.run(&["broker", "stop"]);
    }
}

/// Waits for a child process to exit; kills it and fails the test if it is
/// still running after `limit` (a generous bound: a loaded 2-core machine).
pub fn wait_or_kill(child: &mut std::process::Child, limit: std::time::Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} still running after {limit:?}: killed", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Commits `offset` for one partition of `topic` in `group`, as a consumer
/// that processed only that partition would.
pub fn commit_one(brokers: &str, group: &str, topic: &str, partition: i32, offset: i64) {
    use rdkafka::consumer::Consumer;
    let c: rdkafka::consumer::BaseConsumer = chinook::kafka::Connection::new(brokers)
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset)).unwrap();
    c.commit(&tpl, rdkafka::consumer::CommitMode::Sync).unwrap();
}
pub mod postgres;
