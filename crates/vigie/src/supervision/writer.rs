//! The check state writer: its own task, so that the supervision task never waits for the
//! store to take a round's statuses.
//!
//! The supervision task hands it batches (the statuses to upsert, the checks to forget) once
//! the pipeline committed what they signalled. The queue holds one batch: while the writer is
//! busy the supervision task keeps its changes and hands them over with a later round, so a
//! check's latest status is what gets written, not every status it went through. The writer
//! takes what is queued (up to `BATCHES_PER_TRANSACTION` batches), keeps the last word per
//! check (a removal after an upsert forgets the check, an upsert after a removal writes it)
//! and writes it in one transaction (`Store::write_checks`, many rows per statement).
//!
//! A batch may carry `done`: it is told `true` once its statuses are in the store, `false`
//! when the attempt failed. A failed write is retried every second with what came meanwhile,
//! never dropped. The task ends when every sender is gone and what it held is written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::CheckRecord;
use crate::store::Store;

/// Batches merged into one transaction, at most.
const BATCHES_PER_TRANSACTION: usize = 4;

/// The wait before a failed write is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Statuses to write and checks to forget, from one round of the supervision task.
pub struct Batch {
    pub records: Vec<CheckRecord>,
    pub removed: Vec<String>,
    /// Told whether the write that took this batch succeeded.
    pub done: Option<oneshot::Sender<bool>>,
}

/// The last word on one check.
enum Pending {
    Put(Box<CheckRecord>),
    Remove,
}

/// Spawns the writer; returns its queue and its task.
pub fn start(store: Arc<Store>) -> (mpsc::Sender<Batch>, JoinHandle<()>) {
    let (sender, inbox) = mpsc::channel(1);
    (sender, tokio::spawn(run(store, inbox)))
}

async fn run(store: Arc<Store>, mut inbox: mpsc::Receiver<Batch>) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut waiting: Vec<oneshot::Sender<bool>> = Vec::new();
    loop {
        if pending.is_empty() {
            let Some(batch) = inbox.recv().await else {
                return;
            };
            take(batch, &mut pending, &mut waiting);
        }
        for _ in 1..BATCHES_PER_TRANSACTION {
            match inbox.try_recv() {
                Ok(batch) => take(batch, &mut pending, &mut waiting),
                Err(_) => break,
            }
        }
        let mut records = Vec::with_capacity(pending.len());
        let mut removed = Vec::new();
        for (id, last) in &pending {
            match last {
                Pending::Put(record) => records.push(&**record),
                Pending::Remove => removed.push(id.clone()),
            }
        }
        let result = store.write_checks(&records, &removed).await;
        let written = result.is_ok();
        for done in waiting.drain(..) {
            let _ = done.send(written);
        }
        match result {
            Ok(()) => pending.clear(),
            Err(error) => {
                tracing::error!(
                    error = %format!("{error:#}"),
                    checks = pending.len(),
                    "check states not written; retrying in a second"
                );
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Merges a batch into what is pending: the later word on a check wins.
fn take(
    batch: Batch,
    pending: &mut HashMap<String, Pending>,
    waiting: &mut Vec<oneshot::Sender<bool>>,
) {
    for id in batch.removed {
        pending.insert(id, Pending::Remove);
    }
    for record in batch.records {
        pending.insert(record.id.clone(), Pending::Put(Box::new(record)));
    }
    waiting.extend(batch.done);
}

#[cfg(test)]
mod tests {
    use vigie_core::check::{CheckConfig, CheckKind, CheckStatus};

    use super::*;
    use crate::store::scratch;

    fn record(check: &str, output: &str) -> CheckRecord {
        let mut status = CheckStatus::new(CheckKind::Service, CheckConfig::default());
        status.output = output.into();
        CheckRecord {
            id: format!("acme:srv:{check}"),
            client: "acme".into(),
            asset: "srv".into(),
            check: check.into(),
            kind: CheckKind::Service,
            probe: "tcp".into(),
            status,
            updated_ms: 1_000,
        }
    }

    fn batch(records: Vec<CheckRecord>, removed: &[&str]) -> Batch {
        Batch {
            records,
            removed: removed.iter().map(|id| id.to_string()).collect(),
            done: None,
        }
    }

    /// Batches queued together are merged with the later word winning: written after
    /// forgotten is written, forgotten after written is gone; `done` is told once written;
    /// what is held when the senders go is written before the task ends.
    #[tokio::test]
    async fn the_later_word_on_a_check_wins_and_nothing_held_is_lost() {
        let db = scratch::sqlite();
        let store = Arc::new(Store::open(&db.url).await.unwrap());
        let (writer, task) = start(store.clone());
        let (done, written) = oneshot::channel();
        writer
            .send(Batch {
                done: Some(done),
                ..batch(vec![record("ssh", "first"), record("disk", "first")], &[])
            })
            .await
            .unwrap();
        assert_eq!(written.await, Ok(true));
        writer
            .send(batch(vec![record("ping", "new")], &["acme:srv:ssh"]))
            .await
            .unwrap();
        writer
            .send(batch(
                vec![record("ssh", "back"), record("disk", "second")],
                &["acme:srv:ping"],
            ))
            .await
            .unwrap();
        drop(writer);
        task.await.unwrap();
        let stored: Vec<(String, String)> = store
            .load_checks()
            .await
            .unwrap()
            .into_iter()
            .map(|record| (record.id, record.status.output.into_string()))
            .collect();
        assert_eq!(
            stored,
            [
                ("acme:srv:disk".to_owned(), "second".to_owned()),
                ("acme:srv:ssh".to_owned(), "back".to_owned()),
            ]
        );
        store.close().await;
    }
}
