//! `chinook monitor`: offsets and consumer lag, as snapshots or as Prometheus metrics.

use std::{net::SocketAddr, time::Duration};

use clap::Args;

use super::{ConnectionArgs, Outcome};
use crate::{
    exit,
    monitor::{self, History, View, status::Status},
    ui::{self, Ui},
};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook monitor                                 # a live dashboard on a terminal; q quits
  chinook monitor --once                          # one snapshot: lag per group and partition, offsets
  chinook monitor --interval 5s --format jsonl    # a snapshot every 5 s until Ctrl-C
  chinook monitor --prometheus 127.0.0.1:9464     # Prometheus metrics at http://127.0.0.1:9464/metrics

Statuses are Burrow's, judged per partition over the last --window samples: OK (lag was zero, or
is shrinking), WARN (committing, but lag grew at every sample), STALL (members there, offset not
moving, lag above zero), STOP (the same with no member left), REWIND (the offset went back); a
group is ERR when a partition is STALL, STOP or REWIND. docs/monitor.md explains each.
Metric names are kafka-lag-exporter's: kafka_consumergroup_group_lag{group,topic,partition},
kafka_consumergroup_group_offset, kafka_consumergroup_group_max_lag{group},
kafka_consumergroup_group_sum_lag{group}, kafka_partition_latest_offset{topic,partition},
kafka_partition_earliest_offset{topic,partition}; with chinook_consumergroup_status{group,status},
chinook_consumergroup_partition_status, chinook_broker_rejected_batches_total and
chinook_monitor_scrapes_total. A group shows once it has committed (the embedded broker lists
groups from their first commit).")]
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
    /// How many samples (snapshots, or scrapes with --prometheus) statuses and rates are judged over.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(2..))]
    pub window: u16,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

fn rate(r: Option<f64>) -> String {
    r.map_or("…".into(), |r| format!("{r:.1}"))
}

fn styled(status: Status) -> String {
    let name = status.name();
    match status {
        Status::Ok => console::style(name).green().to_string(),
        Status::Warn => console::style(name).yellow().to_string(),
        _ => console::style(name).red().bold().to_string(),
    }
}

/// The view for people: topics, groups and partitions, with rates, statuses and trends.
fn human(v: &View, window: usize) -> String {
    let mut out =
        format!("{} sample(s) over {:.1} s (statuses judged over the last {window})\n", v.samples, v.span_secs);
    let mut topics = ui::table(["topic", "partitions", "records", "in msg/s", "records per partition"]);
    for t in &v.throughput {
        let parts: Vec<String> = t.per_partition.iter().map(i64::to_string).collect();
        let total: i64 = t.per_partition.iter().sum();
        let (min, max) = (t.per_partition.iter().min().copied(), t.per_partition.iter().max().copied());
        let skew = match (min, max) {
            (Some(min), Some(max)) if total > 0 && t.per_partition.len() > 1 => {
                format!(" (skew {:.0}%)", (max - min) as f64 * 100.0 / (total as f64 / t.per_partition.len() as f64))
            }
            _ => String::new(),
        };
        topics.add_row([
            t.topic.clone(),
            t.per_partition.len().to_string(),
            total.to_string(),
            rate(t.in_per_sec),
            format!("{}{skew}", parts.join(" ")),
        ]);
    }
    out += &format!("{topics}\n");
    let dead: Vec<String> = v
        .throughput
        .iter()
        .filter(|t| t.dead_letters)
        .map(|t| format!("{} {} ({}/s)", t.topic, t.per_partition.iter().sum::<i64>(), rate(t.in_per_sec)))
        .collect();
    out += &format!(
        "dead letters: {} · rejected by the broker: {}\n",
        if dead.is_empty() { "no dead-letter topic".into() } else { dead.join(", ") },
        match v.rejected_batches {
            Some(n) => format!("{n} batch(es) ({}/s)", rate(v.rejected_per_sec)),
            None => "unknown (not a broker chinook started)".into(),
        }
    );
    if v.consumers.is_empty() {
        out += "no consumer group has committed yet\n";
        return out;
    }
    let mut groups = ui::table(["group", "status", "members", "lag", "committed msg/s", "lag trend"]);
    let mut partitions = ui::table(["group", "topic", "partition", "committed", "latest", "lag", "status"]);
    for (g, now) in v.consumers.iter().zip(&v.now.groups) {
        groups.add_row([
            g.group.clone(),
            styled(g.status),
            now.members.len().to_string(),
            now.total_lag.to_string(),
            rate(g.out_per_sec),
            ui::sparkline(&g.lag_trend),
        ]);
        for (p, status) in now.partitions.iter().zip(&g.partitions) {
            partitions.add_row([
                g.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                p.committed.map_or("-".into(), |c| c.to_string()),
                p.high.to_string(),
                p.lag.to_string(),
                styled(status.status),
            ]);
        }
    }
    out += &format!("{groups}\n{partitions}\n");
    out
}

/// On a terminal: `q` (or Esc) sets `stop`, read on a thread of its own.
fn quit_on_q(stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    std::thread::spawn(move || {
        let term = console::Term::stdout();
        while let Ok(key) = term.read_key() {
            if matches!(key, console::Key::Char('q') | console::Key::Char('Q') | console::Key::Escape) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        }
    });
}

pub async fn run(args: MonitorArgs, ui: Ui) -> Outcome {
    let context = args.conn.context()?;
    let conn = context.conn;
    let control = context.managed.as_ref().map(|m| m.control);
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
        monitor::serve(conn, control, args.window.into(), listener, stop).await?;
        return Ok(exit::INTERRUPTED);
    }
    let term = console::Term::stdout();
    let live = !args.once && term.is_term() && ui.format == ui::Format::Human;
    if live {
        quit_on_q(stop.clone());
    }
    let mut history = History::new(args.window.into());
    loop {
        let view = history.push(monitor::snapshot(&conn, control).await?);
        if live {
            // Redrawn in place: home, the new frame, then clear what the last one left below.
            let frame = format!(
                "chinook monitor · {} · every {} · q quits\n{}",
                conn.brokers,
                humantime::format_duration(args.interval),
                human(&view, args.window.into())
            );
            let _ = term.move_cursor_to(0, 0);
            let _ = term.write_str(&frame.replace('\n', "\x1b[K\n"));
            let _ = term.write_str("\x1b[J");
        } else {
            ui.emit(&view, || human(&view, args.window.into()));
        }
        if args.once {
            return Ok(exit::OK);
        }
        let until = tokio::time::Instant::now() + args.interval;
        while tokio::time::Instant::now() < until {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(if live { exit::OK } else { exit::INTERRUPTED });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
