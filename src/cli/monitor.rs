//! `chinook monitor`: offsets and consumer lag, as snapshots or as Prometheus metrics.

use std::{net::SocketAddr, time::Duration};

use clap::Args;

use super::{ConnectionArgs, Outcome};
use crate::{
    exit,
    monitor::{self, Snapshot},
    ui::{self, Ui},
};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook monitor --once                          # one snapshot: lag per group and partition, offsets
  chinook monitor --interval 5s                   # a snapshot every 5 s until Ctrl-C
  chinook monitor --prometheus 127.0.0.1:9464     # Prometheus metrics at http://127.0.0.1:9464/metrics

Metric names are kafka-lag-exporter's: kafka_consumergroup_group_lag{group,topic,partition},
kafka_consumergroup_group_max_lag{group}, kafka_consumergroup_group_sum_lag{group},
kafka_partition_latest_offset{topic,partition}, kafka_partition_earliest_offset{topic,partition};
chinook_monitor_scrapes_total counts scrapes. A group shows once it has committed (the embedded
broker lists groups from their first commit).")]
pub struct MonitorArgs {
    /// Serve Prometheus metrics on this address (loopback unless you say otherwise).
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<SocketAddr>,
    /// Print one snapshot and exit.
    #[arg(long, conflicts_with = "prometheus")]
    pub once: bool,
    /// Time between snapshots.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub interval: Duration,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

fn human(s: &Snapshot) -> String {
    let mut lag = ui::table(["group", "topic", "partition", "committed", "latest", "lag"]);
    for g in &s.groups {
        for p in &g.partitions {
            lag.add_row([
                g.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                p.committed.map_or("-".into(), |c| c.to_string()),
                p.high.to_string(),
                p.lag.to_string(),
            ]);
        }
    }
    let mut topics = ui::table(["topic", "partitions", "records", "earliest..latest"]);
    for t in &s.topics {
        let ranges: Vec<String> = t.partitions.iter().map(|p| format!("{}..{}", p.low, p.high)).collect();
        topics.add_row([t.name.clone(), t.partitions.len().to_string(), t.records().to_string(), ranges.join(" ")]);
    }
    let groups = if s.groups.is_empty() { "no consumer group has committed yet".to_string() } else { lag.to_string() };
    format!("{groups}\n{topics}")
}

pub async fn run(args: MonitorArgs, ui: Ui) -> Outcome {
    let conn = args.conn.context()?.conn;
    use tokio::signal::unix::SignalKind;
    let stop = super::stop_on(&[SignalKind::interrupt(), SignalKind::terminate()])?;
    if let Some(addr) = args.prometheus {
        conn.probe().await?;
        let listener = monitor::bind(addr).await?;
        if !addr.ip().is_loopback() {
            ui.note(format!(
                "⚠ serving beyond this machine ({addr}): anyone who can reach it sees your topics and groups"
            ));
        }
        ui.note(format!("serving metrics at http://{addr}/metrics; Ctrl-C stops"));
        monitor::serve(conn, listener, stop).await?;
        return Ok(exit::INTERRUPTED);
    }
    let term = console::Term::stdout();
    loop {
        let s = monitor::snapshot(&conn).await?;
        if !args.once && term.is_term() && ui.format == ui::Format::Human {
            let _ = term.clear_screen();
        }
        ui.emit(&s, || human(&s));
        if args.once {
            return Ok(exit::OK);
        }
        let until = tokio::time::Instant::now() + args.interval;
        while tokio::time::Instant::now() < until {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(exit::INTERRUPTED);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
