//! The idempotent, append-only log that both simulated APIs record into.
//!
//! One mutex guards the key index, the in-memory records and the JSON-lines file together,
//! so "is this key new?" and "record it" are one step: twenty concurrent requests with the
//! same key produce one record, and the file holds records in the order they were accepted.
//! Each file write is one short append of one line; holding a blocking mutex across it is
//! fine at the rates a simulator sees, and never spans an `.await`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::error::{Error, Result};

/// What [`Ledger::accept`] did with a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome<Rec> {
    /// The key was new: this record was just created and logged.
    Created(Rec),
    /// The key was known with the same request: this is the record created the first time.
    Replayed(Rec),
}

/// Records of type `Rec`, each created by a request of type `Req` under an idempotency key.
pub(crate) struct Ledger<Req, Rec> {
    inner: Mutex<Inner<Req, Rec>>,
}

struct Inner<Req, Rec> {
    /// Every accepted record, in acceptance order.
    records: Vec<Rec>,
    /// Idempotency key → index into `records`, and the request that created it.
    by_key: HashMap<String, (usize, Req)>,
    /// Where each accepted record is also appended as one JSON line, if anywhere.
    file: Option<File>,
}

impl<Req: PartialEq, Rec: Clone + Serialize> Ledger<Req, Rec> {
    /// A ledger kept in memory only.
    pub(crate) fn in_memory() -> Self {
        Ledger { inner: Mutex::new(Inner { records: Vec::new(), by_key: HashMap::new(), file: None }) }
    }

    /// A ledger that also appends to `path` (created if missing, never truncated: records
    /// from earlier runs stay in the file; the in-memory part starts empty).
    pub(crate) fn with_file(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let ledger = Self::in_memory();
        ledger.lock().file = Some(file);
        Ok(ledger)
    }

    /// Records `create()` under `key`, unless `key` is known: then replays the record if
    /// `request` is the same as the first time, and refuses it otherwise.
    pub(crate) fn accept(&self, key: &str, request: Req, create: impl FnOnce() -> Rec) -> Result<Outcome<Rec>> {
        let mut inner = self.lock();
        if let Some((index, first)) = inner.by_key.get(key) {
            return if *first == request {
                Ok(Outcome::Replayed(inner.records[*index].clone()))
            } else {
                Err(Error::IdempotencyConflict)
            };
        }
        let record = create();
        if let Some(file) = inner.file.as_mut() {
            // Written before the in-memory insert: if the disk refuses, the caller gets a
            // 500 and nothing was accepted anywhere, so a retry is safe.
            let mut line = serde_json::to_vec(&record).map_err(std::io::Error::from)?;
            line.push(b'\n');
            file.write_all(&line)?;
        }
        let index = inner.records.len();
        inner.records.push(record.clone());
        inner.by_key.insert(key.to_owned(), (index, request));
        Ok(Outcome::Created(record))
    }

    /// The records for which `keep` holds, in acceptance order.
    pub(crate) fn list(&self, keep: impl Fn(&Rec) -> bool) -> Vec<Rec> {
        self.lock().records.iter().filter(|r| keep(r)).cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<Req, Rec>> {
        // Nothing panics while holding the lock, and the data stays consistent even if
        // something did, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_replays_and_other_request_conflicts() {
        let ledger: Ledger<u32, String> = Ledger::in_memory();
        let first = ledger.accept("k", 1, || "a".into()).unwrap();
        let again = ledger.accept("k", 1, || "b".into()).unwrap();
        assert_eq!(first, Outcome::Created("a".into()));
        assert_eq!(again, Outcome::Replayed("a".into()));
        assert!(matches!(ledger.accept("k", 2, || "c".into()), Err(Error::IdempotencyConflict)));
        assert_eq!(ledger.list(|_| true), vec!["a".to_owned()]);
    }
}
