//! `metrics-exposed`: the student's consumer serves Prometheus metrics at
//! `CHINOOK_METRICS_ADDR`. chinook scrapes it while it publishes events and
//! then poison ones (valid protobuf whose type and payload disagree), and
//! judges what any client library exposes under the lab's names: a counter
//! ending in `records_processed_total` that rises by the records published, one
//! ending in `processing_errors_total` that rises by the poison ones, and a
//! gauge ending in `consumer_lag`.

use std::time::Duration;

use tokio::time::Instant;

use super::{Checked, Env, Judged, Role, evidence};
use crate::{
    codec::pb::events::v1::{CustomerEvent, CustomerEventType},
    events::{self, EventKind, Facts},
    kafka::{
        producer::{self, OutRecord, ProduceOptions},
        scratch::Scratch,
    },
    monitor::{self, text},
};

/// How long the consumer may take to start (a first `go run` compiles) and serve.
const LIMIT: Duration = Duration::from_secs(120);
const GOOD: i64 = 20;
const POISON: i64 = 3;

/// The figures of one scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Figures {
    processed: Option<f64>,
    errors: Option<f64>,
    lag: bool,
}

/// Sums the samples whose name ends with each of the lab's suffixes.
fn figures(body: &str) -> Result<Figures, String> {
    let samples = text::parse(body)?;
    let sum = |suffix: &str| {
        let mine: Vec<f64> = samples.iter().filter(|s| s.name.ends_with(suffix)).map(|s| s.value).collect();
        (!mine.is_empty()).then(|| mine.iter().sum())
    };
    Ok(Figures {
        processed: sum("records_processed_total"),
        errors: sum("processing_errors_total"),
        lag: samples.iter().any(|s| s.name.ends_with("consumer_lag")),
    })
}

/// Scrapes `addr` until `enough` holds, the program ends or `deadline` passes;
/// the last figures (or why there were none).
async fn scrape_until(
    addr: &str,
    running: &mut [crate::labs::programs::Running],
    deadline: Instant,
    enough: impl Fn(&Figures) -> bool,
) -> Result<Figures, String> {
    let mut last = Err(format!("nothing answered at {addr}"));
    loop {
        last = match monitor::scrape(addr, Duration::from_secs(5)).await {
            Ok(body) => figures(&body),
            Err(e) => last.and(Err(e)),
        };
        let ended = running.iter_mut().all(|r| r.exited().is_some());
        if last.as_ref().is_ok_and(&enough) || ended || Instant::now() >= deadline {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn records(topic: &str, from: i64, good: i64, poison: i64) -> Vec<OutRecord> {
    let mut out: Vec<OutRecord> = (from..from + good).map(|i| OutRecord::event(topic, &events::created(i))).collect();
    for i in 0..poison {
        // Says "updated", carries a "created" payload: no handler can process it.
        let e = CustomerEvent {
            event_type: CustomerEventType::Updated as i32,
            ..events::event(EventKind::CustomerCreated, &Facts { id: 900 + i, ..Default::default() }, 1)
        };
        out.push(OutRecord::event(topic, &e));
    }
    out
}

fn free_addr() -> Result<String, super::Failed> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?.to_string())
}

pub async fn check(env: &Env, id: &str, topic: &str) -> Checked {
    let _ = env.topic(topic)?;
    let expected = format!(
        "metrics at CHINOOK_METRICS_ADDR/metrics: a counter *records_processed_total rising by the {} records published, a counter *processing_errors_total rising by the {POISON} poison ones, a gauge *consumer_lag",
        2 * GOOD + POISON
    );
    let scratch = Scratch::create(&env.conn, "check.metrics", &[("", 1), (".dlq", 1)]).await?;
    let group = events::new_id("chinook-check-metrics");
    let addr = free_addr()?;
    let result = async {
        let mut vars = evidence::consumer_vars(&scratch, &group);
        vars.push(("CHINOOK_METRICS_ADDR", addr.clone()));
        let mut running = vec![env.start(id, Role::Consumer, 1, &vars)?];
        let deadline = Instant::now() + LIMIT;
        let options = ProduceOptions { idempotent: false, ..Default::default() };
        let first = scrape_until(&addr, &mut running, deadline, |_| true).await;
        producer::produce(&env.conn, &options, records(&scratch.names[0], 1, GOOD, 0), |_| {}).await?;
        let good = scrape_until(&addr, &mut running, deadline, |f| f.processed >= Some(GOOD as f64)).await;
        let before = good.as_ref().ok().copied().unwrap_or_default();
        producer::produce(&env.conn, &options, records(&scratch.names[0], 1 + GOOD, GOOD, POISON), |_| {}).await?;
        // Once it has finished with every record, its error counter has had every chance to move:
        // one more scrape, and that is what is judged.
        let finished = |f: &Figures| f.processed >= Some(before.processed.unwrap_or(0.0) + (GOOD + POISON) as f64);
        let mut last = scrape_until(&addr, &mut running, deadline, finished).await;
        if last.as_ref().is_ok_and(finished) {
            last = scrape_until(&addr, &mut running, deadline, |_| true).await;
        }
        let crashed = running[0].crashed();
        evidence::stop_all(&mut running, Duration::from_secs(10)).await;
        Ok::<_, super::Failed>((first, before, last, crashed, running))
    }
    .await;
    scratch.remove(&env.conn).await;
    let (first, before, last, crashed, running) = result?;
    let shown = |v: Option<f64>| v.map_or("absent".to_string(), |v| format!("{v}"));
    let observed = match (&first, &last) {
        (Err(e), _) | (_, Err(e)) => format!("no metrics: {e}"),
        (Ok(f), Ok(l)) => format!(
            "*records_processed_total {} → {} → {}; *processing_errors_total {} → {} → {}; *consumer_lag {}",
            shown(f.processed),
            shown(before.processed),
            shown(l.processed),
            shown(f.errors),
            shown(before.errors),
            shown(l.errors),
            if l.lag { "present" } else { "absent" }
        ),
    };
    let passed = match (&first, &last) {
        (Ok(f), Ok(l)) => {
            // A counter a library creates on first use counts from 0 before it shows.
            let rose = |a: Option<f64>, b: Option<f64>, by: i64| b.is_some_and(|b| b - a.unwrap_or(0.0) >= by as f64);
            rose(f.processed, l.processed, 2 * GOOD + POISON) && rose(before.errors, l.errors, POISON) && l.lag
        }
        _ => false,
    } && !crashed;
    let observed =
        if crashed { format!("{observed}; {} crashed ({})", running[0].label, running[0].ending()) } else { observed };
    Ok(Judged::new(passed, expected, observed).with_output(&running))
}
