//! Event sourcing end to end: the Chinook database imported onto a topic
//! (from its SQLite file and from a real PostgreSQL server), the customers
//! rebuilt from the events and compared with the table as an independent
//! reader sees it (Python's sqlite3, psql), guarded appends racing, and the
//! anomalies a projection must report.

mod common;

use std::{collections::BTreeMap, path::Path, process::Output, time::Duration};

use common::{postgres::Postgres, *};
use serde_json::{Value, json};

fn run(args: &[&str]) -> Output {
    chinook().args(args).args(["--brokers", &broker().bootstrap]).timeout(Duration::from_secs(120)).output().unwrap()
}

fn ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(out.status.success(), "chinook {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

async fn topic() -> String {
    let name = unique("es");
    create_topic(broker(), &name, 3).await;
    name
}

/// The table's rows, column names in snake case, as the database's own
/// reader gives them.
fn sqlite_rows(db: &Path) -> Vec<Value> {
    let script = "import sqlite3, json, sys\n\
        c = sqlite3.connect(sys.argv[1]); c.row_factory = sqlite3.Row\n\
        print(json.dumps([dict(r) for r in c.execute('SELECT * FROM Customer ORDER BY CustomerId')]))";
    let out = std::process::Command::new("python3").args(["-c", script]).arg(db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<BTreeMap<String, Value>> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|r| {
            let snake = |k: &str| {
                let mut s = String::new();
                for (i, ch) in k.chars().enumerate() {
                    if ch.is_uppercase() && i > 0 {
                        s.push('_');
                    }
                    s.push(ch.to_ascii_lowercase());
                }
                s
            };
            Value::Object(r.into_iter().map(|(k, v)| (snake(&k), v)).collect())
        })
        .collect()
}

fn sqlite(db: &Path, sql: &str) {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn postgres_rows(pg: &Postgres) -> Vec<Value> {
    let text = pg.sql("chinook", "SELECT json_agg(c ORDER BY customer_id) FROM customer c");
    serde_json::from_str(text.trim()).unwrap()
}

/// Checks that the customers `project` rebuilt from `topic` are the rows,
/// every column, and returns the projection.
fn assert_projection_equals(topic: &str, rows: &[Value]) -> Value {
    let projection = json_out(&ok(&["project", "customers", "--topic", topic, "--format", "json"]));
    let customers = projection["customers"].as_array().unwrap();
    assert_eq!(customers.len(), rows.len(), "one customer per row");
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
    for (c, r) in customers.iter().zip(rows) {
        let id = r["customer_id"].as_i64().unwrap();
        assert_eq!(c["id"], id);
        let mut labels = json!({ "first_name": r["first_name"], "last_name": r["last_name"] });
        for column in ["company", "state", "country", "fax"] {
            if !r[column].is_null() {
                labels[column] = r[column].clone();
            }
        }
        if let Some(rep) = r["support_rep_id"].as_i64() {
            labels["support_rep_id"] = json!(rep.to_string());
        }
        let want = json!({
            "name": format!("{} {}", text(&r["first_name"]), text(&r["last_name"])),
            "email": r["email"],
            "phone": text(&r["phone"]),
            "address": text(&r["address"]),
            "city": text(&r["city"]),
            "postal_code": text(&r["postal_code"]),
            "labels": labels,
        });
        for field in ["name", "email", "phone", "address", "city", "postal_code", "labels"] {
            assert_eq!(c[field], want[field], "customer {id}, field {field}");
        }
        let code = c["country_code"].as_str().unwrap();
        let iso = code.len() == 2 && code.chars().all(|ch| ch.is_ascii_uppercase());
        assert!(iso || (code.is_empty() && r["country"].is_null()), "customer {id}: country code {code:?}");
    }
    assert_eq!(projection["anomalies"], json!([]));
    projection
}

fn import(db: &str, topic: &str) -> Value {
    json_out(&ok(&["import", "--db", db, "--topic", topic, "--format", "json"]))
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_import_round_trips_through_the_topic() {
    let topic = topic().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chinook.sqlite");
    std::fs::copy(root().join("../shared/chinook-db/Chinook_Sqlite.sqlite"), &db).unwrap();
    let path = db.to_str().unwrap();

    assert_eq!(import(path, &topic)["created"], 59);
    assert_projection_equals(&topic, &sqlite_rows(&db));

    sqlite(
        &db,
        "UPDATE Customer SET City = 'Campinas', PostalCode = '13000-000' WHERE CustomerId = 1;
         UPDATE Customer SET Company = 'Chinook Partners' WHERE CustomerId = 2;
         DELETE FROM Customer WHERE CustomerId = 3;
         INSERT INTO Customer (CustomerId, FirstName, LastName, Email) VALUES (60, 'Ada', 'Lovelace', 'ada@example.com');",
    );
    let second = import(path, &topic);
    assert_eq!(
        (&second["created"], &second["updated"], &second["contact_updated"], &second["deleted"], &second["unchanged"]),
        (&json!(1), &json!(1), &json!(1), &json!(1), &json!(56))
    );
    let projection = assert_projection_equals(&topic, &sqlite_rows(&db));
    assert_eq!(projection["deleted"], json!([3]));
    let versions: BTreeMap<i64, i64> = projection["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_i64().unwrap(), c["version"].as_i64().unwrap()))
        .collect();
    assert_eq!((versions[&1], versions[&2], versions[&4], versions[&60]), (2, 2, 1, 1));

    let third = import(path, &topic);
    assert_eq!((&third["unchanged"], &third["created"]), (&json!(59), &json!(0)), "nothing changed, nothing sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_import_round_trips_through_the_topic() {
    let pg = Postgres::start();
    pg.run_file(&root().join("../shared/chinook-db/Chinook_PostgreSql.sql"));
    let topic = topic().await;
    let url = pg.url("chinook");

    assert_eq!(import(&url, &topic)["created"], 59);
    assert_projection_equals(&topic, &postgres_rows(&pg));

    pg.sql(
        "chinook",
        "UPDATE customer SET phone = '+55 (12) 0000-0000' WHERE customer_id = 1;
         UPDATE customer SET last_name = 'Köhler-Schmidt' WHERE customer_id = 2;
         DELETE FROM invoice_line WHERE invoice_id IN (SELECT invoice_id FROM invoice WHERE customer_id = 3);
         DELETE FROM invoice WHERE customer_id = 3;
         DELETE FROM customer WHERE customer_id = 3;",
    );
    let second = import(&url, &topic);
    assert_eq!((&second["updated"], &second["contact_updated"], &second["deleted"]), (&json!(1), &json!(1), &json!(1)));
    assert_projection_equals(&topic, &postgres_rows(&pg));
}

#[tokio::test(flavor = "multi_thread")]
async fn import_errors_say_what_is_wrong() {
    let missing = run(&["import", "--db", "/nonexistent/chinook.sqlite"]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.sqlite");
    sqlite(&empty, "CREATE TABLE Track (TrackId INTEGER);");
    let wrong = run(&["import", "--db", empty.to_str().unwrap()]);
    assert_eq!(wrong.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no readable Customer table"));

    let url = format!("postgres://ana:s3cret@127.0.0.1:{}/chinook", free_port());
    let refused = run(&["import", "--db", &url]);
    assert_eq!(refused.status.code(), Some(4));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("ana:***@") && !said.contains("s3cret"), "{said}");
}

/// Five writers append to one customer, all expecting the same version; in
/// every round exactly one wins and the customer's history has no fork.
#[tokio::test(flavor = "multi_thread")]
async fn racing_writers_on_one_version_leave_exactly_one_winner() {
    let topic = topic().await;
    ok(&["produce", "customer-created", "--id", "7", "--topic", &topic, "--expect-version", "0"]);
    let again = run(&["produce", "customer-created", "--id", "7", "--topic", &topic, "--expect-version", "0"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("at version 1, not 0"));

    let bin = assert_cmd::cargo::cargo_bin("chinook");
    for expected in 1..=3 {
        let mut writers: Vec<_> = (0..5)
            .map(|w| {
                std::process::Command::new(&bin)
                    .args(["produce", "customer-updated", "--id", "7", "--topic", &topic])
                    .args(["--name", &format!("writer {w}"), "--expect-version", &expected.to_string()])
                    .args(["--brokers", &broker().bootstrap])
                    .env("NO_COLOR", "1")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut winners = 0;
        for w in &mut writers {
            match wait_or_kill(w, Duration::from_secs(120)).code() {
                Some(0) => winners += 1,
                Some(1) => {
                    let mut said = String::new();
                    std::io::Read::read_to_string(w.stderr.as_mut().unwrap(), &mut said).unwrap();
                    assert!(said.contains("chinook::produce::conflict"), "a loser reports a conflict: {said}");
                }
                other => panic!("a writer exited with {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round expecting version {expected}");
    }
    let projection = json_out(&ok(&["project", "customers", "--topic", &topic, "--id", "7", "-v", "--format", "json"]));
    assert_eq!(projection["applied"], 4, "versions 1..4, each written once");
    assert_eq!(projection["customers"][0]["version"], 4);
    assert_eq!(projection["anomalies"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projection_reports_what_does_not_fit() {
    let topic = unique("es-anomalies");
    create_topic(broker(), &topic, 1).await;
    let produce = |args: &[&str]| {
        let mut all = vec!["produce"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--topic", &topic]);
        ok(&all);
    };
    produce(&["customer-created", "--id", "1"]);
    produce(&["customer-updated", "--id", "1", "--event-version", "3"]); // a gap: 2 is missing
    produce(&["status-changed", "--id", "2"]); // customer 2 was never created
    produce(&["contact-updated", "--id", "1", "--event-version", "2"]); // goes backwards
    let saved = ok(&["consume", "--topic", &topic, "--group", &unique("g"), "--type", "events.v1.CustomerEvent"]
        .into_iter()
        .chain(["--offset", "start", "--until-end", "--format", "jsonl"])
        .collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    std::fs::write(&first, String::from_utf8_lossy(&saved.stdout).lines().next().unwrap()).unwrap();
    ok(&["produce", "--input", first.to_str().unwrap(), "--topic", &topic, "--type", "events.v1.CustomerEvent"]); // the same event again

    let out = run(&["project", "customers", "--topic", &topic, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "a history with anomalies fails");
    let projection = json_out(&out);
    let kinds: Vec<&str> =
        projection["anomalies"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["gap", "unknown-aggregate", "out-of-order", "duplicate"]);
    assert_eq!(projection["customers"][0]["version"], 3, "the gap is applied, the rest skipped");
    assert_eq!(projection["applied"], 2);
}

/// Polls the customers rebuilt from `topic` until `done` holds (deadline 60 s).
async fn until_projected(topic: &str, what: &str, done: impl Fn(&chinook::sourcing::Projection) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let p =
            chinook::sourcing::project(&connection(broker()), topic, &Default::default(), |_, _, _| {}).await.unwrap();
        if done(&p) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn import_watch_publishes_changes_as_they_appear_and_stops_on_ctrl_c() {
    let topic = topic().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chinook.sqlite");
    std::fs::copy(root().join("../shared/chinook-db/Chinook_Sqlite.sqlite"), &db).unwrap();
    let mut watch = std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["import", "--db", db.to_str().unwrap(), "--topic", &topic, "--watch", "--interval", "200ms"])
        .args(["--brokers", &broker().bootstrap])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    until_projected(&topic, "the snapshot", |p| p.live().count() == 59).await;
    sqlite(
        &db,
        "UPDATE Customer SET City = 'Curitiba' WHERE CustomerId = 5; DELETE FROM Customer WHERE CustomerId = 6;",
    );
    until_projected(&topic, "the changes", |p| {
        p.customers[&5].customer.contact.as_ref().unwrap().city == "Curitiba" && p.customers[&6].deleted
    })
    .await;
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    assert!(wait_or_kill(&mut watch, Duration::from_secs(30)).success(), "Ctrl-C ends the watch with exit 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_can_be_seen_as_it_was_by_time_or_version() {
    let topic = topic().await;
    ok(&["produce", "customer-created", "--id", "9", "--city", "Porto", "--topic", &topic]);
    let between = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    ok(&["produce", "contact-updated", "--id", "9", "--city", "Braga", "--topic", &topic]);
    let city = |args: &[&str]| {
        let mut all = vec!["project", "customers", "--topic", &topic, "--id", "9", "--format", "json"];
        all.extend_from_slice(args);
        json_out(&ok(&all))["customers"][0]["city"].as_str().unwrap().to_string()
    };
    assert_eq!(city(&[]), "Braga");
    assert_eq!(city(&["--version", "1"]), "Porto");
    assert_eq!(city(&["--at", &between]), "Porto");
}
