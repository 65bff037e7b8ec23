//! From a `Customer` row to a `customer.v1.Customer`, field by field (the
//! table is in docs/import.md). Every column of the row survives, so a
//! projector can give the table back exactly: the columns the schema has no
//! field for travel as labels, and NULL becomes an empty string or a missing
//! label.

use crate::codec::pb::customer::v1::{ContactInfo, Customer, CustomerStatus};

use super::source::Row;

/// The table's country names and their ISO 3166-1 alpha-2 codes.
const COUNTRIES: [(&str, &str); 24] = [
    ("Argentina", "AR"),
    ("Australia", "AU"),
    ("Austria", "AT"),
    ("Belgium", "BE"),
    ("Brazil", "BR"),
    ("Canada", "CA"),
    ("Chile", "CL"),
    ("Czech Republic", "CZ"),
    ("Denmark", "DK"),
    ("Finland", "FI"),
    ("France", "FR"),
    ("Germany", "DE"),
    ("Hungary", "HU"),
    ("India", "IN"),
    ("Ireland", "IE"),
    ("Italy", "IT"),
    ("Netherlands", "NL"),
    ("Norway", "NO"),
    ("Poland", "PL"),
    ("Portugal", "PT"),
    ("Spain", "ES"),
    ("Sweden", "SE"),
    ("United Kingdom", "GB"),
    ("USA", "US"),
];

/// The ISO code of a country as the table names it; empty when unknown (the
/// name itself always travels in the `country` label).
pub fn country_code(name: &str) -> &'static str {
    COUNTRIES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.trim())).map_or("", |(_, code)| code)
}

/// The customer a row describes. Timestamps are left unset: the table has
/// none, and the importer stamps the event time.
pub fn customer(row: &Row) -> Customer {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut labels = std::collections::HashMap::new();
    labels.insert("first_name".to_string(), row.first_name.clone());
    labels.insert("last_name".to_string(), row.last_name.clone());
    for (key, value) in [("company", &row.company), ("state", &row.state), ("country", &row.country), ("fax", &row.fax)]
    {
        if let Some(v) = value {
            labels.insert(key.to_string(), v.clone());
        }
    }
    if let Some(rep) = row.support_rep_id {
        labels.insert("support_rep_id".to_string(), rep.to_string());
    }
    Customer {
        id: row.customer_id,
        name: format!("{} {}", row.first_name, row.last_name),
        email: row.email.clone(),
        status: CustomerStatus::Active as i32,
        contact: Some(ContactInfo {
            email: row.email.clone(),
            phone: text(&row.phone),
            address_line: text(&row.address),
            city: text(&row.city),
            postal_code: text(&row.postal_code),
            country_code: country_code(row.country.as_deref().unwrap_or_default()).to_string(),
        }),
        created_at: None,
        updated_at: None,
        labels,
    }
}

/// The row a customer came from: the inverse of [`customer`]. An empty
/// text column reads back as NULL, as the import cannot tell them apart.
pub fn row(c: &Customer) -> Row {
    let label = |k: &str| c.labels.get(k).filter(|v| !v.is_empty()).cloned();
    let contact = c.contact.clone().unwrap_or_default();
    let text = |v: String| (!v.is_empty()).then_some(v);
    Row {
        customer_id: c.id,
        first_name: label("first_name").unwrap_or_default(),
        last_name: label("last_name").unwrap_or_default(),
        company: label("company"),
        address: text(contact.address_line),
        city: text(contact.city),
        state: label("state"),
        country: label("country"),
        postal_code: text(contact.postal_code),
        phone: text(contact.phone),
        fax: label("fax"),
        email: c.email.clone(),
        support_rep_id: label("support_rep_id").and_then(|v| v.parse().ok()),
    }
}

/// The fields in which `have` differs from `want`, by their schema names
/// (`contact.city`, `labels.company`, …). Status and timestamps are not
/// compared: the table has neither.
pub fn changed_fields(have: &Customer, want: &Customer) -> Vec<String> {
    let mut changed = Vec::new();
    if have.name != want.name {
        changed.push("name".to_string());
    }
    if have.email != want.email {
        changed.push("email".to_string());
    }
    let (a, b) = (have.contact.clone().unwrap_or_default(), want.contact.clone().unwrap_or_default());
    for (field, x, y) in [
        ("contact.email", &a.email, &b.email),
        ("contact.phone", &a.phone, &b.phone),
        ("contact.address_line", &a.address_line, &b.address_line),
        ("contact.city", &a.city, &b.city),
        ("contact.postal_code", &a.postal_code, &b.postal_code),
        ("contact.country_code", &a.country_code, &b.country_code),
    ] {
        if x != y {
            changed.push(field.to_string());
        }
    }
    let mut keys: Vec<&String> = have.labels.keys().chain(want.labels.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        if have.labels.get(k) != want.labels.get(k) {
            changed.push(format!("labels.{k}"));
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luis() -> Row {
        Row {
            customer_id: 1,
            first_name: "Luís".into(),
            last_name: "Gonçalves".into(),
            company: Some("Embraer".into()),
            address: Some("Av. Brigadeiro Faria Lima, 2170".into()),
            city: Some("São José dos Campos".into()),
            state: Some("SP".into()),
            country: Some("Brazil".into()),
            postal_code: Some("12227-000".into()),
            phone: Some("+55 (12) 3923-5555".into()),
            fax: None,
            email: "luisg@embraer.com.br".into(),
            support_rep_id: Some(3),
        }
    }

    #[test]
    fn every_column_has_a_place() {
        let c = customer(&luis());
        assert_eq!(c.name, "Luís Gonçalves");
        assert_eq!(c.contact.as_ref().unwrap().country_code, "BR");
        assert_eq!(c.labels["country"], "Brazil");
        assert_eq!(c.labels["support_rep_id"], "3");
        assert!(!c.labels.contains_key("fax"), "NULL is a missing label");
        assert_eq!(country_code("United Kingdom"), "GB");
        assert_eq!(country_code("Atlantis"), "");
        assert_eq!(row(&c), luis(), "a customer gives its row back");
    }

    #[test]
    fn changes_are_named_by_field() {
        let before = customer(&luis());
        let mut row = luis();
        row.city = Some("Campinas".into());
        row.fax = Some("+55 1".into());
        assert_eq!(changed_fields(&before, &customer(&row)), ["contact.city", "labels.fax"]);
        assert!(changed_fields(&before, &before).is_empty());
    }
}
