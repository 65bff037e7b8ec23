//! A correction to the consumer-group state tansu 0.6.0 writes, applied in
//! our storage layer (the coordinator persists every change through
//! `Storage::update_group` and, when told its copy is outdated, reloads the
//! state it is given and retries the request).
//!
//! tansu's LeaveGroup, while a group is forming, removes the member but keeps
//! it as the group's leader. Every later member then joins as a follower of
//! a leader that is gone, and its SyncGroup is answered REBALANCE_IN_PROGRESS
//! forever: a consumer group restarted after its consumers stopped can hang.
//! We remember the state last written per group; when a request arrives
//! based on a state whose leader is no longer a member, we write that state
//! back without the leader and answer "outdated", so tansu replays the
//! request on the corrected state and elects the next member to join.

use std::collections::HashMap;

use tansu_storage::{GroupDetail, GroupState, Storage, UpdateError, Version};

use super::storage::Corrected;

/// The state last written per group, with its version.
pub type Written = HashMap<String, (GroupDetail, Version)>;

/// `detail` with its forming leader dropped if that leader left the group.
fn without_departed_leader(detail: &GroupDetail) -> Option<GroupDetail> {
    match &detail.state {
        GroupState::Forming { leader: Some(leader), protocol_type, protocol_name }
            if !detail.members.contains_key(leader) =>
        {
            let mut fixed = detail.clone();
            fixed.state = GroupState::Forming {
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                leader: None,
            };
            Some(fixed)
        }
        _ => None,
    }
}

impl<S: Storage> Corrected<S> {
    /// `update_group`, with the departed-leader correction.
    pub(super) async fn update_group_corrected(
        &self,
        group_id: &str,
        detail: GroupDetail,
        version: Option<Version>,
    ) -> Result<Version, UpdateError<GroupDetail>> {
        let stale = version.as_ref().and_then(|v| {
            let written = self.written();
            let (previous, at) = written.get(group_id)?;
            (at == v).then(|| without_departed_leader(previous)).flatten()
        });
        if let Some(fixed) = stale {
            let at = self.inner.update_group(group_id, fixed.clone(), version).await?;
            self.written().insert(group_id.to_string(), (fixed.clone(), at.clone()));
            return Err(UpdateError::Outdated { current: Box::new(fixed), version: at });
        }
        let at = self.inner.update_group(group_id, detail.clone(), version).await?;
        self.written().insert(group_id.to_string(), (detail, at.clone()));
        Ok(at)
    }

    /// Forgets what was written for deleted groups.
    pub(super) fn forget_groups(&self, group_ids: &[String]) {
        let mut written = self.written();
        group_ids.iter().for_each(|id| _ = written.remove(id));
    }

    fn written(&self) -> std::sync::MutexGuard<'_, Written> {
        // A poisoned lock only means another request panicked mid-update; the map is still usable.
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forming(leader: Option<&str>, members: &[&str]) -> GroupDetail {
        GroupDetail {
            members: members.iter().map(|m| (m.to_string(), Default::default())).collect(),
            state: GroupState::Forming {
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                leader: leader.map(str::to_string),
            },
            ..GroupDetail::default()
        }
    }

    #[test]
    fn only_a_forming_leader_that_left_is_dropped() {
        let fixed = without_departed_leader(&forming(Some("a"), &["b"])).expect("a left");
        assert!(matches!(fixed.state, GroupState::Forming { leader: None, .. }));
        assert_eq!(fixed.members.len(), 1);
        assert!(without_departed_leader(&forming(Some("a"), &["a", "b"])).is_none());
        assert!(without_departed_leader(&forming(None, &["b"])).is_none());
    }
}
