//! The embedded engine: tansu 0.6.0 with in-memory storage, run inside the
//! chinook process, behind the front door (with the protocol adapter) and
//! our storage corrections; a maintenance task aborts transactions whose
//! producer went quiet past their timeout.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener as StdListener},
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tansu_broker::{broker::Broker, coordinator::group::administrator::Controller};
use tansu_schema::Registry;
use tansu_storage::StorageContainer;
use tokio::{net::TcpListener, task::JoinHandle};
use url::Url;
use uuid::Uuid;

use super::{BrokerError, adapter::Adapter, frontdoor::FrontDoor, storage::Corrected};
use crate::codec::Schemas;

const NODE_ID: i32 = 111;
const CLUSTER_ID: &str = "chinook";

/// A running embedded broker.
pub struct Embedded {
    pub door: FrontDoor,
    pub internal: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Embedded {
    /// The address clients connect to.
    pub fn bootstrap(&self) -> SocketAddr {
        self.door.addr()
    }

    /// Stops the broker (the in-memory data goes with it).
    pub fn shutdown(self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// Writes one `<topic>.proto` per schema-bound lab topic into `dir`.
pub fn write_registry(dir: &Path) -> Result<(), BrokerError> {
    let schemas = Schemas::builtin();
    std::fs::create_dir_all(dir).map_err(|e| BrokerError::io(dir, e))?;
    for topic in crate::labs::topic_plan() {
        // Framed topics are validated by the registry (`framed.rs`), not by tansu.
        if let Some(type_name) = topic.value_type.as_ref().filter(|_| !topic.framed) {
            let desc = schemas.message(type_name).map_err(|e| BrokerError::Io {
                what: format!("schema of topic {}", topic.name),
                reason: e.to_string(),
            })?;
            // The topic itself, and the check topic `chinook lab verify` publishes a valid value to.
            for name in [topic.name.to_string(), crate::kafka::topics::check_topic(&topic.name)] {
                let path = dir.join(format!("{name}.proto"));
                std::fs::write(&path, super::registry::value_schema(&name, &desc))
                    .map_err(|e| BrokerError::io(&path, e))?;
            }
        }
    }
    Ok(())
}

/// Starts tansu on an internal loopback port and the front door on `door_listener`.
/// With `registry`, topics that have a `<topic>.proto` there are schema-enforced,
/// and so are the scratch topics that borrow one of them (see [`super::registry::Lending`]).
///
/// `corrected` wraps the storage in [`Corrected`]; only tests that reproduce
/// tansu's own bugs turn it off.
pub async fn start(
    door_listener: TcpListener,
    registry: Option<&Path>,
    corrected: bool,
    guard: super::guard::Guard,
    framed: Option<super::framed::Framed>,
) -> Result<Embedded, BrokerError> {
    let fail =
        |what: &str, e: &dyn std::fmt::Display| BrokerError::Io { what: what.to_string(), reason: e.to_string() };
    let advertised = door_listener.local_addr().map_err(|e| fail("reading the front door address", &e))?;
    let internal = {
        let probe =
            StdListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| fail("finding a free internal port", &e))?;
        probe.local_addr().map_err(|e| fail("finding a free internal port", &e))?
    };
    let url = |addr: SocketAddr| Url::parse(&format!("tcp://{addr}")).expect("socket addresses make valid URLs");
    let schema_registry = match registry {
        Some(dir) => {
            let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| fail("opening the schema directory", &e))?;
            Some(Registry::builder(super::registry::Lending(store)).build())
        }
        None => None,
    };
    let container = StorageContainer::builder()
        .cluster_id(CLUSTER_ID)
        .node_id(NODE_ID)
        .advertised_listener(url(advertised))
        .schema_registry(schema_registry)
        .storage(Url::parse("memory://chinook/").expect("a valid URL"))
        .silent(true)
        .build()
        .await
        .map_err(|e| fail("creating the in-memory storage", &e))?;
    let incarnation =
        Uuid::from_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
    let urls = (url(internal), url(advertised));
    let (failed, mut tasks, adapter) = if corrected {
        let storage = Corrected::new(container).with_framed(framed);
        let (failed, task) = spawn_broker(storage.clone(), urls, incarnation)?;
        let expiry = tokio::spawn(expire_transactions(storage.clone()));
        (failed, vec![task, expiry], Some(Adapter::new(Arc::new(storage))))
    } else {
        let (failed, task) = spawn_broker(container, urls, incarnation)?;
        (failed, vec![task], None)
    };
    // Ready when the internal listener accepts connections.
    let ready = async {
        loop {
            if tokio::net::TcpStream::connect(internal).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = ready => {}
        _ = failed.notified() => return Err(BrokerError::Io { what: "starting the embedded broker".into(), reason: "it stopped during start-up (see the log)".into() }),
        _ = tokio::time::sleep(Duration::from_secs(10)) => return Err(BrokerError::Io { what: "starting the embedded broker".into(), reason: "it did not listen within 10 s".into() }),
    }
    let door = match adapter {
        Some(adapter) => FrontDoor::start_adapted(door_listener, internal, adapter, guard),
        None => FrontDoor::start(door_listener, internal, guard),
    };
    let door = door.map_err(|e| {
        tasks.drain(..).for_each(|t| t.abort());
        fail("starting the front door", &e)
    })?;
    Ok(Embedded { door, internal, tasks })
}

/// Once a second, aborts the transactions that outlived their timeout.
async fn expire_transactions<S: tansu_storage::Storage>(storage: Corrected<S>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        storage.expire_transactions(std::time::Instant::now()).await;
    }
}

type Spawned = (Arc<tokio::sync::Notify>, JoinHandle<()>);

/// Runs a tansu broker over `storage`; the notify fires if it stops.
fn spawn_broker<S: tansu_storage::Storage + Clone>(
    storage: S,
    (listener, advertised): (Url, Url),
    incarnation: Uuid,
) -> Result<Spawned, BrokerError> {
    let groups = Controller::with_storage(storage.clone())
        .map_err(|e| BrokerError::Io { what: "creating the group coordinator".into(), reason: e.to_string() })?;
    let mut broker = Broker::new(NODE_ID, CLUSTER_ID, listener, advertised, storage, groups, incarnation);
    let failed = Arc::new(tokio::sync::Notify::new());
    let failed_signal = failed.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = broker.serve(tokio::time::Instant::now()).await {
            eprintln!("embedded broker stopped: {e:?}");
        }
        failed_signal.notify_one();
    });
    Ok((failed, task))
}
