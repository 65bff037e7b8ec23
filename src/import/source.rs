//! Reading the `Customer` table of the Chinook sample database, from its
//! SQLite file or from a PostgreSQL server loaded with its script. The two
//! spell the table differently (`Customer.CustomerId` in SQLite,
//! `customer.customer_id` in PostgreSQL); both give the same rows.

use std::path::PathBuf;

/// One row of the `Customer` table, NULLs as `None`. As JSON (what `project
/// customers --rows` prints and Lab 2's projector writes), the columns in
/// snake case, NULL as null.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Row {
    pub customer_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub company: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
    pub fax: Option<String>,
    pub email: String,
    pub support_rep_id: Option<i64>,
}

/// Where the rows come from: `--db PATH` or `--db postgres://…`.
#[derive(Clone, Debug)]
pub enum Source {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Source {
    pub fn parse(db: &str) -> Source {
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            Source::Postgres(db.to_string())
        } else {
            Source::Sqlite(PathBuf::from(db))
        }
    }

    /// The source as it may be shown: a URL's password replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            Source::Sqlite(p) => p.display().to_string(),
            Source::Postgres(url) => redact(url),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// Why the table could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    #[error("cannot open {db}: {reason}")]
    #[diagnostic(
        code(chinook::import::open),
        help(
            "give the Chinook SQLite file (e.g. --db ../shared/chinook-db/Chinook_Sqlite.sqlite) or a PostgreSQL URL (postgres://user@localhost/chinook)"
        )
    )]
    Open { db: String, reason: String },
    #[error("{db} has no readable Customer table: {reason}")]
    #[diagnostic(
        code(chinook::import::table),
        help(
            "the database must be the Chinook sample (table Customer with CustomerId, FirstName, …; in PostgreSQL customer with customer_id, first_name, …)"
        )
    )]
    Table { db: String, reason: String },
}

impl SourceError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SourceError::Open { .. } => crate::exit::UNAVAILABLE,
            SourceError::Table { .. } => crate::exit::BAD_INPUT,
        }
    }
}

/// Every customer row, in id order.
pub async fn read(source: &Source) -> Result<Vec<Row>, SourceError> {
    match source {
        Source::Sqlite(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || sqlite(&path))
                .await
                .unwrap_or_else(|e| Err(SourceError::Open { db: source.display(), reason: e.to_string() }))
        }
        Source::Postgres(url) => postgres(url, &source.display()).await,
    }
}

const SQLITE_QUERY: &str = "SELECT CustomerId, FirstName, LastName, Company, Address, City, State, Country, \
     PostalCode, Phone, Fax, Email, SupportRepId FROM Customer ORDER BY CustomerId";

fn sqlite(path: &std::path::Path) -> Result<Vec<Row>, SourceError> {
    let db = path.display().to_string();
    let open = |reason: String| SourceError::Open { db: db.clone(), reason };
    if !path.is_file() {
        return Err(open("no such file".into()));
    }
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| open(e.to_string()))?;
    let table = |e: rusqlite::Error| SourceError::Table { db: db.clone(), reason: e.to_string() };
    let mut stmt = conn.prepare(SQLITE_QUERY).map_err(table)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Row {
                customer_id: r.get(0)?,
                first_name: r.get(1)?,
                last_name: r.get(2)?,
                company: r.get(3)?,
                address: r.get(4)?,
                city: r.get(5)?,
                state: r.get(6)?,
                country: r.get(7)?,
                postal_code: r.get(8)?,
                phone: r.get(9)?,
                fax: r.get(10)?,
                email: r.get(11)?,
                support_rep_id: r.get(12)?,
            })
        })
        .map_err(table)?;
    rows.collect::<Result<_, _>>().map_err(table)
}

const POSTGRES_QUERY: &str = "SELECT customer_id::int8, first_name, last_name, company, address, city, state, \
     country, postal_code, phone, fax, email, support_rep_id::int8 FROM customer ORDER BY customer_id";

async fn postgres(url: &str, db: &str) -> Result<Vec<Row>, SourceError> {
    let open = |e: tokio_postgres::Error| SourceError::Open { db: db.to_string(), reason: pg_reason(&e) };
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(open)?;
    let task = tokio::spawn(connection);
    let table = |e: tokio_postgres::Error| SourceError::Table { db: db.to_string(), reason: pg_reason(&e) };
    let rows = client.query(POSTGRES_QUERY, &[]).await.map_err(table);
    drop(client);
    let _ = task.await;
    let row = |r: &tokio_postgres::Row| -> Result<Row, tokio_postgres::Error> {
        Ok(Row {
            customer_id: r.try_get(0)?,
            first_name: r.try_get(1)?,
            last_name: r.try_get(2)?,
            company: r.try_get(3)?,
            address: r.try_get(4)?,
            city: r.try_get(5)?,
            state: r.try_get(6)?,
            country: r.try_get(7)?,
            postal_code: r.try_get(8)?,
            phone: r.try_get(9)?,
            fax: r.try_get(10)?,
            email: r.try_get(11)?,
            support_rep_id: r.try_get(12)?,
        })
    };
    rows?.iter().map(|r| row(r).map_err(table)).collect()
}

/// The server's own message when there is one, else the error and its cause.
fn pg_reason(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(d), _) => d.message().to_string(),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_password_is_never_shown() {
        assert_eq!(redact("postgres://ana:s3cret@db:5432/chinook"), "postgres://ana:***@db:5432/chinook");
        assert_eq!(redact("postgres://ana@db/chinook"), "postgres://ana@db/chinook");
        assert!(matches!(Source::parse("postgresql://x/y"), Source::Postgres(_)));
        assert!(matches!(Source::parse("Chinook.sqlite"), Source::Sqlite(_)));
    }
}
