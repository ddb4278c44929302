//! Named fault points, switched on at run time, per application instance.
//!
//! Domain code calls `faults.check(point)?` at the places a workshop wants to break; each
//! domain crate names its points once, in its `faults` module (e.g.
//! `archlab_users::faults::CREATE_PROFILE`, `users.create_profile`). Tests switch a point on
//! to show that a failure there leaves nothing half-done.
//! The set is per instance (not global) so concurrent tests in one process do not interfere.

use crate::Error;
use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// A shared, cloneable set of enabled fault points.
#[derive(Clone, Default, Debug)]
pub struct Faults(Arc<RwLock<HashSet<String>>>);

impl Faults {
    /// Faults from a comma-separated list, e.g. `ARCHLAB_FAULTS=users.create_profile`.
    pub fn from_list(list: &str) -> Self {
        let f = Self::default();
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).for_each(|p| f.enable(p));
        f
    }

    /// Switch a point on.
    pub fn enable(&self, point: &str) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).insert(point.to_owned());
    }

    /// Switch a point off.
    pub fn disable(&self, point: &str) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).remove(point);
    }

    /// Fail with 503 when `point` is on.
    pub fn check(&self, point: &str) -> Result<(), Error> {
        if self.0.read().unwrap_or_else(|e| e.into_inner()).contains(point) {
            tracing::warn!(fault = point, "injected fault");
            return Err(Error::unavailable(point, "injected fault"));
        }
        Ok(())
    }
}
