//! `break duplicates`: a produce request whose response comes too late is
//! retried although the broker stored it. Without idempotence the retry is
//! stored again; with it, the broker recognises the sequence number. Then the
//! consumer-side fix: an idempotent handler that dedupes on event id.

use std::{collections::HashSet, time::Duration};

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    broker::control,
    events,
    kafka::{
        KafkaError, consumer,
        producer::{self, OutRecord, ProduceOptions},
    },
};

/// `break duplicates` settings.
pub struct Duplicates {
    pub count: usize,
    /// How late responses come while the fault is on (longer than the request timeout).
    pub delay: Duration,
}

const REQUEST_TIMEOUT_MS: u64 = 400;

impl Duplicates {
    /// Sends `count` events while responses are late; returns (acked, stored, unique).
    async fn attempt(&self, env: &Env, topic: &str, idempotent: bool) -> Result<(usize, usize, usize), FaultError> {
        let state = env.managed.as_ref().ok_or(FaultError::NeedsManagedBroker { scenario: "duplicates" })?;
        let mut conn = env.conn.clone();
        conn.overrides.push(("socket.timeout.ms".into(), REQUEST_TIMEOUT_MS.to_string()));
        let options = ProduceOptions { idempotent, linger_ms: 0, retries: 0, ..Default::default() };
        let build = |id: i64| OutRecord::event(topic, &events::created(id));
        let producer = options.producer(&conn)?;
        // Warm up: connections and producer id in place before the fault.
        for r in producer::send_all(&producer, &[build(0)]).await {
            r.map_err(|e| KafkaError::request("warming up the producer", e))?;
        }
        control::request(state.control, &control::Request::Latency { millis: self.delay.as_millis() as u64 }).await?;
        let records: Vec<OutRecord> = (1..=self.count as i64).map(build).collect();
        let sending = producer::send_all(&producer, &records);
        // The fault window: every response in it is later than the request timeout.
        let lift = async {
            tokio::time::sleep(self.delay * 2).await;
            control::request(state.control, &control::Request::Latency { millis: 0 }).await
        };
        let (results, lifted) = tokio::join!(sending, lift);
        lifted?;
        let acked = results.iter().filter(|r| r.is_ok()).count();
        let ids = read_ids(env, topic).await?;
        let stored = ids.len().saturating_sub(1); // without the warm-up event
        let unique = ids.iter().collect::<HashSet<_>>().len().saturating_sub(1);
        Ok((acked, stored, unique))
    }

    pub async fn run(&self, env: &Env) -> Result<Report, FaultError> {
        if env.managed.is_none() {
            return Err(FaultError::NeedsManagedBroker { scenario: "duplicates" });
        }
        let scratch = Scratch::create(&env.conn, "break.dup", &[(".plain", 1), (".idempotent", 1)]).await?;
        let plain = self.attempt(env, &scratch.names[0], false).await;
        let idempotent = match &plain {
            Ok(_) => self.attempt(env, &scratch.names[1], true).await,
            Err(_) => Ok((0, 0, 0)),
        };
        scratch.remove(&env.conn).await;
        let ((p_acked, p_stored, p_unique), (i_acked, i_stored, i_unique)) = (plain?, idempotent?);
        let mut report = Report::new("duplicates");
        report.checks.push(Verdict::equal("events acknowledged (plain producer)", self.count, p_acked));
        report.checks.push(Verdict::holds(
            "copies stored (plain producer)",
            format!("more than {}", self.count),
            p_stored,
            p_stored > self.count,
        ));
        report.checks.push(Verdict::equal("distinct events a deduplicating handler processes", self.count, p_unique));
        report.checks.push(Verdict::equal("copies stored (idempotent producer)", self.count, i_stored));
        report.figure("sent", self.count);
        report.figure("plain_stored", p_stored);
        report.figure("plain_duplicates", p_stored.saturating_sub(p_unique));
        report.figure("idempotent_acked", i_acked);
        report.figure("idempotent_stored", i_stored);
        report.figure("idempotent_duplicates", i_stored.saturating_sub(i_unique));
        report.look_for = format!(
            "Responses came {} late while the request timeout was {REQUEST_TIMEOUT_MS} ms, so the producer retried requests the broker had already stored. The plain producer left {} copies of {} events; the idempotent one {} (the broker drops a batch whose sequence number it has seen). A consumer that remembers event ids processes each event once either way.",
            humantime::format_duration(self.delay),
            p_stored,
            self.count,
            i_stored
        );
        report.fix = "Keep enable.idempotence=true (the default in chinook and in recent clients), and make handlers idempotent: dedupe on event_id, or make the effect an upsert keyed by aggregate id and version.".into();
        Ok(report)
    }
}

async fn read_ids(env: &Env, topic: &str) -> Result<Vec<String>, FaultError> {
    Ok(consumer::read_events(&env.conn, topic).await?.into_iter().map(|e| e.event_id).collect())
}
