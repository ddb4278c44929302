//! The state every handler shares: the knobs and the two logs.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::admin::SimConfig;
use crate::charges::{Charge, NewCharge};
use crate::emails::{Email, NewEmail};
use crate::error::Result;
use crate::ledger::Ledger;

/// Shared state of one simulator: cheap to clone, pass it to [`app`](crate::app).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    sim_config: Mutex<SimConfig>,
    charges: Ledger<NewCharge, Charge>,
    emails: Ledger<NewEmail, Email>,
}

impl AppState {
    /// A fresh simulator; with `log_dir` (created if missing) accepted charges and emails
    /// are also appended to `charges.jsonl` and `emails.jsonl` there.
    pub fn new(log_dir: Option<&Path>) -> Result<AppState> {
        let (charges, emails) = match log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (Ledger::with_file(&dir.join("charges.jsonl"))?, Ledger::with_file(&dir.join("emails.jsonl"))?)
            }
            None => (Ledger::in_memory(), Ledger::in_memory()),
        };
        Ok(AppState::from_ledgers(charges, emails))
    }

    fn from_ledgers(charges: Ledger<NewCharge, Charge>, emails: Ledger<NewEmail, Email>) -> Self {
        AppState { inner: Arc::new(Inner { sim_config: Mutex::new(SimConfig::default()), charges, emails }) }
    }

    /// The knobs as they are now.
    pub(crate) fn sim_config(&self) -> SimConfig {
        *self.inner.sim_config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the knobs with `change(current)` unless it fails, as one step.
    pub(crate) fn update_sim_config(&self, change: impl FnOnce(SimConfig) -> Result<SimConfig>) -> Result<SimConfig> {
        let mut current = self.inner.sim_config.lock().unwrap_or_else(PoisonError::into_inner);
        *current = change(*current)?;
        Ok(*current)
    }

    /// The log of charges.
    pub(crate) fn charges(&self) -> &Ledger<NewCharge, Charge> {
        &self.inner.charges
    }

    /// The log of emails.
    pub(crate) fn emails(&self) -> &Ledger<NewEmail, Email> {
        &self.inner.emails
    }
}

impl Default for AppState {
    /// A fresh simulator that keeps its log in memory only.
    fn default() -> Self {
        AppState::from_ledgers(Ledger::in_memory(), Ledger::in_memory())
    }
}
