//! `projector-matches-source`: chinook plays the importer. A customer table
//! in the Chinook shape is published as events onto a scratch topic (as
//! `chinook import` does), the student's projector rebuilds the table into
//! CHINOOK_OUTPUT, and the result must equal the table. Then the table
//! changes — a customer moves, one gets a company, one row is deleted, one
//! added — the changes are published, and a second run of the projector must
//! give the changed table back.

use std::time::Duration;

use super::{Checked, Env, Judged, Role};
use crate::{
    import::{self, Row},
    kafka::{
        producer::{self, OutRecord, ProduceOptions},
        scratch::Scratch,
    },
    sourcing::{self, Filter},
};

/// How long one projector run may take (a first `go run` compiles).
const LIMIT: Duration = Duration::from_secs(120);

const PEOPLE: [(&str, &str, &str, &str); 6] = [
    ("Ana", "Souza", "Recife", "Brazil"),
    ("Jonas", "Weber", "Hamburg", "Germany"),
    ("Chloé", "Martin", "Lyon", "France"),
    ("Ingrid", "Berg", "Bergen", "Norway"),
    ("Tomás", "Rojas", "Valparaíso", "Chile"),
    ("Priya", "Nair", "Chennai", "India"),
];

/// A dozen rows with every kind of column, some NULL.
fn table() -> Vec<Row> {
    (1..=12)
        .map(|id: i64| {
            let (first, last, city, country) = PEOPLE[(id as usize - 1) % PEOPLE.len()];
            Row {
                customer_id: id,
                first_name: first.into(),
                last_name: format!("{last}-{id}"),
                company: (id % 3 == 0).then(|| format!("Company {id}")),
                address: Some(format!("{id} Main Street")),
                city: Some(city.into()),
                state: (id % 4 == 0).then(|| "SP".to_string()),
                country: Some(country.into()),
                postal_code: Some(format!("{id:05}")),
                phone: Some(format!("+1 555 01{id:02}")),
                fax: (id % 5 == 0).then(|| format!("+1 555 02{id:02}")),
                email: format!("{}.{id}@example.com", first.to_lowercase()),
                support_rep_id: Some(3 + id % 3),
            }
        })
        .collect()
}

/// The table after some changes: a move, a new company, a deletion, a new row.
fn changed(mut rows: Vec<Row>) -> Vec<Row> {
    rows[1].city = Some("Bremen".into());
    rows[1].postal_code = Some("28195".into());
    rows[3].company = Some("Fjord Records".into());
    rows.remove(6);
    let mut new = rows[0].clone();
    new.customer_id = 13;
    new.first_name = "Kenji".into();
    new.email = "kenji.13@example.com".into();
    rows.push(new);
    rows
}

/// Publishes what differs between `rows` and the topic, as `chinook import` does.
async fn publish(env: &Env, topic: &str, rows: &[Row]) -> Result<usize, super::Failed> {
    let projection = sourcing::project(&env.conn, topic, &Filter::default(), |_, _, _| {}).await?;
    let plan = import::plan(rows, &projection, &crate::events::new_id("check-import"));
    let records: Vec<OutRecord> = plan.events.iter().map(|e| OutRecord::event(topic, e)).collect();
    let report = producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await?;
    if report.failed > 0 {
        return Err(format!("{} change events were not acknowledged", report.failed).into());
    }
    Ok(plan.events.len())
}

/// How the projector's rows differ from the table's, or None when they are equal.
fn differences(output: &str, rows: &[Row]) -> Option<String> {
    let mut got = Vec::new();
    for (n, line) in output.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<Row>(line) {
            Ok(r) => got.push(r),
            Err(e) => return Some(format!("line {} is not a Customer row: {e}", n + 1)),
        }
    }
    got.sort_by_key(|r| r.customer_id);
    let ids = |v: &[Row]| v.iter().map(|r| r.customer_id).collect::<Vec<_>>();
    if ids(&got) != ids(rows) {
        let (want, have) = (ids(rows), ids(&got));
        let missing: Vec<_> = want.iter().filter(|i| !have.contains(i)).collect();
        let extra: Vec<_> = have.iter().filter(|i| !want.contains(i)).collect();
        return Some(format!("{} rows; missing customers {missing:?}, extra {extra:?}", got.len()));
    }
    let wrong: Vec<String> = got
        .iter()
        .zip(rows)
        .filter(|(g, w)| g != w)
        .take(3)
        .map(|(g, w)| {
            let (g, w) = (serde_json::to_value(g).unwrap_or_default(), serde_json::to_value(w).unwrap_or_default());
            let fields: Vec<String> = w
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| g.get(k.as_str()) != Some(v))
                .map(|(k, v)| format!("{k} = {} (want {v})", g.get(k.as_str()).cloned().unwrap_or_default()))
                .collect();
            format!("customer {}: {}", w["customer_id"], fields.join(", "))
        })
        .collect();
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

pub async fn check(env: &Env, id: &str, topic: &str) -> Checked {
    let partitions = env.topic(topic)?.partitions;
    let expected = "after an import, and again after the table changed (a move, a new company, a deleted row, a new row) and was re-imported, your projector's table equals the source table, every column".to_string();
    let scratch = Scratch::create(&env.conn, "check.projector", &[("", partitions)]).await?;
    let result = async {
        let mut runs = Vec::new();
        let mut findings = Vec::new();
        for (round, rows) in [table(), changed(table())].into_iter().enumerate() {
            let sent = publish(env, scratch.topic(), &rows).await?;
            let output = env.runs.join(id).join(format!("customers-{}.jsonl", round + 1));
            let _ = std::fs::remove_file(&output);
            let vars =
                [("CHINOOK_TOPIC", scratch.topic().to_string()), ("CHINOOK_OUTPUT", output.display().to_string())];
            let mut projector = env.start(id, Role::Projector, round + 1, &vars)?;
            projector.wait(LIMIT).await;
            projector.terminate(Duration::from_secs(5)).await;
            let what = if round == 0 { "after the import" } else { "after the changes" };
            let finding = match (projector.exit.is_some_and(|s| s.success()), std::fs::read_to_string(&output)) {
                (false, _) => Some(format!("{}: {}", projector.label, projector.ending())),
                (true, Err(_)) => Some(format!("no file {}", output.display())),
                (true, Ok(text)) => differences(&text, &rows),
            };
            findings.push(match finding {
                None => format!("{what} ({sent} events): equal, {} rows", rows.len()),
                Some(f) => format!("{what} ({sent} events): {f}"),
            });
            runs.push(projector);
        }
        Ok::<_, super::Failed>((runs, findings))
    }
    .await;
    scratch.remove(&env.conn).await;
    let (runs, findings) = result?;
    let passed = findings.iter().all(|f| f.contains(": equal,"));
    Ok(Judged::new(passed, expected, findings.join("; ")).with_output(&runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_rows_and_columns() {
        let rows = table();
        let text = |rows: &[Row]| rows.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect::<String>();
        assert_eq!(differences(&text(&rows), &rows), None);
        let after = changed(table());
        assert!(differences(&text(&rows), &after).unwrap().contains("extra [7]"));
        let mut moved = after.clone();
        moved[1].city = Some("Hamburg".into());
        let said = differences(&text(&moved), &after).unwrap();
        assert!(said.contains("customer 2: city = \"Hamburg\" (want \"Bremen\")"), "{said}");
        assert!(differences("not json", &rows).unwrap().contains("line 1"));
    }
}
