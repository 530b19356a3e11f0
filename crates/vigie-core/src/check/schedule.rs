//! When each check runs: a pure due-queue over epoch milliseconds, driven by the supervision
//! runtime at the edge (which owns the clock). Guards three promises:
//!
//! - **Even spread, no storm.** A check runs on the slots `k · interval + offset`, its offset a
//!   stable hash of its id (client, asset, check name) modulo its interval. Ten thousand checks
//!   of one interval spread over it evenly, whatever the moment the program started, so a start
//!   or a reload never fires them all at once.
//! - **Stable across restarts and reloads.** The offset depends only on the id and the interval:
//!   a restarted program, or a reload that leaves a check's interval as it was, runs it on the
//!   same slots as before (`apply_estate` keeps unchanged entries untouched, in flight or not).
//! - **The state machine decides the pace.** After a result, `reschedule` takes the
//!   `CheckEffect::NextCheckAt` of `CheckStatus::apply`: a retry (sooner than the interval, as
//!   in a soft state) runs exactly then; a regular next check goes back to its slot (the first
//!   one at least half an interval after the result), so lateness never accumulates into drift.
//!
//! A due check leaves the queue when `due` hands it out and comes back with `reschedule`: a
//! check is never handed out twice while it runs.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A check's identity: the client, the asset and the check's name (`host` for the asset's
/// host check). Written `client:asset:check`, which is also how the API names it.
///
/// One pointer wide: the supervision runtime keys several maps, its due-queue and its write
/// sets by it for every check of the estate (a million, at scale), and a clone is a reference
/// count. The names themselves are shared with the other checks of the client and the asset.
#[derive(Clone)]
pub struct CheckId(Arc<Parts>);

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
struct Parts {
    client: Arc<str>,
    asset: Arc<str>,
    check: Arc<str>,
}

/// The name of an asset's host check in its `CheckId`.
pub const HOST_CHECK_NAME: &str = "host";

impl CheckId {
    pub fn new(
        client: impl Into<Arc<str>>,
        asset: impl Into<Arc<str>>,
        check: impl Into<Arc<str>>,
    ) -> CheckId {
        CheckId(Arc::new(Parts {
            client: client.into(),
            asset: asset.into(),
            check: check.into(),
        }))
    }

    /// The host check of an asset.
    pub fn host(client: impl Into<Arc<str>>, asset: impl Into<Arc<str>>) -> CheckId {
        CheckId::new(client, asset, HOST_CHECK_NAME)
    }

    pub fn client(&self) -> &str {
        &self.0.client
    }

    pub fn asset(&self) -> &str {
        &self.0.asset
    }

    pub fn check(&self) -> &str {
        &self.0.check
    }

    /// The client's name, shared.
    pub fn client_arc(&self) -> &Arc<str> {
        &self.0.client
    }

    /// The asset's name, shared.
    pub fn asset_arc(&self) -> &Arc<str> {
        &self.0.asset
    }
}

impl PartialEq for CheckId {
    fn eq(&self, other: &CheckId) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for CheckId {}

impl std::hash::Hash for CheckId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for CheckId {
    fn partial_cmp(&self, other: &CheckId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CheckId {
    fn cmp(&self, other: &CheckId) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl fmt::Debug for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckId")
            .field("client", &self.0.client)
            .field("asset", &self.0.asset)
            .field("check", &self.0.check)
            .finish()
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<CheckId, D::Error> {
        Parts::deserialize(deserializer).map(|parts| CheckId(Arc::new(parts)))
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.0.client, self.0.asset, self.0.check)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a check id: expected client:asset:check")]
pub struct CheckIdError(pub String);

impl FromStr for CheckId {
    type Err = CheckIdError;

    fn from_str(text: &str) -> Result<CheckId, CheckIdError> {
        let mut parts = text.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(client), Some(asset), Some(check), None)
                if !client.is_empty() && !asset.is_empty() && !check.is_empty() =>
            {
                Ok(CheckId::new(client, asset, check))
            }
            _ => Err(CheckIdError(text.to_owned())),
        }
    }
}

/// Where in its interval a check runs: a stable hash (FNV-1a, the same on every platform and
/// in every version, unlike `std`'s randomly keyed hasher) of its id, modulo the interval.
pub fn schedule_offset(id: &CheckId, interval_ms: i64) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [id.client(), id.asset(), id.check()] {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let interval = interval_ms.max(1) as u64;
    (hash % interval) as i64
}

/// The first slot `k · interval + offset` at or after `time_ms`.
fn slot_at_or_after(time_ms: i64, offset_ms: i64, interval_ms: i64) -> i64 {
    let interval_ms = interval_ms.max(1);
    let slot = time_ms - time_ms.rem_euclid(interval_ms) + offset_ms;
    if slot >= time_ms {
        slot
    } else {
        slot.saturating_add(interval_ms)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// Milliseconds as `u32` (at most ~49 days; longer intervals are cut to that): the
    /// schedule keeps an entry per check, a million at scale.
    interval_ms: u32,
    offset_ms: u32,
    /// When it is (or, while handed out, was) due.
    due_ms: i64,
    /// In the queue; false between `due` and `reschedule`.
    queued: bool,
}

/// The due-queue of every scheduled check.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    entries: HashMap<CheckId, Entry>,
    queue: BTreeSet<(i64, CheckId)>,
}

impl Schedule {
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// Checks scheduled (queued or handed out).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, id: &CheckId) -> bool {
        self.entries.contains_key(id)
    }

    /// Makes the schedule hold exactly `checks` (each with its interval): a check already
    /// scheduled with the same interval keeps its slot and its due time, even while handed
    /// out; a new check, or one whose interval changed, is placed on its first slot at or
    /// after `now_ms`; a check no longer listed is dropped (a result coming back for it is
    /// ignored by `reschedule`).
    pub fn apply_estate(&mut self, checks: impl IntoIterator<Item = (CheckId, i64)>, now_ms: i64) {
        let mut entries = HashMap::with_capacity(self.entries.len());
        for (id, interval_ms) in checks {
            let interval_ms = interval_ms.clamp(1, i64::from(u32::MAX));
            match self.entries.remove(&id) {
                Some(entry) if i64::from(entry.interval_ms) == interval_ms => {
                    entries.insert(id, entry);
                }
                previous => {
                    if let Some(previous) = previous
                        && previous.queued
                    {
                        self.queue.remove(&(previous.due_ms, id.clone()));
                    }
                    let offset_ms = schedule_offset(&id, interval_ms);
                    let due_ms = slot_at_or_after(now_ms, offset_ms, interval_ms);
                    // One that was handed out comes back through `reschedule`.
                    let queued = previous.is_none_or(|previous| previous.queued);
                    if queued {
                        self.queue.insert((due_ms, id.clone()));
                    }
                    entries.insert(
                        id,
                        Entry {
                            // Both within `u32` by the clamp above.
                            interval_ms: interval_ms as u32,
                            offset_ms: offset_ms as u32,
                            due_ms,
                            queued,
                        },
                    );
                }
            }
        }
        for (id, entry) in self.entries.drain() {
            if entry.queued {
                self.queue.remove(&(entry.due_ms, id));
            }
        }
        self.entries = entries;
    }

    /// Hands out every check due at `now_ms`, earliest first; they leave the queue until
    /// `reschedule`.
    pub fn due(&mut self, now_ms: i64) -> Vec<CheckId> {
        let mut due = Vec::new();
        while let Some((due_ms, _)) = self.queue.first() {
            if *due_ms > now_ms {
                break;
            }
            let (_, id) = self
                .queue
                .pop_first()
                .expect("invariant: the first entry was just seen");
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.queued = false;
            }
            due.push(id);
        }
        due
    }

    /// When a check is due, or was due when `due` handed it out.
    pub fn due_at(&self, id: &CheckId) -> Option<i64> {
        self.entries.get(id).map(|entry| entry.due_ms)
    }

    /// The earliest due time in the queue.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.queue.first().map(|(due_ms, _)| *due_ms)
    }

    /// Puts a check back in the queue after a result at `now_ms` whose state machine asked
    /// for the next check at `next_check_at` (`CheckEffect::NextCheckAt`). Sooner than one
    /// interval away (a retry), it runs then; otherwise on its first slot at least half an
    /// interval after the result. Returns the new due time, `None` for an unknown check.
    pub fn reschedule(&mut self, id: &CheckId, now_ms: i64, next_check_at: i64) -> Option<i64> {
        let entry = self.entries.get_mut(id)?;
        if entry.queued {
            self.queue.remove(&(entry.due_ms, id.clone()));
        }
        let interval_ms = i64::from(entry.interval_ms);
        let due_ms = if next_check_at.saturating_sub(now_ms) < interval_ms {
            next_check_at
        } else {
            slot_at_or_after(
                next_check_at.saturating_sub(interval_ms / 2),
                i64::from(entry.offset_ms),
                interval_ms,
            )
        };
        entry.due_ms = due_ms;
        entry.queued = true;
        self.queue.insert((due_ms, id.clone()));
        Some(due_ms)
    }

    /// Brings a queued check forward to `at` if it is due later (a host check asked for at
    /// once because a check that depends on it failed, as Icinga checks a parent on demand).
    /// A handed-out check is left alone: it is running already. Returns whether it moved.
    pub fn hasten(&mut self, id: &CheckId, at: i64) -> bool {
        let Some(entry) = self.entries.get_mut(id) else {
            return false;
        };
        if !entry.queued || entry.due_ms <= at {
            return false;
        }
        self.queue.remove(&(entry.due_ms, id.clone()));
        entry.due_ms = at;
        self.queue.insert((at, id.clone()));
        true
    }

    /// Puts a handed-out check back on its next slot after `now_ms` without a result (it
    /// could not be run).
    pub fn skip(&mut self, id: &CheckId, now_ms: i64) -> Option<i64> {
        let interval_ms = i64::from(self.entries.get(id)?.interval_ms);
        self.reschedule(id, now_ms, now_ms.saturating_add(interval_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        CheckCommand, CheckConfig, CheckEffect, CheckKind, CheckState, CheckStatus,
    };
    use super::super::{PluginResult, StateType};
    use super::*;

    const MINUTE: i64 = 60_000;
    /// An arbitrary start, not aligned on anything.
    const START: i64 = 1_700_000_123_457;

    fn ids(count: usize) -> Vec<CheckId> {
        (0..count)
            .map(|n| {
                CheckId::new(
                    "acme",
                    format!("srv-{:05}", n / 10),
                    format!("svc-{}", n % 10),
                )
            })
            .collect()
    }

    fn schedule(checks: &[CheckId], interval_ms: i64, now_ms: i64) -> Schedule {
        let mut schedule = Schedule::new();
        schedule.apply_estate(checks.iter().map(|id| (id.clone(), interval_ms)), now_ms);
        schedule
    }

    #[test]
    fn check_ids_read_back_what_they_write() {
        let id = CheckId::new("acme-industrie", "lyo-erp-db01", "postgres");
        assert_eq!(id.to_string(), "acme-industrie:lyo-erp-db01:postgres");
        assert_eq!(id.to_string().parse::<CheckId>(), Ok(id));
        for bad in ["", "a:b", "a:b:c:d", "a::c", ":b:c"] {
            assert!(bad.parse::<CheckId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checks_spread_evenly_over_their_interval_from_the_start() {
        let checks = ids(10_000);
        let mut schedule = schedule(&checks, MINUTE, START);
        // Nothing is due before the start; every check is due exactly once in the first
        // interval; each tenth of the interval holds close to a tenth of them.
        assert!(schedule.due(START - 1).is_empty());
        let mut per_tenth = [0usize; 10];
        let mut seen = 0;
        for tenth in 0..10 {
            let end = START + (tenth + 1) * MINUTE / 10 - 1;
            let due = schedule.due(end);
            per_tenth[tenth as usize] = due.len();
            seen += due.len();
        }
        assert_eq!(seen, 10_000);
        for (tenth, count) in per_tenth.iter().enumerate() {
            assert!(
                (850..=1150).contains(count),
                "tenth {tenth} of the interval holds {count} checks: {per_tenth:?}"
            );
        }
    }

    #[test]
    fn the_first_due_times_do_not_depend_on_when_the_program_started() {
        let checks = ids(500);
        let mut first = schedule(&checks, MINUTE, START);
        let mut later = schedule(&checks, MINUTE, START + 7 * MINUTE + 1_234);
        first.due(START + MINUTE);
        later.due(START + 8 * MINUTE);
        for id in &checks {
            let a = first.due_at(id).unwrap();
            let b = later.due_at(id).unwrap();
            assert_eq!(a.rem_euclid(MINUTE), b.rem_euclid(MINUTE), "{id}");
            assert_eq!(a.rem_euclid(MINUTE), schedule_offset(id, MINUTE));
        }
    }

    #[test]
    fn a_reload_keeps_the_slots_of_unchanged_checks() {
        let checks = ids(100);
        let mut schedule = schedule(&checks, MINUTE, START);
        // Run a few, so that some are handed out when the reload comes.
        let handed_out = schedule.due(START + 20_000);
        assert!(!handed_out.is_empty());
        let before: HashMap<CheckId, i64> = checks
            .iter()
            .map(|id| (id.clone(), schedule.due_at(id).unwrap()))
            .collect();

        let changed = checks[0].clone();
        let removed = checks[1].clone();
        let added = CheckId::new("acme", "srv-new", "http");
        let mut reloaded: Vec<(CheckId, i64)> =
            checks[2..].iter().map(|id| (id.clone(), MINUTE)).collect();
        reloaded.push((changed.clone(), 5 * MINUTE));
        reloaded.push((added.clone(), MINUTE));
        let now = START + 30_000;
        schedule.apply_estate(reloaded, now);

        for id in &checks[2..] {
            assert_eq!(schedule.due_at(id), Some(before[id]), "{id} moved");
        }
        assert!(!schedule.contains(&removed));
        assert_eq!(
            schedule.due_at(&changed).unwrap().rem_euclid(5 * MINUTE),
            schedule_offset(&changed, 5 * MINUTE)
        );
        let added_due = schedule.due_at(&added).unwrap();
        assert!(added_due >= now && added_due < now + MINUTE);
        // Handed-out checks are not handed out again by the reload.
        let again = schedule.due(now);
        for id in &handed_out {
            assert!(!again.contains(id), "{id} handed out twice");
        }
        assert_eq!(schedule.len(), 100);
    }

    #[test]
    fn a_handed_out_check_comes_back_only_through_reschedule() {
        let id = CheckId::new("acme", "srv", "disk");
        let mut schedule = schedule(std::slice::from_ref(&id), MINUTE, START);
        let due = schedule.due_at(&id).unwrap();
        assert_eq!(schedule.due(due), vec![id.clone()]);
        assert!(schedule.due(due + 10 * MINUTE).is_empty());
        assert_eq!(schedule.next_due_ms(), None);
        schedule.reschedule(&id, due + 50, due + 50 + MINUTE);
        assert_eq!(
            schedule.next_due_ms(),
            Some(due + MINUTE),
            "back on its slot"
        );
        assert_eq!(
            schedule.reschedule(&CheckId::new("acme", "gone", "x"), due, due + 1),
            None
        );
    }

    #[test]
    fn a_late_or_slow_check_keeps_its_slot_without_drift() {
        let id = CheckId::new("acme", "srv", "http");
        let mut schedule = schedule(std::slice::from_ref(&id), MINUTE, START);
        let mut due = schedule.due_at(&id).unwrap();
        for lateness in [0, 900, 20_000, 29_000] {
            assert_eq!(schedule.due(due + lateness), vec![id.clone()]);
            let finished = due + lateness + 250;
            let next = schedule
                .reschedule(&id, finished, finished + MINUTE)
                .unwrap();
            assert_eq!(next, due + MINUTE, "after {lateness} ms late");
            due = next;
        }
        // Finishing more than half an interval late gives up the slot already missed.
        assert_eq!(schedule.due(due + 40_000), vec![id.clone()]);
        let finished = due + 40_000;
        assert_eq!(
            schedule.reschedule(&id, finished, finished + MINUTE),
            Some(due + 2 * MINUTE)
        );
    }

    fn result(state: CheckState) -> CheckCommand {
        CheckCommand::Result {
            result: PluginResult::new(state, format!("{} - test", state.as_str())),
            parent_down: false,
        }
    }

    fn next_check_at(effects: &[CheckEffect]) -> i64 {
        effects
            .iter()
            .find_map(|effect| match effect {
                CheckEffect::NextCheckAt(at) => Some(*at),
                _ => None,
            })
            .expect("a result always schedules the next check")
    }

    #[test]
    fn soft_states_retry_at_the_retry_interval_then_hard_states_return_to_the_slot() {
        let id = CheckId::new("acme", "srv", "ssh");
        let config = CheckConfig {
            max_check_attempts: 3,
            check_interval_ms: MINUTE,
            retry_interval_ms: 10_000,
            ..CheckConfig::default()
        };
        let mut status = CheckStatus::new(CheckKind::Service, config);
        let mut schedule = schedule(std::slice::from_ref(&id), MINUTE, START);
        let slot = schedule.due_at(&id).unwrap();
        let mut now = slot;
        let mut runs = Vec::new();
        for state in [
            CheckState::Critical,
            CheckState::Critical,
            CheckState::Critical,
            CheckState::Critical,
            CheckState::Ok,
        ] {
            assert_eq!(schedule.due(now), vec![id.clone()], "due at {now}");
            let finished = now + 40;
            let effects = status.apply(result(state), finished);
            runs.push((now - slot, status.state_type));
            now = schedule
                .reschedule(&id, finished, next_check_at(&effects))
                .unwrap();
        }
        assert_eq!(
            runs,
            [
                (0, StateType::Soft),
                (10_040, StateType::Soft),
                (20_080, StateType::Hard),
                (MINUTE, StateType::Hard),
                (2 * MINUTE, StateType::Hard),
            ],
            "two retries 10 s apart, then the regular slots"
        );
        assert_eq!(now, slot + 3 * MINUTE);
    }

    #[test]
    fn hasten_brings_a_queued_check_forward_but_never_a_running_one() {
        let id = CheckId::new("acme", "rtr", "host");
        let mut schedule = schedule(std::slice::from_ref(&id), MINUTE, START);
        let due = schedule.due_at(&id).unwrap();
        assert!(!schedule.hasten(&id, due + 1), "not later");
        assert!(schedule.hasten(&id, START));
        assert_eq!(schedule.due(START), vec![id.clone()]);
        assert!(!schedule.hasten(&id, START), "running: left alone");
        assert!(schedule.due(START + 10 * MINUTE).is_empty());
        // Back through a result, on its slot again.
        assert_eq!(
            schedule.reschedule(&id, START + 20, START + 20 + MINUTE),
            Some(due + if due - START < MINUTE / 2 { MINUTE } else { 0 })
        );
    }

    #[test]
    fn skip_puts_a_check_on_its_next_slot() {
        let id = CheckId::new("acme", "srv", "ssh");
        let mut schedule = schedule(std::slice::from_ref(&id), MINUTE, START);
        let due = schedule.due_at(&id).unwrap();
        schedule.due(due);
        assert_eq!(schedule.skip(&id, due + 5), Some(due + MINUTE));
    }
}
