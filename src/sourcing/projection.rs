//! Folding customer events into customer state, the way an event-sourced
//! read model is rebuilt: events applied in log order, each aggregate's
//! versions checked, and everything that does not fit reported rather than
//! silently applied (a gap, a duplicate, an event for a customer nobody
//! created, a version that goes backwards).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::codec::pb::{
    customer::v1::{Customer, CustomerStatus},
    events::v1::{CustomerEvent, customer_event::Payload},
};

/// One customer as the events left it.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub customer: Customer,
    /// The version of the last event applied.
    pub version: i64,
    pub deleted: bool,
}

/// Something in the log that an event-sourced reader must not apply blindly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Anomaly {
    /// Versions between the last applied and this event's are missing (applied anyway).
    Gap { aggregate: String, after: i64, version: i64, at: String },
    /// An event id seen before (skipped).
    Duplicate { aggregate: String, event_id: String, version: i64, at: String },
    /// An event for a customer with no `created` before it (skipped).
    UnknownAggregate { aggregate: String, version: i64, at: String },
    /// A version not above the last applied one (skipped).
    OutOfOrder { aggregate: String, last: i64, version: i64, at: String },
    /// A change to a customer already deleted (skipped).
    AfterDelete { aggregate: String, version: i64, at: String },
    /// A record that is not a customer event, or whose type and payload disagree (skipped).
    Unreadable { at: String, reason: String },
}

impl Anomaly {
    pub fn describe(&self) -> String {
        match self {
            Anomaly::Gap { aggregate, after, version, at } => {
                format!(
                    "customer {aggregate}: version {version} follows {after} at {at}; versions in between are missing"
                )
            }
            Anomaly::Duplicate { aggregate, event_id, version, at } => {
                format!("customer {aggregate}: event {event_id} (version {version}) at {at} was already applied")
            }
            Anomaly::UnknownAggregate { aggregate, version, at } => {
                format!("customer {aggregate}: version {version} at {at}, but the customer was never created")
            }
            Anomaly::OutOfOrder { aggregate, last, version, at } => {
                format!("customer {aggregate}: version {version} at {at} is not after version {last}")
            }
            Anomaly::AfterDelete { aggregate, version, at } => {
                format!("customer {aggregate}: version {version} at {at} changes a deleted customer")
            }
            Anomaly::Unreadable { at, reason } => format!("{at}: {reason}"),
        }
    }
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    Applied,
    Skipped(Anomaly),
}

/// Customers rebuilt from events, with what did not fit.
#[derive(Clone, Debug, Default)]
pub struct Projection {
    pub customers: BTreeMap<i64, Aggregate>,
    pub anomalies: Vec<Anomaly>,
    pub applied: usize,
    seen: HashSet<String>,
}

impl Projection {
    /// Applies `event` found at `at` (a position such as `customer_events/1@42`).
    pub fn apply(&mut self, at: &str, event: &CustomerEvent) -> Applied {
        let aggregate = event.aggregate_id.clone();
        let at = at.to_string();
        let skip = |p: &mut Self, a: Anomaly| {
            p.anomalies.push(a.clone());
            Applied::Skipped(a)
        };
        if !event.event_id.is_empty() && self.seen.contains(&event.event_id) {
            let a = Anomaly::Duplicate { aggregate, event_id: event.event_id.clone(), version: event.version, at };
            return skip(self, a);
        }
        let Some(payload) = &event.payload else {
            return skip(self, Anomaly::Unreadable { at, reason: "an event with no payload".into() });
        };
        if let Err(reason) = crate::events::route(event) {
            return skip(self, Anomaly::Unreadable { at, reason });
        }
        let Ok(id) = aggregate.parse::<i64>() else {
            return skip(
                self,
                Anomaly::Unreadable { at, reason: format!("aggregate id {aggregate:?} is not a number") },
            );
        };
        let version = event.version;
        let current = self.customers.get(&id);
        match (current, payload) {
            (None, Payload::CustomerCreated(_)) => {}
            (None, _) => return skip(self, Anomaly::UnknownAggregate { aggregate, version, at }),
            (Some(c), _) if version <= c.version => {
                return skip(self, Anomaly::OutOfOrder { aggregate, last: c.version, version, at });
            }
            (Some(c), Payload::CustomerCreated(_)) if !c.deleted => {
                return skip(self, Anomaly::OutOfOrder { aggregate, last: c.version, version, at });
            }
            (Some(c), p) if c.deleted && !matches!(p, Payload::CustomerCreated(_)) => {
                return skip(self, Anomaly::AfterDelete { aggregate, version, at });
            }
            (Some(_), _) => {}
        }
        let after = current.map_or(0, |c| c.version);
        if version > after + 1 {
            self.anomalies.push(Anomaly::Gap { aggregate: aggregate.clone(), after, version, at: at.clone() });
        }
        self.seen.insert(event.event_id.clone());
        self.applied += 1;
        let entry = self.customers.entry(id).or_insert_with(|| Aggregate {
            customer: Customer { id, ..Default::default() },
            version: 0,
            deleted: false,
        });
        entry.version = version;
        let c = &mut entry.customer;
        match payload {
            Payload::CustomerCreated(p) => {
                *c = p.customer.clone().unwrap_or_default();
                entry.deleted = false;
            }
            Payload::CustomerUpdated(p) => *c = p.customer.clone().unwrap_or_default(),
            Payload::CustomerDeleted(_) => entry.deleted = true,
            Payload::StatusChanged(p) => c.status = p.new_status,
            Payload::ContactUpdated(p) => {
                if let Some(contact) = &p.contact {
                    c.email = contact.email.clone();
                    c.contact = Some(contact.clone());
                }
            }
        }
        c.id = id;
        if event.timestamp.is_some() {
            c.updated_at = event.timestamp;
        }
        Applied::Applied
    }

    /// The customers that exist (not deleted), in id order.
    pub fn live(&self) -> impl Iterator<Item = &Aggregate> {
        self.customers.values().filter(|a| !a.deleted)
    }
}

/// A customer as `project customers` prints it: flat, one field per column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomerRow {
    pub id: i64,
    pub version: i64,
    pub name: String,
    pub email: String,
    pub status: String,
    pub phone: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    pub country_code: String,
    pub labels: BTreeMap<String, String>,
}

impl From<&Aggregate> for CustomerRow {
    fn from(a: &Aggregate) -> Self {
        let c = &a.customer;
        let contact = c.contact.clone().unwrap_or_default();
        CustomerRow {
            id: c.id,
            version: a.version,
            name: c.name.clone(),
            email: c.email.clone(),
            status: CustomerStatus::try_from(c.status)
                .map_or_else(|_| c.status.to_string(), |s| s.as_str_name().into()),
            phone: contact.phone,
            address: contact.address_line,
            city: contact.city,
            postal_code: contact.postal_code,
            country_code: contact.country_code,
            labels: c.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{self, EventKind, Facts};

    fn ev(kind: EventKind, id: i64, version: i64) -> CustomerEvent {
        events::event(kind, &Facts { id, ..Default::default() }, version)
    }

    #[test]
    fn applies_a_history_in_order() {
        let mut p = Projection::default();
        assert_eq!(p.apply("a", &ev(EventKind::CustomerCreated, 7, 1)), Applied::Applied);
        let mut contact = ev(EventKind::ContactUpdated, 7, 2);
        if let Some(Payload::ContactUpdated(c)) = &mut contact.payload {
            c.contact.as_mut().unwrap().email = "new@example.com".into();
        }
        assert_eq!(p.apply("b", &contact), Applied::Applied);
        assert_eq!(p.apply("c", &ev(EventKind::StatusChanged, 7, 3)), Applied::Applied);
        let a = &p.customers[&7];
        assert_eq!((a.version, a.customer.email.as_str()), (3, "new@example.com"));
        assert_eq!(a.customer.status, CustomerStatus::Suspended as i32);
        assert!(p.anomalies.is_empty());
        assert_eq!(p.apply("d", &ev(EventKind::CustomerDeleted, 7, 4)), Applied::Applied);
        assert_eq!(p.live().count(), 0);
        // Re-created after a delete: the history goes on.
        assert_eq!(p.apply("e", &ev(EventKind::CustomerCreated, 7, 5)), Applied::Applied);
        assert_eq!(p.live().count(), 1);
    }

    #[test]
    fn reports_what_does_not_fit() {
        let mut p = Projection::default();
        let created = ev(EventKind::CustomerCreated, 1, 1);
        p.apply("a", &created);
        assert!(matches!(p.apply("b", &created), Applied::Skipped(Anomaly::Duplicate { .. })));
        assert!(matches!(
            p.apply("c", &ev(EventKind::CustomerUpdated, 2, 2)),
            Applied::Skipped(Anomaly::UnknownAggregate { .. })
        ));
        assert_eq!(p.apply("d", &ev(EventKind::CustomerUpdated, 1, 4)), Applied::Applied);
        assert!(matches!(p.anomalies.last(), Some(Anomaly::Gap { after: 1, version: 4, .. })));
        assert!(matches!(
            p.apply("e", &ev(EventKind::StatusChanged, 1, 3)),
            Applied::Skipped(Anomaly::OutOfOrder { last: 4, .. })
        ));
        p.apply("f", &ev(EventKind::CustomerDeleted, 1, 5));
        assert!(matches!(
            p.apply("g", &ev(EventKind::StatusChanged, 1, 6)),
            Applied::Skipped(Anomaly::AfterDelete { .. })
        ));
        assert_eq!(p.customers[&1].version, 5);
        assert_eq!(p.anomalies.len(), 5);
    }
}
