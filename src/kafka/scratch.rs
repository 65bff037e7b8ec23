//! Scratch topics: the temporary topics that lab checks and `break` scenarios
//! write to, so nothing they send ever lands in a student's own topics. Each
//! name carries a run id (with this process's id) and is deleted again by
//! [`Scratch::remove`]; Ctrl-C clean-up finds them by that prefix.

use super::{
    Connection, KafkaError, admin,
    topics::{self, TopicPlan},
};

/// Prefix of every scratch topic.
pub const PREFIX: &str = "chinook.";

/// Temporary topics created for one run.
#[derive(Debug)]
pub struct Scratch {
    pub names: Vec<String>,
}

impl Scratch {
    /// Creates `chinook.<owner>.<run id><suffix>` for each (suffix, partitions),
    /// with no schema: e.g. `create(conn, "break.poison", &[("", 1), (".dlq", 1)])`.
    pub async fn create(conn: &Connection, owner: &str, topics: &[(&str, i32)]) -> Result<Self, KafkaError> {
        let run = crate::events::new_id("run");
        let plan: Vec<TopicPlan> = topics
            .iter()
            .map(|(suffix, partitions)| {
                TopicPlan::plain(format!("{PREFIX}{owner}.{run}{suffix}"), *partitions, "scratch topic")
            })
            .collect();
        admin::create_topics(conn, &plan, false).await?;
        Ok(Self { names: plan.into_iter().map(|t| t.name).collect() })
    }

    /// Creates one topic `chinook.<owner>.<run id>.schema.<of>` of one
    /// partition, bound to lab topic `of`'s schema: the embedded broker
    /// validates its values against `of`'s registry file (see
    /// [`topics::schema_lender`]), Bufstream gets the topic configs.
    pub async fn create_bound(conn: &Connection, owner: &str, of: &str, bufstream: bool) -> Result<Self, KafkaError> {
        let planned = crate::labs::topic_plan()
            .into_iter()
            .find(|t| t.name == of && t.value_type.is_some())
            .ok_or_else(|| KafkaError::NoTopic { topic: of.into() })?;
        let run = crate::events::new_id("run");
        let name = topics::borrowing_schema(&format!("{PREFIX}{owner}.{run}"), of);
        let plan = [TopicPlan { name, partitions: 1, purpose: "scratch topic".into(), ..planned }];
        admin::create_topics(conn, &plan, bufstream).await?;
        let [plan] = plan;
        Ok(Self { names: vec![plan.name] })
    }

    /// The first (often the only) topic.
    pub fn topic(&self) -> &str {
        &self.names[0]
    }

    /// Deletes the topics (best effort: a broker that went away keeps them).
    pub async fn remove(self, conn: &Connection) {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let _ = admin::delete_topics(conn, &names).await;
    }
}

/// Whether `name` is a scratch topic that process `pid` made: one of its
/// dot-separated parts is a run id (`run-<time>-<pid>-<n>`, see
/// [`crate::events::new_id`]) with that pid. Shared stand-ins
/// (`chinook.check.customer_events`) carry no run id and are never matched.
pub fn made_by(name: &str, pid: u32) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let pid = format!("{pid:x}");
    rest.split('.').any(|part| {
        let fields: Vec<&str> = part.split('-').collect();
        matches!(fields.as_slice(), ["run", time, p, n]
            if !time.is_empty() && *p == pid && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Creates (if missing) and names the schema-bound stand-in of lab topic `of`,
/// `chinook.check.<of>`: the broker enforces the same schema on it (the
/// embedded broker's registry has a file for it; Bufstream gets the topic
/// configs). It is kept between runs, as several checks may use it at once.
pub async fn stand_in(conn: &Connection, of: &str, bufstream: bool) -> Result<String, KafkaError> {
    let planned = crate::labs::topic_plan()
        .into_iter()
        .find(|t| t.name == of)
        .ok_or_else(|| KafkaError::NoTopic { topic: of.into() })?;
    let plan = [TopicPlan { name: topics::check_topic(of), partitions: 1, ..planned }];
    admin::create_topics(conn, &plan, bufstream).await?;
    Ok(plan[0].name.to_string())
}

#[cfg(test)]
mod tests {
    use super::made_by;

    #[test]
    fn a_scratch_topic_is_matched_by_the_pid_in_its_run_id_only() {
        let pid = 0x1a2b;
        assert!(made_by("chinook.break.poison.run-18f3c-1a2b-0", pid));
        assert!(made_by("chinook.break.poison.run-18f3c-1a2b-0.dlq", pid));
        assert!(made_by("chinook.check.framed.run-18f3c-1a2b-12", pid), "chinook.check.… too");
        assert!(made_by("chinook.bench.run-1-1a2b-3.schema.customer_events", pid));
        assert!(!made_by("chinook.break.poison.run-18f3c-1a2c-0", pid), "another process's");
        assert!(!made_by("chinook.break.poison.run-1a2b-18f3c-0", pid), "the pid field, not the time");
        assert!(!made_by("chinook.check.customer_events", pid), "the shared stand-in stays");
        assert!(!made_by("mine.run-18f3c-1a2b-0", pid), "only chinook's scratch topics");
        assert!(!made_by("chinook.run-18f3c-1a2b-x", pid));
        assert!(!made_by("", pid));
    }

    #[test]
    fn a_run_id_made_here_names_this_process() {
        let name = format!("chinook.break.x.{}", crate::events::new_id("run"));
        assert!(made_by(&name, std::process::id()), "{name}");
    }
}
