//! Topic prefixes at the front door: what stands in for ACLs, which tansu
//! 0.6.0 does not have, on a broker started with `--users` (a class).
//!
//! Each user gets a *scope*: any topic (`*`), or the topics whose names start
//! with a prefix. The prefix comes from the users file's third column
//! (`user,password,prefix`), else from `--topic-prefix TEMPLATE` (default
//! `{user}.`, so `alice` may use `alice.orders`). A user may touch every
//! topic only when that is written down: `*` in the third column, or
//! `--topic-prefix '*'` for everyone.
//!
//! The door checks every request a restricted user sends before it reaches
//! the broker ([`Gate::check`]):
//! - requests that name topics are passed on only when every topic they name
//!   is in scope; otherwise the door answers the whole request itself, each
//!   topic in it with TOPIC_AUTHORIZATION_FAILED (29), and nothing reaches
//!   the broker (a request is refused whole: a partial answer would mean
//!   splitting the request and merging two answers, per request type);
//! - Metadata is the exception, answered in part: the topics in scope come
//!   from the broker, the others are answered 29, and a listing of all
//!   topics is cut down to the user's own ([`Gate::after`]); OffsetFetch
//!   for "all topics" of a group is filtered the same way;
//! - requests that name no topic (group membership, transactions,
//!   ApiVersions…) go through;
//! - anything else (a request type the door cannot check) closes the
//!   connection: nothing unchecked reaches the broker.
//!
//! Consumer group ids are not checked: see docs/security.md.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use tansu_sans_io::{
    Body, Frame, Header, add_partitions_to_txn_response as aptt, create_partitions_response as cp,
    create_topics_response as ct, delete_records_response as dr, delete_topics_response as dt,
    describe_configs_response as dc, fetch_response as fr, list_offsets_response as lo, metadata_response as md,
    offset_commit_response as oc, offset_delete_response as od, offset_fetch_response as of,
    offset_for_leader_epoch_response as ole, produce_response as pr, txn_offset_commit_response as toc,
};

use super::{adapter::Head, sasl::Users};

/// The template applied to users without a third column.
pub const DEFAULT_TEMPLATE: &str = "{user}.";
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
/// DescribeConfigs/AlterConfigs resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;

/// What topics one user may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Any,
    Prefix(String),
}

impl Scope {
    pub fn allows(&self, topic: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Prefix(p) => topic.starts_with(p.as_str()),
        }
    }

    /// `*` or the prefix, as written in the users file.
    pub fn label(&self) -> &str {
        match self {
            Scope::Any => "*",
            Scope::Prefix(p) => p,
        }
    }
}

/// The scopes of a broker's users, and the topic ids the door has seen.
#[derive(Debug, Default)]
pub struct Acl {
    scopes: BTreeMap<String, Scope>,
    /// Topic id → name, learnt from the Metadata answers the door relays
    /// (Fetch v13+ and DeleteTopics v6+ may name topics by id).
    ids: Mutex<HashMap<[u8; 16], String>>,
}

/// Whether `prefix` can start topic names (Kafka's legal characters).
fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() < 249
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Acl {
    /// Every user's scope: the third column, else `template` with `{user}`
    /// replaced (`*`: any topic). An error names the user, never a password.
    pub fn new(users: &Users, template: &str) -> Result<Self, String> {
        let mut scopes = BTreeMap::new();
        for user in users.names() {
            let (written, source) = match users.prefix(user) {
                Some(p) => (p.to_string(), "the users file's third column"),
                None => (template.replace("{user}", user), "--topic-prefix"),
            };
            let scope = if written == "*" {
                Scope::Any
            } else if valid_prefix(&written) {
                Scope::Prefix(written)
            } else {
                return Err(format!(
                    "user {user:?}: {written:?} (from {source}) is not a topic prefix: use letters, digits, `.`, `_` and `-`, or `*` for every topic"
                ));
            };
            scopes.insert(user.to_string(), scope);
        }
        // One student's prefix must not contain another's topics.
        for (a, sa) in &scopes {
            for (b, sb) in &scopes {
                if let (Scope::Prefix(pa), Scope::Prefix(pb)) = (sa, sb)
                    && pa != pb
                    && pb.starts_with(pa.as_str())
                {
                    return Err(format!(
                        "user {a:?}'s prefix {pa:?} also covers user {b:?}'s topics ({pb:?}); give one of them another prefix in the third column"
                    ));
                }
            }
        }
        Ok(Self { scopes, ids: Mutex::default() })
    }

    /// Each user and their scope, by name.
    pub fn scopes(&self) -> impl Iterator<Item = (&str, &Scope)> {
        self.scopes.iter().map(|(u, s)| (u.as_str(), s))
    }

    /// The gate for a connection `user` logged in on; None when the user may
    /// touch every topic.
    pub(super) fn gate(self: &Arc<Self>, user: &str) -> Option<Gate> {
        match self.scopes.get(user) {
            Some(Scope::Any) => None,
            Some(Scope::Prefix(p)) => Some(Gate { acl: self.clone(), user: user.to_string(), prefix: p.clone() }),
            // Not a user of the file (cannot happen: the door authenticated it): nothing.
            None => Some(Gate { acl: self.clone(), user: user.to_string(), prefix: "\u{0}".into() }),
        }
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], String>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One restricted user's connection.
pub(super) struct Gate {
    acl: Arc<Acl>,
    user: String,
    prefix: String,
}

/// What the door does with one request.
pub(super) enum Verdict {
    /// Pass this (the request, or a rewritten one) on; then the answer
    /// through [`Gate::after`].
    Forward(Vec<u8>, After),
    /// Refused: the door's own answer (None: the request takes none, acks=0).
    Answer(Option<Vec<u8>>),
    /// A request the door cannot check: close the connection.
    Close,
}

/// What to do with the broker's answer.
pub(super) enum After {
    Nothing,
    /// Keep the user's topics, add these as refused.
    Metadata(Vec<String>),
    /// Keep the user's topics.
    OffsetFetch,
}

/// Request types that name no topic, passed on as they are.
const TOPICLESS: [i16; 15] = [
    10, // FindCoordinator
    11, // JoinGroup
    12, // Heartbeat
    13, // LeaveGroup
    14, // SyncGroup
    15, // DescribeGroups
    16, // ListGroups
    18, // ApiVersions
    22, // InitProducerId
    25, // AddOffsetsToTxn
    26, // EndTxn
    42, // DeleteGroups
    60, // DescribeCluster
    71, // GetTelemetrySubscriptions
    72, // PushTelemetry
];

fn encode(body: Body, head: Head) -> Option<Vec<u8>> {
    Frame::response(Header::Response { correlation_id: head.correlation_id }, body, head.key, head.version)
        .ok()
        .map(|b| b.to_vec())
}

impl Gate {
    fn allows(&self, topic: &str) -> bool {
        topic.starts_with(self.prefix.as_str())
    }

    /// A topic named by id, when the door knows the id.
    fn named(&self, name: Option<&str>, id: Option<[u8; 16]>) -> Option<String> {
        match (name, id) {
            (Some(n), _) if !n.is_empty() => Some(n.to_string()),
            (_, Some(id)) => self.acl.ids().get(&id).cloned(),
            _ => None,
        }
    }

    /// Whether every topic is in scope (an unknown id is not); logs a refusal.
    fn all_allowed(&self, head: Head, topics: &[Option<String>]) -> bool {
        let outside: Vec<&str> = topics
            .iter()
            .filter(|t| !t.as_deref().is_some_and(|t| self.allows(t)))
            .map(|t| t.as_deref().unwrap_or("(an unknown topic id)"))
            .collect();
        if outside.is_empty() {
            return true;
        }
        eprintln!(
            "front door: refused {:?}'s request (api key {}) on {} (outside the prefix {:?})",
            self.user,
            head.key,
            outside.join(", "),
            self.prefix
        );
        false
    }

    fn message(&self) -> Option<String> {
        Some(format!("user {:?} may only use topics starting with {:?}", self.user, self.prefix))
    }

    /// The door's decision on one `request` (a whole frame).
    pub(super) fn check(&self, request: Vec<u8>, head: Head) -> Verdict {
        if TOPICLESS.contains(&head.key) {
            return Verdict::Forward(request, After::Nothing);
        }
        let Ok(Frame { header, body, .. }) = Frame::request_from_bytes(&request[..]) else {
            return Verdict::Close;
        };
        let pass = |request| Verdict::Forward(request, After::Nothing);
        let refuse = |body: Body| match encode(body, head) {
            Some(answer) => Verdict::Answer(Some(answer)),
            None => Verdict::Close,
        };
        const E: i16 = TOPIC_AUTHORIZATION_FAILED;
        match body {
            Body::ProduceRequest(r) => {
                let names: Vec<_> = r.topic_data.iter().flatten().map(|t| Some(t.name.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                if r.acks == 0 {
                    return Verdict::Answer(None);
                }
                let responses = r.topic_data.iter().flatten().map(|t| {
                    pr::TopicProduceResponse::default().name(t.name.clone()).partition_responses(Some(
                        t.partition_data
                            .iter()
                            .flatten()
                            .map(|p| {
                                pr::PartitionProduceResponse::default()
                                    .index(p.index)
                                    .error_code(E)
                                    .base_offset(-1)
                                    .log_append_time_ms(Some(-1))
                                    .log_start_offset(Some(-1))
                                    .record_errors(Some(Vec::new()))
                                    .error_message(self.message())
                                    .current_leader(None)
                            })
                            .collect(),
                    ))
                });
                refuse(Body::ProduceResponse(
                    pr::ProduceResponse::default()
                        .responses(Some(responses.collect()))
                        .throttle_time_ms(Some(0))
                        .node_endpoints(None),
                ))
            }
            Body::FetchRequest(r) => {
                let names: Vec<_> =
                    r.topics.iter().flatten().map(|t| self.named(t.topic.as_deref(), t.topic_id)).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let responses = r.topics.iter().flatten().map(|t| {
                    fr::FetchableTopicResponse::default().topic(t.topic.clone()).topic_id(t.topic_id).partitions(Some(
                        t.partitions
                            .iter()
                            .flatten()
                            .map(|p| {
                                fr::PartitionData::default()
                                    .partition_index(p.partition)
                                    .error_code(E)
                                    .high_watermark(-1)
                                    .last_stable_offset(Some(-1))
                                    .log_start_offset(Some(-1))
                                    .preferred_read_replica(Some(-1))
                            })
                            .collect(),
                    ))
                });
                refuse(Body::FetchResponse(
                    fr::FetchResponse::default()
                        .throttle_time_ms(Some(0))
                        .error_code(Some(0))
                        .session_id(Some(0))
                        .responses(Some(responses.collect()))
                        .node_endpoints(None),
                ))
            }
            Body::ListOffsetsRequest(r) => {
                let names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let topics = r.topics.iter().flatten().map(|t| {
                    lo::ListOffsetsTopicResponse::default().name(t.name.clone()).partitions(Some(
                        t.partitions
                            .iter()
                            .flatten()
                            .map(|p| {
                                lo::ListOffsetsPartitionResponse::default()
                                    .partition_index(p.partition_index)
                                    .error_code(E)
                                    .old_style_offsets(Some(Vec::new()))
                                    .timestamp(Some(-1))
                                    .offset(Some(-1))
                                    .leader_epoch(Some(-1))
                            })
                            .collect(),
                    ))
                });
                refuse(Body::ListOffsetsResponse(
                    lo::ListOffsetsResponse::default().throttle_time_ms(Some(0)).topics(Some(topics.collect())),
                ))
            }
            Body::MetadataRequest(mut r) => {
                let mut denied = Vec::new();
                if let Some(topics) = r.topics.as_mut() {
                    topics.retain(|t| match self.named(t.name.as_deref(), t.topic_id) {
                        Some(name) if !self.allows(&name) => {
                            denied.push(name);
                            false
                        }
                        _ => true,
                    });
                }
                if denied.is_empty() {
                    return Verdict::Forward(request, After::Metadata(denied));
                }
                self.all_allowed(head, &denied.iter().cloned().map(Some).collect::<Vec<_>>());
                match Frame::request(header, Body::MetadataRequest(r)) {
                    Ok(rewritten) => Verdict::Forward(rewritten.to_vec(), After::Metadata(denied)),
                    Err(_) => Verdict::Close,
                }
            }
            Body::OffsetCommitRequest(r) => {
                let names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let topics = r.topics.iter().flatten().map(|t| {
                    oc::OffsetCommitResponseTopic::default().name(t.name.clone()).partitions(Some(
                        t.partitions
                            .iter()
                            .flatten()
                            .map(|p| {
                                oc::OffsetCommitResponsePartition::default()
                                    .partition_index(p.partition_index)
                                    .error_code(E)
                            })
                            .collect(),
                    ))
                });
                refuse(Body::OffsetCommitResponse(
                    oc::OffsetCommitResponse::default().throttle_time_ms(Some(0)).topics(Some(topics.collect())),
                ))
            }
            Body::OffsetFetchRequest(r) => {
                let mut names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                for g in r.groups.iter().flatten() {
                    names.extend(g.topics.iter().flatten().map(|t| Some(t.name.clone())));
                }
                if self.all_allowed(head, &names) {
                    return Verdict::Forward(request, After::OffsetFetch);
                }
                let topics = r.topics.as_ref().map(|topics| {
                    topics
                        .iter()
                        .map(|t| {
                            of::OffsetFetchResponseTopic::default().name(t.name.clone()).partitions(Some(
                                t.partition_indexes
                                    .iter()
                                    .flatten()
                                    .map(|p| {
                                        of::OffsetFetchResponsePartition::default()
                                            .partition_index(*p)
                                            .committed_offset(-1)
                                            .committed_leader_epoch(Some(-1))
                                            .metadata(Some(String::new()))
                                            .error_code(E)
                                    })
                                    .collect(),
                            ))
                        })
                        .collect()
                });
                let groups = r.groups.as_ref().map(|groups| {
                    groups
                        .iter()
                        .map(|g| {
                            of::OffsetFetchResponseGroup::default().group_id(g.group_id.clone()).error_code(0).topics(
                                Some(
                                    g.topics
                                        .iter()
                                        .flatten()
                                        .map(|t| {
                                            of::OffsetFetchResponseTopics::default().name(t.name.clone()).partitions(
                                                Some(
                                                    t.partition_indexes
                                                        .iter()
                                                        .flatten()
                                                        .map(|p| {
                                                            of::OffsetFetchResponsePartitions::default()
                                                                .partition_index(*p)
                                                                .committed_offset(-1)
                                                                .committed_leader_epoch(-1)
                                                                .metadata(Some(String::new()))
                                                                .error_code(E)
                                                        })
                                                        .collect(),
                                                ),
                                            )
                                        })
                                        .collect(),
                                ),
                            )
                        })
                        .collect()
                });
                refuse(Body::OffsetFetchResponse(
                    of::OffsetFetchResponse::default()
                        .throttle_time_ms(Some(0))
                        .topics(topics)
                        .error_code(Some(0))
                        .groups(groups),
                ))
            }
            Body::CreateTopicsRequest(r) => {
                let names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let topics = r.topics.iter().flatten().map(|t| {
                    ct::CreatableTopicResult::default()
                        .name(t.name.clone())
                        .topic_id(Some([0; 16]))
                        .error_code(E)
                        .error_message(self.message())
                        .topic_config_error_code(None)
                        .num_partitions(Some(-1))
                        .replication_factor(Some(-1))
                        .configs(None)
                });
                refuse(Body::CreateTopicsResponse(
                    ct::CreateTopicsResponse::default().throttle_time_ms(Some(0)).topics(Some(topics.collect())),
                ))
            }
            Body::DeleteTopicsRequest(r) => {
                let mut named: Vec<(Option<String>, Option<[u8; 16]>)> =
                    r.topic_names.iter().flatten().map(|n| (Some(n.clone()), None)).collect();
                named.extend(r.topics.iter().flatten().map(|t| (t.name.clone(), Some(t.topic_id))));
                let names: Vec<_> = named.iter().map(|(n, id)| self.named(n.as_deref(), *id)).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let responses = named.into_iter().map(|(name, id)| {
                    dt::DeletableTopicResult::default()
                        .name(name)
                        .topic_id(Some(id.unwrap_or_default()))
                        .error_code(E)
                        .error_message(self.message())
                });
                refuse(Body::DeleteTopicsResponse(
                    dt::DeleteTopicsResponse::default().throttle_time_ms(Some(0)).responses(Some(responses.collect())),
                ))
            }
            Body::DeleteRecordsRequest(r) => {
                let names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let topics = r.topics.iter().flatten().map(|t| {
                    dr::DeleteRecordsTopicResult::default().name(t.name.clone()).partitions(Some(
                        t.partitions
                            .iter()
                            .flatten()
                            .map(|p| {
                                dr::DeleteRecordsPartitionResult::default()
                                    .partition_index(p.partition_index)
                                    .low_watermark(-1)
                                    .error_code(E)
                            })
                            .collect(),
                    ))
                });
                refuse(Body::DeleteRecordsResponse(
                    dr::DeleteRecordsResponse::default().throttle_time_ms(0).topics(Some(topics.collect())),
                ))
            }
            Body::OffsetForLeaderEpochRequest(r) => {
                let names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.topic.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let topics = r.topics.iter().flatten().map(|t| {
                    ole::OffsetForLeaderTopicResult::default().topic(t.topic.clone()).partitions(Some(
                        t.partitions
                            .iter()
                            .flatten()
                            .map(|p| {
                                ole::EpochEndOffset::default()
                                    .error_code(E)
                                    .partition(p.partition)
                                    .leader_epoch(Some(-1))
                                    .end_offset(-1)
                            })
                            .collect(),
                    ))
                });
                refuse(Body::OffsetForLeaderEpochResponse(
                    ole::OffsetForLeaderEpochResponse::default()
                        .throttle_time_ms(Some(0))
                        .topics(Some(topics.collect())),
                ))
            }
            Body::AddPartitionsToTxnRequest(r) => {
                let mut names: Vec<_> = r.v_3_and_below_topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                for t in r.transactions.iter().flatten() {
                    names.extend(t.topics.iter().flatten().map(|t| Some(t.name.clone())));
                }
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                if r.transactions.is_some() {
                    return Verdict::Close; // v4+: a broker-to-broker form
                }
                let results = r.v_3_and_below_topics.iter().flatten().map(|t| {
                    aptt::AddPartitionsToTxnTopicResult::default().name(t.name.clone()).results_by_partition(Some(
                        t.partitions
                            .iter()
                            .flatten()
                            .map(|p| {
                                aptt::AddPartitionsToTxnPartitionResult::default()
                                    .partition_index(*p)
                                    .partition_error_code(E)
                            })
                            .collect(),
                    ))
                });
                refuse(Body::AddPartitionsToTxnResponse(
                    aptt::AddPartitionsToTxnResponse::default()
                        .throttle_time_ms(0)
                        .error_code(None)
                        .results_by_transaction(None)
                        .results_by_topic_v_3_and_below(Some(results.collect())),
                ))
            }
            Body::TxnOffsetCommitRequest(r) => {
                let names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let topics = r.topics.iter().flatten().map(|t| {
                    toc::TxnOffsetCommitResponseTopic::default().name(t.name.clone()).partitions(Some(
                        t.partitions
                            .iter()
                            .flatten()
                            .map(|p| {
                                toc::TxnOffsetCommitResponsePartition::default()
                                    .partition_index(p.partition_index)
                                    .error_code(E)
                            })
                            .collect(),
                    ))
                });
                refuse(Body::TxnOffsetCommitResponse(
                    toc::TxnOffsetCommitResponse::default().throttle_time_ms(0).topics(Some(topics.collect())),
                ))
            }
            Body::DescribeConfigsRequest(r) => {
                let names: Vec<_> = r
                    .resources
                    .iter()
                    .flatten()
                    .filter(|c| c.resource_type == TOPIC_RESOURCE)
                    .map(|c| Some(c.resource_name.clone()))
                    .collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let results = r.resources.iter().flatten().map(|c| {
                    dc::DescribeConfigsResult::default()
                        .error_code(E)
                        .error_message(self.message())
                        .resource_type(c.resource_type)
                        .resource_name(c.resource_name.clone())
                        .configs(Some(Vec::new()))
                });
                refuse(Body::DescribeConfigsResponse(
                    dc::DescribeConfigsResponse::default().throttle_time_ms(0).results(Some(results.collect())),
                ))
            }
            Body::AlterConfigsRequest(r) => {
                let resources: Vec<(i8, String)> =
                    r.resources.iter().flatten().map(|c| (c.resource_type, c.resource_name.clone())).collect();
                self.alter_configs(head, resources, request)
            }
            Body::IncrementalAlterConfigsRequest(r) => {
                let resources: Vec<(i8, String)> =
                    r.resources.iter().flatten().map(|c| (c.resource_type, c.resource_name.clone())).collect();
                self.alter_configs(head, resources, request)
            }
            Body::CreatePartitionsRequest(r) => {
                let names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let results = r.topics.iter().flatten().map(|t| {
                    cp::CreatePartitionsTopicResult::default()
                        .name(t.name.clone())
                        .error_code(E)
                        .error_message(self.message())
                });
                refuse(Body::CreatePartitionsResponse(
                    cp::CreatePartitionsResponse::default().throttle_time_ms(0).results(Some(results.collect())),
                ))
            }
            Body::OffsetDeleteRequest(r) => {
                let names: Vec<_> = r.topics.iter().flatten().map(|t| Some(t.name.clone())).collect();
                if self.all_allowed(head, &names) {
                    return pass(request);
                }
                let topics = r.topics.iter().flatten().map(|t| {
                    od::OffsetDeleteResponseTopic::default().name(t.name.clone()).partitions(Some(
                        t.partitions
                            .iter()
                            .flatten()
                            .map(|p| {
                                od::OffsetDeleteResponsePartition::default()
                                    .partition_index(p.partition_index)
                                    .error_code(E)
                            })
                            .collect(),
                    ))
                });
                refuse(Body::OffsetDeleteResponse(
                    od::OffsetDeleteResponse::default()
                        .error_code(0)
                        .throttle_time_ms(0)
                        .topics(Some(topics.collect())),
                ))
            }
            _ => {
                eprintln!(
                    "front door: closed {:?}'s connection: api key {} is not checked for topic prefixes",
                    self.user, head.key
                );
                Verdict::Close
            }
        }
    }

    /// AlterConfigs and IncrementalAlterConfigs (same answer): topics in
    /// scope only, and no broker or other resource.
    fn alter_configs(&self, head: Head, resources: Vec<(i8, String)>, request: Vec<u8>) -> Verdict {
        let names: Vec<_> = resources.iter().map(|(t, n)| (*t == TOPIC_RESOURCE).then(|| n.clone())).collect();
        if self.all_allowed(head, &names) {
            return Verdict::Forward(request, After::Nothing);
        }
        let responses: Vec<_> = resources
            .into_iter()
            .map(|(resource_type, resource_name)| {
                tansu_sans_io::alter_configs_response::AlterConfigsResourceResponse::default()
                    .error_code(if resource_type == TOPIC_RESOURCE {
                        TOPIC_AUTHORIZATION_FAILED
                    } else {
                        CLUSTER_AUTHORIZATION_FAILED
                    })
                    .error_message(self.message())
                    .resource_type(resource_type)
                    .resource_name(resource_name)
            })
            .collect();
        let body = if head.key == 33 {
            Body::AlterConfigsResponse(
                tansu_sans_io::alter_configs_response::AlterConfigsResponse::default()
                    .throttle_time_ms(0)
                    .responses(Some(responses)),
            )
        } else {
            let responses = responses
                .into_iter()
                .map(|r| {
                    tansu_sans_io::incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .error_code(r.error_code)
                        .error_message(r.error_message)
                        .resource_type(r.resource_type)
                        .resource_name(r.resource_name)
                })
                .collect();
            Body::IncrementalAlterConfigsResponse(
                tansu_sans_io::incremental_alter_configs_response::IncrementalAlterConfigsResponse::default()
                    .throttle_time_ms(0)
                    .responses(Some(responses)),
            )
        };
        match encode(body, head) {
            Some(answer) => Verdict::Answer(Some(answer)),
            None => Verdict::Close,
        }
    }

    /// The broker's `response` to a request passed on with `after`: cut down
    /// to the user's topics (None: the answer could not be read; close).
    pub(super) fn after(&self, response: Vec<u8>, head: Head, after: After) -> Option<Vec<u8>> {
        match after {
            After::Nothing => Some(response),
            After::Metadata(denied) => {
                let Frame { header, body: Body::MetadataResponse(mut m), .. } =
                    Frame::response_from_bytes(&response[..], head.key, head.version).ok()?
                else {
                    return None;
                };
                let topics = m.topics.get_or_insert_with(Vec::new);
                topics.retain(|t| t.name.as_deref().is_some_and(|n| self.allows(n)));
                {
                    let mut ids = self.acl.ids();
                    for t in topics.iter() {
                        if let (Some(id), Some(name)) = (t.topic_id, &t.name)
                            && id != [0; 16]
                        {
                            ids.insert(id, name.clone());
                        }
                    }
                }
                topics.extend(denied.into_iter().map(|name| {
                    md::MetadataResponseTopic::default()
                        .error_code(TOPIC_AUTHORIZATION_FAILED)
                        .name(Some(name))
                        .topic_id(Some([0; 16]))
                        .is_internal(Some(false))
                        .partitions(Some(Vec::new()))
                        .topic_authorized_operations(Some(i32::MIN))
                }));
                Frame::response(header, Body::MetadataResponse(m), head.key, head.version).ok().map(|b| b.to_vec())
            }
            After::OffsetFetch => {
                let Frame { header, body: Body::OffsetFetchResponse(mut o), .. } =
                    Frame::response_from_bytes(&response[..], head.key, head.version).ok()?
                else {
                    return None;
                };
                if let Some(topics) = o.topics.as_mut() {
                    topics.retain(|t| self.allows(&t.name));
                }
                for g in o.groups.iter_mut().flatten() {
                    if let Some(topics) = g.topics.as_mut() {
                        topics.retain(|t| self.allows(&t.name));
                    }
                }
                Frame::response(header, Body::OffsetFetchResponse(o), head.key, head.version).ok().map(|b| b.to_vec())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tansu_sans_io::{
        MetadataRequest, ProduceRequest, metadata_request::MetadataRequestTopic, produce_request::TopicProduceData,
    };

    use super::*;

    fn acl(text: &str, template: &str) -> Result<Arc<Acl>, String> {
        Acl::new(&Users::parse(text).unwrap(), template).map(Arc::new)
    }

    #[test]
    fn scopes_come_from_the_third_column_else_the_template() {
        let a = acl("alice,x\nbob,y,team1.\ncarol,z,*\n", DEFAULT_TEMPLATE).unwrap();
        let scopes: Vec<_> = a.scopes().map(|(u, s)| (u, s.label())).collect();
        assert_eq!(scopes, [("alice", "alice."), ("bob", "team1."), ("carol", "*")]);
        assert!(a.gate("carol").is_none(), "`*` is unrestricted");
        assert!(a.gate("alice").is_some());
        let everyone = acl("alice,x\nbob,y\n", "*").unwrap();
        assert!(everyone.gate("alice").is_none());
        let e = acl("al,x\nal.ice,y\n", DEFAULT_TEMPLATE).unwrap_err();
        assert!(e.contains("\"al.\"") && e.contains("al.ice"), "{e}");
        let e = acl("a@b,x\n", DEFAULT_TEMPLATE).unwrap_err();
        assert!(e.contains("a@b") && !e.contains(",x"), "{e}");
        assert!(acl("bob,y,bad prefix\n", DEFAULT_TEMPLATE).is_err());
    }

    fn request(key: i16, version: i16, body: Body) -> Vec<u8> {
        let header = Header::Request { api_key: key, api_version: version, correlation_id: 9, client_id: None };
        Frame::request(header, body).unwrap().to_vec()
    }

    #[test]
    fn produce_outside_the_prefix_is_answered_by_the_door() {
        let gate = acl("alice,x\n", DEFAULT_TEMPLATE).unwrap().gate("alice").unwrap();
        for version in [3, 7, 9] {
            let produce = |topic: &str| {
                let data = TopicProduceData::default().name(topic.into()).partition_data(Some(Vec::new()));
                request(
                    0,
                    version,
                    Body::ProduceRequest(ProduceRequest::default().acks(-1).topic_data(Some(vec![data]))),
                )
            };
            let head = Head::of(&produce("alice.orders")).unwrap();
            assert!(matches!(gate.check(produce("alice.orders"), head), Verdict::Forward(..)));
            let Verdict::Answer(Some(answer)) = gate.check(produce("bob.orders"), head) else { panic!("forwarded") };
            let Frame { body: Body::ProduceResponse(r), .. } =
                Frame::response_from_bytes(&answer[..], 0, version).unwrap()
            else {
                panic!()
            };
            assert_eq!(r.responses.unwrap()[0].name, "bob.orders");
        }
    }

    #[test]
    fn metadata_is_cut_down_to_the_users_topics() {
        let gate = acl("alice,x\n", DEFAULT_TEMPLATE).unwrap().gate("alice").unwrap();
        let version = 9;
        let topics = vec![
            MetadataRequestTopic::default().name(Some("alice.orders".into())),
            MetadataRequestTopic::default().name(Some("bob.orders".into())),
        ];
        let frame = request(
            3,
            version,
            Body::MetadataRequest(
                MetadataRequest::default()
                    .topics(Some(topics))
                    .allow_auto_topic_creation(Some(false))
                    .include_cluster_authorized_operations(Some(false))
                    .include_topic_authorized_operations(Some(false)),
            ),
        );
        assert!(Frame::request_from_bytes(&frame[..]).is_ok());
        let head = Head::of(&frame).unwrap();
        let Verdict::Forward(rewritten, After::Metadata(denied)) = gate.check(frame, head) else { panic!() };
        assert_eq!(denied, ["bob.orders"]);
        let Frame { body: Body::MetadataRequest(r), .. } = Frame::request_from_bytes(&rewritten[..]).unwrap() else {
            panic!()
        };
        assert_eq!(r.topics.unwrap().len(), 1, "only alice's topic reaches the broker");
        // The broker's answer for all topics: bob's goes, the refused one is added.
        let topic = |n: &str| {
            md::MetadataResponseTopic::default()
                .name(Some(n.into()))
                .is_internal(Some(false))
                .partitions(Some(Vec::new()))
                .topic_authorized_operations(Some(0))
        };
        let answer = md::MetadataResponse::default()
            .throttle_time_ms(Some(0))
            .brokers(Some(Vec::new()))
            .cluster_id(Some("c".into()))
            .controller_id(Some(111))
            .cluster_authorized_operations(Some(0))
            .topics(Some(["alice.orders", "bob.orders", "customer_events"].map(topic).to_vec()));
        let answer =
            Frame::response(Header::Response { correlation_id: 9 }, Body::MetadataResponse(answer), 3, version)
                .unwrap();
        let cut = gate.after(answer.to_vec(), head, After::Metadata(vec!["bob.orders".into()])).unwrap();
        let Frame { body: Body::MetadataResponse(m), .. } = Frame::response_from_bytes(&cut[..], 3, version).unwrap()
        else {
            panic!()
        };
        let listed: Vec<_> = m.topics.unwrap().into_iter().map(|t| (t.name.unwrap(), t.error_code)).collect();
        assert_eq!(listed, [("alice.orders".to_string(), 0), ("bob.orders".to_string(), 29)]);
    }

    #[test]
    fn unknown_request_types_close_the_connection() {
        let gate = acl("alice,x\n", DEFAULT_TEMPLATE).unwrap().gate("alice").unwrap();
        // DescribeLogDirs (35) lists every topic's directories.
        let frame = request(35, 1, Body::DescribeLogDirsRequest(Default::default()));
        assert!(matches!(gate.check(frame.clone(), Head::of(&frame).unwrap()), Verdict::Close));
    }
}
