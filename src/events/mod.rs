//! Building the lab's typed messages: every `CustomerEvent` kind and every
//! `CustomerCommand`, from a few facts (id, name, status, ...) with realistic
//! generated defaults, plus the record key and headers that go with them.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use prost_types::Timestamp;

use crate::codec::pb::{
    customer::v1::{ContactInfo, Customer, CustomerStatus},
    events::v1::{
        CreateCustomer, CustomerCommand, CustomerContactUpdated, CustomerCreated, CustomerDeleted, CustomerEvent,
        CustomerEventType, CustomerStatusChanged, CustomerUpdated, DeleteCustomer, UpdateCustomer,
        customer_command::Action, customer_event::Payload,
    },
};

/// The kinds of event `produce` can publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum EventKind {
    CustomerCreated,
    CustomerUpdated,
    CustomerDeleted,
    StatusChanged,
    ContactUpdated,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::CustomerCreated,
        EventKind::CustomerUpdated,
        EventKind::CustomerDeleted,
        EventKind::StatusChanged,
        EventKind::ContactUpdated,
    ];

    pub fn event_type(self) -> CustomerEventType {
        match self {
            EventKind::CustomerCreated => CustomerEventType::Created,
            EventKind::CustomerUpdated => CustomerEventType::Updated,
            EventKind::CustomerDeleted => CustomerEventType::Deleted,
            EventKind::StatusChanged => CustomerEventType::StatusChanged,
            EventKind::ContactUpdated => CustomerEventType::ContactUpdated,
        }
    }
}

/// The kinds of command `produce` can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum CommandKind {
    CreateCustomer,
    UpdateCustomer,
    DeleteCustomer,
}

/// The facts an event or command is built from; everything optional has a default.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub id: i64,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub status: Option<CustomerStatus>,
    pub old_status: Option<CustomerStatus>,
    pub reason: Option<String>,
    pub by: Option<String>,
    pub source: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub changed_fields: Vec<String>,
}

/// A few of the Chinook store's customers, to make generated data look real.
const PEOPLE: [(&str, &str, &str, &str); 8] = [
    ("Luís Gonçalves", "São José dos Campos", "BR", "+55 (12) 3923-5555"),
    ("Leonie Köhler", "Stuttgart", "DE", "+49 0711 2842222"),
    ("François Tremblay", "Montréal", "CA", "+1 (514) 721-4711"),
    ("Bjørn Hansen", "Oslo", "NO", "+47 22 44 22 22"),
    ("František Wichterlová", "Prague", "CZ", "+420 2 4172 5555"),
    ("Helena Holý", "Prague", "CZ", "+420 2 4177 0449"),
    ("Astrid Gruber", "Vienne", "AT", "+43 01 5134505"),
    ("Daan Peeters", "Brussels", "BE", "+32 02 219 03 03"),
];

fn person(id: i64) -> (&'static str, &'static str, &'static str, &'static str) {
    PEOPLE[id.rem_euclid(PEOPLE.len() as i64) as usize]
}

fn default_email(name: &str, id: i64) -> String {
    let first: String =
        name.split_whitespace().next().unwrap_or("customer").chars().filter(|c| c.is_ascii_alphabetic()).collect();
    format!("{}.{id}@example.com", first.to_ascii_lowercase())
}

/// A fresh, unique id with a prefix: `evt-…`, `cmd-…`.
pub fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `process::id` is a system call each time; ids are made once per record.
    static PID: OnceLock<u32> = OnceLock::new();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let pid = *PID.get_or_init(std::process::id);
    format!("{prefix}-{nanos:x}-{pid:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Now, as a protobuf timestamp.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

impl Facts {
    fn customer(&self, at: &Timestamp) -> Customer {
        let (name, city, country, phone) = person(self.id);
        let name = self.name.clone().unwrap_or_else(|| name.to_string());
        let email = self.email.clone().unwrap_or_else(|| default_email(&name, self.id));
        Customer {
            id: self.id,
            email: email.clone(),
            status: self.status.unwrap_or(CustomerStatus::Active) as i32,
            contact: Some(self.contact(&email, city, country, phone)),
            created_at: Some(*at),
            updated_at: Some(*at),
            name,
            labels: Default::default(),
        }
    }

    fn contact(&self, email: &str, city: &str, country: &str, phone: &str) -> ContactInfo {
        ContactInfo {
            email: email.to_string(),
            phone: self.phone.clone().unwrap_or_else(|| phone.to_string()),
            address_line: String::new(),
            city: self.city.clone().unwrap_or_else(|| city.to_string()),
            postal_code: String::new(),
            country_code: self.country.clone().unwrap_or_else(|| country.to_string()),
        }
    }

    fn by(&self) -> String {
        self.by.clone().unwrap_or_else(|| "chinook-cli".into())
    }
}

/// A `CustomerEvent` of `kind` at position `version` of customer `facts.id`'s history.
pub fn event(kind: EventKind, facts: &Facts, version: i64) -> CustomerEvent {
    let at = now();
    let by = facts.by();
    let payload = match kind {
        EventKind::CustomerCreated => Payload::CustomerCreated(CustomerCreated {
            customer: Some(facts.customer(&at)),
            created_by: by,
            source: facts.source.clone().unwrap_or_else(|| "api".into()),
        }),
        EventKind::CustomerUpdated => Payload::CustomerUpdated(CustomerUpdated {
            customer: Some(facts.customer(&at)),
            previous: None,
            updated_by: by,
            changed_fields: if facts.changed_fields.is_empty() {
                vec!["name".into(), "email".into()]
            } else {
                facts.changed_fields.clone()
            },
        }),
        EventKind::CustomerDeleted => Payload::CustomerDeleted(CustomerDeleted {
            customer_id: facts.id,
            deleted_by: by,
            reason: facts.reason.clone().unwrap_or_else(|| "customer asked to close the account".into()),
        }),
        EventKind::StatusChanged => Payload::StatusChanged(CustomerStatusChanged {
            customer_id: facts.id,
            old_status: facts.old_status.unwrap_or(CustomerStatus::Active) as i32,
            new_status: facts.status.unwrap_or(CustomerStatus::Suspended) as i32,
            changed_by: by,
            reason: facts.reason.clone().unwrap_or_else(|| "payment overdue".into()),
        }),
        EventKind::ContactUpdated => {
            let (name, city, country, phone) = person(facts.id);
            let email =
                facts.email.clone().unwrap_or_else(|| default_email(facts.name.as_deref().unwrap_or(name), facts.id));
            Payload::ContactUpdated(CustomerContactUpdated {
                customer_id: facts.id,
                contact: Some(facts.contact(&email, city, country, phone)),
                updated_by: by,
            })
        }
    };
    CustomerEvent {
        event_id: new_id("evt"),
        event_type: kind.event_type() as i32,
        timestamp: Some(at),
        version,
        correlation_id: facts.correlation_id.clone().unwrap_or_default(),
        causation_id: facts.causation_id.clone().unwrap_or_default(),
        aggregate_id: facts.id.to_string(),
        aggregate_type: "customer".into(),
        payload: Some(payload),
        metadata: Default::default(),
    }
}

/// The type an event is routed on: Ok(Some(type)) for a known type whose
/// payload matches it, Ok(None) for an unknown or unspecified type (or no
/// payload), Err when type and payload disagree.
pub fn route(event: &CustomerEvent) -> Result<Option<CustomerEventType>, String> {
    let declared = CustomerEventType::try_from(event.event_type).ok();
    let carried = match &event.payload {
        Some(Payload::CustomerCreated(_)) => Some(CustomerEventType::Created),
        Some(Payload::CustomerUpdated(_)) => Some(CustomerEventType::Updated),
        Some(Payload::CustomerDeleted(_)) => Some(CustomerEventType::Deleted),
        Some(Payload::StatusChanged(_)) => Some(CustomerEventType::StatusChanged),
        Some(Payload::ContactUpdated(_)) => Some(CustomerEventType::ContactUpdated),
        None => None,
    };
    match (declared, carried) {
        (Some(CustomerEventType::Unspecified) | None, _) | (_, None) => Ok(None),
        (Some(d), Some(c)) if d == c => Ok(Some(d)),
        (Some(d), Some(c)) => {
            Err(format!("event_type says {} but the payload is {}", d.as_str_name(), c.as_str_name()))
        }
    }
}

/// A `CustomerCreated` event (version 1) for customer `id`, all else generated.
pub fn created(id: i64) -> CustomerEvent {
    event(EventKind::CustomerCreated, &Facts { id, ..Default::default() }, 1)
}

/// A `CustomerCommand` of `kind` about customer `facts.id`.
pub fn command(kind: CommandKind, facts: &Facts) -> CustomerCommand {
    let at = now();
    let action = match kind {
        CommandKind::CreateCustomer => {
            Action::CreateCustomer(CreateCustomer { customer: Some(facts.customer(&at)), requested_by: facts.by() })
        }
        CommandKind::UpdateCustomer => Action::UpdateCustomer(UpdateCustomer {
            customer: Some(facts.customer(&at)),
            requested_by: facts.by(),
            update_mask: if facts.changed_fields.is_empty() {
                vec!["email".into()]
            } else {
                facts.changed_fields.clone()
            },
        }),
        CommandKind::DeleteCustomer => Action::DeleteCustomer(DeleteCustomer {
            customer_id: facts.id,
            requested_by: facts.by(),
            reason: facts.reason.clone().unwrap_or_else(|| "customer asked to close the account".into()),
        }),
    };
    CustomerCommand {
        command_id: new_id("cmd"),
        timestamp: Some(at),
        correlation_id: facts.correlation_id.clone().unwrap_or_default(),
        action: Some(action),
        metadata: Default::default(),
    }
}

/// The record headers of an event: what a consumer can route on without decoding.
pub fn event_headers(e: &CustomerEvent) -> Vec<(String, Vec<u8>)> {
    let kind = CustomerEventType::try_from(e.event_type).map(|t| t.as_str_name()).unwrap_or("UNKNOWN");
    let mut h = vec![
        ("event-type".to_string(), kind.as_bytes().to_vec()),
        ("aggregate-type".into(), e.aggregate_type.as_bytes().to_vec()),
        ("event-version".into(), e.version.to_string().into_bytes()),
    ];
    if !e.correlation_id.is_empty() {
        h.push(("correlation-id".into(), e.correlation_id.as_bytes().to_vec()));
    }
    h.push(("content-type".into(), b"application/x-protobuf".to_vec()));
    h
}

/// The record headers of a command.
pub fn command_headers(c: &CustomerCommand) -> Vec<(String, Vec<u8>)> {
    let kind = match c.action {
        Some(Action::CreateCustomer(_)) => "CREATE_CUSTOMER",
        Some(Action::UpdateCustomer(_)) => "UPDATE_CUSTOMER",
        Some(Action::DeleteCustomer(_)) => "DELETE_CUSTOMER",
        None => "UNKNOWN",
    };
    let mut h = vec![("command-type".to_string(), kind.as_bytes().to_vec())];
    if !c.correlation_id.is_empty() {
        h.push(("correlation-id".into(), c.correlation_id.as_bytes().to_vec()));
    }
    h.push(("content-type".into(), b"application/x-protobuf".to_vec()));
    h
}

/// Milliseconds since the epoch of a protobuf timestamp (the record timestamp).
pub fn millis(t: &Timestamp) -> i64 {
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_matches_its_type_and_payload() {
        for kind in EventKind::ALL {
            let e = event(kind, &Facts { id: 7, ..Default::default() }, 2);
            assert_eq!(e.event_type, kind.event_type() as i32);
            assert_eq!(e.aggregate_id, "7");
            assert_eq!(e.version, 2);
            let payload_matches = matches!(
                (kind, e.payload.as_ref().unwrap()),
                (EventKind::CustomerCreated, Payload::CustomerCreated(_))
                    | (EventKind::CustomerUpdated, Payload::CustomerUpdated(_))
                    | (EventKind::CustomerDeleted, Payload::CustomerDeleted(_))
                    | (EventKind::StatusChanged, Payload::StatusChanged(_))
                    | (EventKind::ContactUpdated, Payload::ContactUpdated(_))
            );
            assert!(payload_matches, "{kind:?}");
        }
    }

    #[test]
    fn ids_are_unique_and_headers_carry_the_type() {
        let a = event(
            EventKind::CustomerCreated,
            &Facts { id: 1, correlation_id: Some("c-1".into()), ..Default::default() },
            1,
        );
        let b = event(EventKind::CustomerCreated, &Facts { id: 1, ..Default::default() }, 1);
        assert_ne!(a.event_id, b.event_id);
        let h = event_headers(&a);
        assert!(h.contains(&("event-type".into(), b"CUSTOMER_EVENT_TYPE_CREATED".to_vec())));
        assert!(h.contains(&("correlation-id".into(), b"c-1".to_vec())));
        assert!(!event_headers(&b).iter().any(|(k, _)| k == "correlation-id"));
    }
}
