//! Event sourcing over `customer_events`: the topic read as an event store
//! ([`log`]), customers rebuilt from it with every anomaly reported
//! ([`projection`]), and appends guarded by an expected version
//! ([`append`]).

pub mod append;
pub mod log;
pub mod projection;

use crate::kafka::{Connection, KafkaError};
pub use projection::{Anomaly, Applied, Projection};

/// Which events a projection takes.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this customer.
    pub id: Option<i64>,
    /// Only events that happened at or before this time (ms since the epoch).
    pub at: Option<i64>,
    /// Only events up to this version (with `id`).
    pub version: Option<i64>,
}

impl Filter {
    fn takes(&self, s: &log::Stored, e: &crate::codec::pb::events::v1::CustomerEvent) -> bool {
        let when = e.timestamp.as_ref().map(crate::events::millis).or(s.timestamp);
        self.id.is_none_or(|id| e.aggregate_id == id.to_string())
            && self.at.is_none_or(|at| when.is_some_and(|w| w <= at))
            && self.version.is_none_or(|v| e.version <= v)
    }
}

/// The customers rebuilt from `topic`, calling `each(position, event, outcome)`
/// for every event it looked at (for `-v`).
pub async fn project(
    conn: &Connection,
    topic: &str,
    filter: &Filter,
    mut each: impl FnMut(&str, &crate::codec::pb::events::v1::CustomerEvent, &Applied),
) -> Result<Projection, KafkaError> {
    let mut projection = Projection::default();
    for s in log::read(conn, topic, None).await? {
        let at = format!("{topic}/{}@{}", s.partition, s.offset);
        match &s.event() {
            Ok(e) if filter.takes(&s, e) => {
                let outcome = projection.apply(&at, e);
                each(&at, e, &outcome);
            }
            Ok(_) => {}
            Err(reason) => {
                projection.anomalies.push(Anomaly::Unreadable { at, reason: format!("not a CustomerEvent: {reason}") })
            }
        }
    }
    Ok(projection)
}
