//! Checks of the set-up, no student program involved: the broker answers,
//! the lab's topics exist as planned.

use super::{Checked, Env, Judged};
use crate::kafka::admin;

/// A metadata request answers on the configured address; says which engine
/// and whether it runs on this machine.
pub async fn broker_reachable(env: &Env) -> Checked {
    let expected = format!("a broker answering at {}", env.conn.brokers);
    Ok(match admin::list_topics(&env.conn).await {
        Ok(topics) => {
            let engine = env.managed.as_ref().map_or("not started by chinook".to_string(), |s| s.engine.to_string());
            let local = if is_local(&env.conn.brokers) { "local" } else { "remote" };
            Judged::new(true, expected, format!("answers: {engine}, {local}, {} topics", topics.len()))
        }
        Err(e) => Judged::new(false, expected, e.to_string()),
    })
}

/// Whether every bootstrap address is this machine.
fn is_local(brokers: &str) -> bool {
    use std::net::ToSocketAddrs;
    brokers.split(',').filter_map(|b| b.trim().to_socket_addrs().ok()).flatten().all(|a| a.ip().is_loopback())
}

/// Every topic of the lab exists with its planned partition count.
pub async fn topics_planned(env: &Env) -> Checked {
    let (passed, expected, observed) = planned(env).await?;
    Ok(Judged::new(passed, expected, observed))
}

/// (as planned, expected, observed) for the lab's topics.
pub async fn planned(env: &Env) -> Result<(bool, String, String), super::Failed> {
    let topics = admin::list_topics(&env.conn).await?;
    let plan = &env.lab.topics;
    let expected: Vec<String> = plan.iter().map(|t| format!("{} ({})", t.name, t.partitions)).collect();
    let observed: Vec<String> = plan
        .iter()
        .map(|t| match topics.iter().find(|i| i.name == t.name) {
            Some(i) => format!("{} ({})", t.name, i.partitions.len()),
            None => format!("{} (missing)", t.name),
        })
        .collect();
    Ok((expected == observed, expected.join(", "), observed.join(", ")))
}
