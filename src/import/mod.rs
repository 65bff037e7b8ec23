//! `chinook import`: Chinook's customer table as the source of events.
//! Change capture by polling: the table is read ([`source`]), each row turned
//! into a customer ([`mapping`]) and compared with the customers rebuilt from
//! the topic; what differs becomes events — created for a row the topic does
//! not have, contact-updated when only contact fields changed, updated
//! otherwise, deleted for a customer whose row is gone.

pub mod mapping;
pub mod source;

use serde::Serialize;

use crate::{
    codec::pb::events::v1::{
        CustomerContactUpdated, CustomerCreated, CustomerDeleted, CustomerEvent, CustomerEventType, CustomerUpdated,
        customer_event::Payload,
    },
    events,
    sourcing::Projection,
};
pub use source::{Row, Source, SourceError};

/// Who the events say made the change.
const BY: &str = "chinook-import";

/// How many customers each kind of change touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub contact_updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

/// The events that bring the topic level with the table.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub events: Vec<CustomerEvent>,
    pub summary: Summary,
}

/// Compares the rows with the customers on the topic. All events of one run
/// share `correlation_id`.
pub fn plan(rows: &[Row], projection: &Projection, correlation_id: &str) -> Plan {
    let at = events::now();
    let mut plan = Plan::default();
    let event = |kind: CustomerEventType, id: i64, version: i64, payload: Payload| CustomerEvent {
        event_id: events::new_id("evt"),
        event_type: kind as i32,
        timestamp: Some(at),
        version,
        correlation_id: correlation_id.to_string(),
        causation_id: String::new(),
        aggregate_id: id.to_string(),
        aggregate_type: "customer".into(),
        payload: Some(payload),
        metadata: [("source".to_string(), "import".to_string())].into(),
    };
    let mut present = std::collections::HashSet::new();
    for row in rows {
        present.insert(row.customer_id);
        let mut want = mapping::customer(row);
        let id = row.customer_id;
        match projection.customers.get(&id) {
            Some(have) if !have.deleted => {
                let changed = mapping::changed_fields(&have.customer, &want);
                if changed.is_empty() {
                    plan.summary.unchanged += 1;
                } else if changed.iter().all(|f| f == "email" || f.starts_with("contact.")) {
                    plan.summary.contact_updated += 1;
                    let payload = Payload::ContactUpdated(CustomerContactUpdated {
                        customer_id: id,
                        contact: want.contact.clone(),
                        updated_by: BY.into(),
                    });
                    plan.events.push(event(CustomerEventType::ContactUpdated, id, have.version + 1, payload));
                } else {
                    plan.summary.updated += 1;
                    // The table knows nothing of status or creation time: keep the topic's.
                    want.status = have.customer.status;
                    want.created_at = have.customer.created_at;
                    want.updated_at = Some(at);
                    let payload = Payload::CustomerUpdated(CustomerUpdated {
                        customer: Some(want),
                        previous: Some(have.customer.clone()),
                        updated_by: BY.into(),
                        changed_fields: changed,
                    });
                    plan.events.push(event(CustomerEventType::Updated, id, have.version + 1, payload));
                }
            }
            gone => {
                plan.summary.created += 1;
                want.created_at = Some(at);
                want.updated_at = Some(at);
                let payload = Payload::CustomerCreated(CustomerCreated {
                    customer: Some(want),
                    created_by: BY.into(),
                    source: "import".into(),
                });
                let version = gone.map_or(1, |a| a.version + 1);
                plan.events.push(event(CustomerEventType::Created, id, version, payload));
            }
        }
    }
    for (id, have) in projection.customers.iter().filter(|(id, a)| !a.deleted && !present.contains(id)) {
        plan.summary.deleted += 1;
        let payload = Payload::CustomerDeleted(CustomerDeleted {
            customer_id: *id,
            deleted_by: BY.into(),
            reason: "removed from the source database".into(),
        });
        plan.events.push(event(CustomerEventType::Deleted, *id, have.version + 1, payload));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, city: &str, company: Option<&str>) -> Row {
        Row {
            customer_id: id,
            first_name: "Ana".into(),
            last_name: format!("Doe{id}"),
            company: company.map(Into::into),
            city: Some(city.into()),
            country: Some("Brazil".into()),
            email: format!("ana{id}@example.com"),
            ..Default::default()
        }
    }

    fn replay(events: &[CustomerEvent], p: &mut Projection) {
        for (i, e) in events.iter().enumerate() {
            assert_eq!(p.apply(&i.to_string(), e), crate::sourcing::Applied::Applied);
        }
    }

    #[test]
    fn snapshot_then_changes_then_nothing() {
        let mut p = Projection::default();
        let first = plan(&[row(1, "Rio", None), row(2, "Recife", None), row(3, "Natal", None)], &p, "c1");
        assert_eq!(first.summary, Summary { created: 3, ..Default::default() });
        replay(&first.events, &mut p);

        // 1 moves (contact only), 2 gets a company (an update), 3 is gone.
        let rows = [row(1, "Santos", None), row(2, "Recife", Some("Embraer"))];
        let second = plan(&rows, &p, "c2");
        assert_eq!(second.summary, Summary { updated: 1, contact_updated: 1, deleted: 1, ..Default::default() });
        let types: Vec<i32> = second.events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [
                CustomerEventType::ContactUpdated as i32,
                CustomerEventType::Updated as i32,
                CustomerEventType::Deleted as i32
            ]
        );
        assert!(second.events.iter().all(|e| e.version == 2 && e.correlation_id == "c2"));
        replay(&second.events, &mut p);

        assert_eq!(plan(&rows, &p, "c3").summary, Summary { unchanged: 2, ..Default::default() });
        // A row that comes back is created again, its history going on.
        let back = plan(&[row(1, "Santos", None), row(2, "Recife", Some("Embraer")), row(3, "Natal", None)], &p, "c4");
        assert_eq!((back.summary.created, back.events[0].version), (1, 3));
    }
}
