//! `chinook monitor`: what the broker and its consumer groups look like now
//! — every partition's earliest and latest offset, every group's committed
//! offset and lag — as a snapshot for people, as JSON, and in Prometheus'
//! text format under the names Kafka users already graph
//! (kafka-lag-exporter's), served over HTTP ([`serve`]).

mod http;

pub use http::{bind, serve};
use serde::Serialize;

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
}

/// Reads every topic's offsets and every group's commits and lag.
pub async fn snapshot(conn: &Connection) -> Result<Snapshot, KafkaError> {
    let topics = admin::list_topics(conn).await?;
    let mut described = Vec::new();
    for g in groups::list(conn).await? {
        described.push(groups::describe(conn, &g.group).await?);
    }
    Ok(Snapshot { topics, groups: described })
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The snapshot in Prometheus' text exposition format (version 0.0.4).
/// `scrapes` counts the scrapes served so far, this one included.
pub fn prometheus(s: &Snapshot, scrapes: u64) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, i64)>| {
        out += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (labels, value) in samples {
            out += &format!("{name}{labels} {value}\n");
        }
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
    family(
        "kafka_partition_latest_offset",
        "gauge",
        "Latest offset (high watermark) of a partition.",
        partitions(|p| p.high),
    );
    family(
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
    family("kafka_consumergroup_group_lag", "gauge", "Records of a partition the group has not committed.", lag);
    let per_group = |f: fn(&GroupDescription) -> i64| -> Vec<(String, i64)> {
        s.groups.iter().map(|g| (format!("{{group=\"{}\"}}", label(&g.group)), f(g))).collect()
    };
    family(
        "kafka_consumergroup_group_max_lag",
        "gauge",
        "The largest partition lag of the group.",
        per_group(|g| g.partitions.iter().map(|p| p.lag).max().unwrap_or(0)),
    );
    family(
        "kafka_consumergroup_group_sum_lag",
        "gauge",
        "The group's lag summed over its partitions.",
        per_group(|g| g.total_lag),
    );
    family(
        "chinook_monitor_scrapes_total",
        "counter",
        "Scrapes served by this chinook monitor.",
        vec![(String::new(), scrapes as i64)],
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
        };
        let text = prometheus(&s, 1);
        assert!(text.contains("# TYPE kafka_consumergroup_group_lag gauge\n"));
        assert!(text.contains(
            "kafka_consumergroup_group_lag{group=\"bill\\\"ing\",topic=\"customer_events\",partition=\"0\"} 3\n"
        ));
        assert!(text.contains("kafka_partition_earliest_offset{topic=\"customer_events\",partition=\"0\"} 2\n"));
        assert!(text.contains("chinook_monitor_scrapes_total 1\n"));
    }
}
