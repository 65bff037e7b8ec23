//! `chinook monitor`: what the broker and its consumer groups look like now
//! — every partition's earliest and latest offset, every group's committed
//! offset and lag — as a snapshot for people, as JSON, and in Prometheus'
//! text format under the names Kafka users already graph
//! (kafka-lag-exporter's), served over HTTP ([`serve`]). A [`History`] of
//! snapshots gives rates and Burrow-style statuses ([`status`]).

mod history;
mod http;
pub mod status;
pub mod text;

use std::net::SocketAddr;

pub use history::{History, View, is_dead_letters};
pub use http::{bind, scrape, serve, serve_text};
use serde::Serialize;
use text::{family, label};

use crate::kafka::{
    Connection, KafkaError, admin,
    admin::TopicInfo,
    groups::{self, GroupDescription},
};

/// The broker at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub topics: Vec<TopicInfo>,
    pub groups: Vec<GroupDescription>,
    /// Produce batches refused as INVALID_RECORD since the broker started
    /// (known for a broker chinook started, from its control endpoint).
    pub rejected_batches: Option<u64>,
}

/// Reads every topic's offsets and every group's commits and lag; and, when
/// `control` is the control endpoint of a broker chinook started, how many
/// batches it refused.
pub async fn snapshot(conn: &Connection, control: Option<SocketAddr>) -> Result<Snapshot, KafkaError> {
    let topics = admin::list_topics(conn).await?;
    let mut described = Vec::new();
    for g in groups::list(conn).await? {
        described.push(groups::describe(conn, &g.group).await?);
    }
    let rejected_batches = match control {
        Some(addr) => match crate::broker::control::request(addr, &crate::broker::control::Request::Status).await {
            Ok(crate::broker::control::Reply::Status { door, .. }) => door.rejected_batches,
            _ => None,
        },
        None => None,
    };
    Ok(Snapshot { topics, groups: described, rejected_batches })
}

/// The view in Prometheus' text exposition format (version 0.0.4).
/// `scrapes` counts the scrapes served so far, this one included.
pub fn prometheus(v: &View, scrapes: u64) -> String {
    let s = &v.now;
    let mut out = String::new();
    let mut add = |name: &str, kind: &str, help: &str, samples: Vec<(String, i64)>| {
        family(&mut out, name, kind, help, samples);
    };
    let partitions = |f: fn(&admin::PartitionInfo) -> i64| -> Vec<(String, i64)> {
        s.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (format!("{{topic=\"{}\",partition=\"{}\"}}", label(&t.name), p.id), f(p)))
            })
            .collect()
    };
    add(
        "kafka_partition_latest_offset",
        "gauge",
        "Latest offset (high watermark) of a partition.",
        partitions(|p| p.high),
    );
    add(
        "kafka_partition_earliest_offset",
        "gauge",
        "Earliest offset (log start) of a partition.",
        partitions(|p| p.low),
    );
    let lag = s
        .groups
        .iter()
        .flat_map(|g| {
            g.partitions.iter().map(move |p| {
                (
                    format!(
                        "{{group=\"{}\",topic=\"{}\",partition=\"{}\"}}",
                        label(&g.group),
                        label(&p.topic),
                        p.partition
                    ),
                    p.lag,
                )
            })
        })
        .collect();
    add("kafka_consumergroup_group_lag", "gauge", "Records of a partition the group has not committed.", lag);
    let offsets = s
        .groups
        .iter()
        .flat_map(|g| {
            g.partitions.iter().filter_map(move |p| {
                p.committed.map(|c| {
                    (
                        format!(
                            "{{group=\"{}\",topic=\"{}\",partition=\"{}\"}}",
                            label(&g.group),
                            label(&p.topic),
                            p.partition
                        ),
                        c,
                    )
                })
            })
        })
        .collect();
    add("kafka_consumergroup_group_offset", "gauge", "The offset the group committed on a partition.", offsets);
    let per_group = |f: fn(&GroupDescription) -> i64| -> Vec<(String, i64)> {
        s.groups.iter().map(|g| (format!("{{group=\"{}\"}}", label(&g.group)), f(g))).collect()
    };
    add(
        "kafka_consumergroup_group_max_lag",
        "gauge",
        "The largest partition lag of the group.",
        per_group(|g| g.partitions.iter().map(|p| p.lag).max().unwrap_or(0)),
    );
    add(
        "kafka_consumergroup_group_sum_lag",
        "gauge",
        "The group's lag summed over its partitions.",
        per_group(|g| g.total_lag),
    );
    let states = |labels: &dyn Fn(&str) -> String, now: status::Status| -> Vec<(String, i64)> {
        status::Status::ALL.iter().map(|st| (labels(st.name()), i64::from(*st == now))).collect()
    };
    add(
        "chinook_consumergroup_status",
        "gauge",
        "1 for the group's Burrow-style status (OK, WARN, ERR), 0 for the others.",
        v.consumers
            .iter()
            .flat_map(|g| {
                let labels = |st: &str| format!("{{group=\"{}\",status=\"{st}\"}}", label(&g.group));
                states(&labels, g.status)
            })
            .collect(),
    );
    add(
        "chinook_consumergroup_partition_status",
        "gauge",
        "1 for the partition's Burrow-style status (OK, WARN, STALL, STOP, REWIND), 0 for the others.",
        v.consumers
            .iter()
            .flat_map(|g| {
                g.partitions.iter().flat_map(move |p| {
                    let labels = |st: &str| {
                        format!(
                            "{{group=\"{}\",topic=\"{}\",partition=\"{}\",status=\"{st}\"}}",
                            label(&g.group),
                            label(&p.topic),
                            p.partition
                        )
                    };
                    states(&labels, p.status)
                })
            })
            .collect(),
    );
    if let Some(rejected) = v.rejected_batches {
        add(
            "chinook_broker_rejected_batches_total",
            "counter",
            "Produce batches the broker refused as INVALID_RECORD since it started.",
            vec![(String::new(), rejected as i64)],
        );
    }
    add(
        "chinook_monitor_scrapes_total",
        "counter",
        "Scrapes served by this chinook monitor.",
        vec![(String::new(), scrapes as i64)],
    );
    out
}

/// What `consume --metrics` serves: records finished with and records that
/// failed (counters), and the group's lag per partition.
pub fn consumer(processed: u64, errors: u64, lag: &[crate::kafka::groups::PartitionLag]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "chinook_consumer_records_processed_total",
        "counter",
        "Records this consumer finished with: handled, skipped or dead-lettered.",
        [(String::new(), processed as i64)],
    );
    family(
        &mut out,
        "chinook_consumer_processing_errors_total",
        "counter",
        "Records this consumer could not process (dead-lettered, or undecodable).",
        [(String::new(), errors as i64)],
    );
    family(
        &mut out,
        "chinook_consumer_lag",
        "gauge",
        "Records of a partition the group has not committed yet.",
        lag.iter().map(|p| (format!("{{topic=\"{}\",partition=\"{}\"}}", label(&p.topic), p.partition), p.lag)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::{admin::PartitionInfo, groups::PartitionLag};

    #[test]
    fn the_text_format_has_help_type_and_escaped_labels() {
        let s = Snapshot {
            topics: vec![TopicInfo {
                name: "customer_events".into(),
                partitions: vec![PartitionInfo { id: 0, leader: 1, low: 2, high: 10 }],
                configs: vec![],
            }],
            groups: vec![GroupDescription {
                group: "bill\"ing".into(),
                state: "Stable".into(),
                members: vec![],
                partitions: vec![PartitionLag {
                    topic: "customer_events".into(),
                    partition: 0,
                    committed: Some(7),
                    high: 10,
                    lag: 3,
                    member: None,
                }],
                total_lag: 3,
            }],
            rejected_batches: Some(4),
        };
        let text = prometheus(&History::new(10).push(s), 1);
        assert!(text.contains("# TYPE kafka_consumergroup_group_lag gauge\n"));
        assert!(text.contains(
            "kafka_consumergroup_group_lag{group=\"bill\\\"ing\",topic=\"customer_events\",partition=\"0\"} 3\n"
        ));
        assert!(text.contains("kafka_partition_earliest_offset{topic=\"customer_events\",partition=\"0\"} 2\n"));
        assert!(text.contains("chinook_monitor_scrapes_total 1\n"));
        assert!(text.contains(
            "kafka_consumergroup_group_offset{group=\"bill\\\"ing\",topic=\"customer_events\",partition=\"0\"} 7\n"
        ));
        assert!(text.contains("chinook_consumergroup_status{group=\"bill\\\"ing\",status=\"OK\"} 1\n"));
        assert!(text.contains("chinook_consumergroup_status{group=\"bill\\\"ing\",status=\"ERR\"} 0\n"));
        assert!(text.contains("chinook_broker_rejected_batches_total 4\n"));

        // Every metric the Grafana dashboard in docs/ queries is one chinook serves.
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/grafana/chinook-lag.json")).expect("the dashboard is JSON");
        let exprs: Vec<&str> = dashboard["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .flat_map(|p| p["targets"].as_array().into_iter().flatten())
            .filter_map(|t| t["expr"].as_str())
            .collect();
        assert!(exprs.len() >= 10, "{exprs:?}");
        for name in exprs
            .iter()
            .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .filter(|w| w.starts_with("kafka_") || w.starts_with("chinook_"))
        {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "the dashboard queries {name}, which chinook does not serve"
            );
        }
    }
}
