//! Named fault points in the domain code, set at run time, per application instance.
//!
//! Domain code calls `faults.check(point).await?` at the places a workshop wants to break.
//! Every point is declared once, in [`points`] (the registry), and each domain crate names
//! its own in its `faults` module (e.g. `archlab_users::faults::CREATE_PROFILE`,
//! `users.create_profile`). A point holds a [`Fault`]: any of fail a share of calls (503),
//! add latency, burn CPU, leak memory, abort the process.
//!
//! Points are set at start-up from `ARCHLAB_FAULTS` (each named point fails every call) and
//! at run time through the admin endpoint ([`admin`]), which listens on loopback only. A
//! name outside the registry is refused, with the registry's names, in both places.
//!
//! Nothing is set in the common case, and then a check is one atomic load: the map of
//! settings is only read once some point is set.
//!
//! Each point counts the calls that reached it and those it failed (`reached`, `failed` in
//! `GET /admin/faults`), so an experiment can read how much load a dependency saw, and how
//! much of it the fault turned away, as the callee counts it.
//!
//! The set is per instance (not global) so concurrent tests in one process do not interfere.
//!
//! # Layout
//! - `points`: the registry, [`Point`] and [`points::ALL`].
//! - `kinds`: [`Fault`], what a point does, and its bounds.
//! - `admin`: `GET/PUT/DELETE /admin/faults[/{point}]` and its loopback-only listener.

pub mod admin;
mod kinds;
pub mod points;

pub use kinds::{Fault, MAX_CPU_MS, MAX_LATENCY_MS, MAX_LEAK_BYTES};
pub use points::Point;

use crate::{Error, ErrorKind};
use kinds::Leaks;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The error codes of the fault points and their admin endpoint (docs/operations.md).
pub mod codes {
    crate::error_codes! {
        /// 404: a name that is not in the registry; the message lists the registry.
        UNKNOWN_FAULT_POINT = "unknown_fault_point";
        /// 422: a registered point this process never reaches (it lives in another
        /// service); the message lists the points here.
        FAULT_POINT_NOT_HERE = "fault_point_not_here";
        /// 422: a setting out of its bounds, or one that sets nothing.
        INVALID_FAULT = "invalid_fault";
    }
}

/// A shared, cloneable set of fault settings for the points one process reaches.
#[derive(Clone)]
pub struct Faults(Arc<Inner>);

struct Inner {
    /// The registered points this process reaches.
    here: Vec<&'static Point>,
    /// Calls counted at each point of `here`, in the same order.
    counts: Vec<Counts>,
    /// True while some point is set: the only thing a check reads otherwise.
    armed: AtomicBool,
    set: RwLock<HashMap<&'static str, Fault>>,
    leaks: Leaks,
}

/// What one point has seen since the process started.
#[derive(Debug, Default)]
struct Counts {
    reached: AtomicU64,
    failed: AtomicU64,
}

/// One point as `GET /admin/faults` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointState {
    /// Its registered name.
    pub name: &'static str,
    /// Where it sits.
    pub what: &'static str,
    /// Whether this process reaches it.
    pub here: bool,
    /// Its setting, if any.
    pub fault: Option<Fault>,
    /// Calls that reached it in this process since it started, fault or not.
    pub reached: u64,
    /// Of those, the calls its fault failed (503 or abort).
    pub failed: u64,
}

impl Default for Faults {
    /// Every registered point, as the monolith (which hosts every domain) has them.
    fn default() -> Self {
        Self::hosting(&points::ALL.map(|p| p.name))
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("here", &self.0.here.iter().map(|p| p.name).collect::<Vec<_>>())
            .field("set", &*self.0.set.read().unwrap_or_else(|e| e.into_inner()))
            .finish()
    }
}

impl Faults {
    /// Nothing set, for a process that reaches the points `here` (each domain's
    /// `faults::ALL`, together for the monolith).
    ///
    /// # Panics
    /// On a name outside the registry: the domain crate and [`points`] disagree, a bug.
    pub fn hosting(here: &[&str]) -> Self {
        let here = here
            .iter()
            .map(|name| points::find(name).unwrap_or_else(|| panic!("{name} is not in archlab_kernel::faults::points")))
            .collect();
        let here: Vec<&'static Point> = here;
        let counts = here.iter().map(|_| Counts::default()).collect();
        Self(Arc::new(Inner {
            here,
            counts,
            armed: AtomicBool::new(false),
            set: RwLock::default(),
            leaks: Leaks::default(),
        }))
    }

    /// Whether this process reaches `point`.
    pub fn is_here(&self, point: &str) -> bool {
        self.0.here.iter().any(|p| p.name == point)
    }

    /// The registered point `name`, if this process reaches it; 404 `unknown_fault_point`
    /// (listing the registry) or 422 `fault_point_not_here` (listing the points here).
    pub fn resolve(&self, name: &str) -> Result<&'static Point, Error> {
        let Some(point) = points::find(name) else {
            return Err(unknown(name));
        };
        if !self.is_here(name) {
            let here = self.0.here.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
            return Err(Error::new(
                ErrorKind::Unprocessable,
                codes::FAULT_POINT_NOT_HERE,
                format!("fault point `{name}` is not reached in this process; points here: {here}"),
            ));
        }
        Ok(point)
    }

    /// Set `point` to `fault`, replacing what it had.
    pub fn set(&self, point: &str, fault: Fault) -> Result<(), Error> {
        let point = self.resolve(point)?;
        let fault = fault.validated()?;
        let mut set = self.0.set.write().unwrap_or_else(|e| e.into_inner());
        set.insert(point.name, fault);
        self.0.armed.store(true, Ordering::Release);
        tracing::warn!(fault = point.name, setting = ?fault, "fault point set");
        Ok(())
    }

    /// Clear `point`; clearing a point that has nothing set is fine.
    pub fn clear(&self, point: &str) -> Result<(), Error> {
        let point = self.resolve(point)?;
        let mut set = self.0.set.write().unwrap_or_else(|e| e.into_inner());
        if set.remove(point.name).is_some() {
            tracing::info!(fault = point.name, "fault point cleared");
        }
        self.0.armed.store(!set.is_empty(), Ordering::Release);
        Ok(())
    }

    /// Clear every point.
    pub fn clear_all(&self) {
        let mut set = self.0.set.write().unwrap_or_else(|e| e.into_inner());
        set.clear();
        self.0.armed.store(false, Ordering::Release);
    }

    /// Make every call reaching `point` fail with 503 (what tests switch on).
    ///
    /// # Panics
    /// On a point this process does not reach: a bug in the test.
    pub fn enable(&self, point: &str) {
        self.set(point, Fault::fail_always()).unwrap_or_else(|e| panic!("enable {point}: {e}"));
    }

    /// Clear `point`, if it is one this process reaches.
    pub fn disable(&self, point: &str) {
        let _ = self.clear(point);
    }

    /// Set every point named in `list` (comma-separated, as `ARCHLAB_FAULTS`) to fail every
    /// call. A registered point this process does not reach is skipped, since one list is
    /// given to every process of a build; a name outside the registry refuses the whole
    /// list, before anything is set.
    pub fn set_list(&self, list: &str) -> Result<(), Error> {
        let names = parse_list(list)?;
        for name in names {
            match self.is_here(name) {
                true => self.set(name, Fault::fail_always())?,
                false => tracing::info!(fault = name, "fault point of another process; not reached here"),
            }
        }
        Ok(())
    }

    /// Every registered point, whether it is here, and its setting.
    pub fn states(&self) -> Vec<PointState> {
        let set = self.0.set.read().unwrap_or_else(|e| e.into_inner());
        points::ALL
            .iter()
            .map(|p| {
                let counts = self.counts(p.name);
                PointState {
                    name: p.name,
                    what: p.what,
                    here: counts.is_some(),
                    fault: set.get(p.name).copied(),
                    reached: counts.map_or(0, |c| c.reached.load(Ordering::Relaxed)),
                    failed: counts.map_or(0, |c| c.failed.load(Ordering::Relaxed)),
                }
            })
            .collect()
    }

    /// Bytes the leak kind has kept so far.
    pub fn leaked_bytes(&self) -> u64 {
        self.0.leaks.bytes()
    }

    /// Apply what is set at `point`: wait, burn, leak, abort, or fail with 503 — or, in the
    /// common case of nothing set anywhere, return at once after one atomic load.
    pub async fn check(&self, point: &str) -> Result<(), Error> {
        let counts = self.counts(point);
        if let Some(counts) = counts {
            counts.reached.fetch_add(1, Ordering::Relaxed);
        }
        if !self.0.armed.load(Ordering::Acquire) {
            return Ok(());
        }
        // Copied out, so no lock is held across the wait.
        let fault = self.0.set.read().unwrap_or_else(|e| e.into_inner()).get(point).copied();
        let outcome = match fault {
            Some(fault) => fault.apply(point, &self.0.leaks).await,
            None => Ok(()),
        };
        if let (Err(_), Some(counts)) = (&outcome, counts) {
            counts.failed.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// The counts of `point`, if this process reaches it.
    fn counts(&self, point: &str) -> Option<&Counts> {
        let index = self.0.here.iter().position(|p| p.name == point)?;
        self.0.counts.get(index)
    }
}

/// 404 `unknown_fault_point`, naming every registered point.
fn unknown(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        codes::UNKNOWN_FAULT_POINT,
        format!("no fault point `{name}`; known points: {}", points::names()),
    )
}

/// The registered names in a comma-separated list (blanks and empty entries skipped), or
/// the first unknown one refused.
fn parse_list(list: &str) -> Result<Vec<&'static str>, Error> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| points::find(name).map(|p| p.name).ok_or_else(|| unknown(name)))
        .collect()
}

/// `ARCHLAB_FAULTS` checked against the registry as it is parsed, so a misspelt point stops
/// the start with the list of known ones (a `clap` value parser).
pub fn checked_list(list: &str) -> Result<String, String> {
    parse_list(list).map(|_| list.to_owned()).map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users_only() -> Faults {
        Faults::hosting(&[points::USERS_CREATE_PROFILE.name])
    }

    #[test]
    fn unknown_names_are_refused_with_the_registry() {
        let faults = Faults::default();
        let err = faults.set("users.create_profil", Fault::fail_always()).unwrap_err();
        assert_eq!((err.kind, &*err.code), (ErrorKind::NotFound, codes::UNKNOWN_FAULT_POINT));
        for p in points::ALL {
            assert!(err.message.contains(p.name), "{} missing from: {}", p.name, err.message);
        }
        assert_eq!(faults.clear("nope").unwrap_err().code, codes::UNKNOWN_FAULT_POINT);
        assert!(!faults.0.armed.load(Ordering::Relaxed), "a refused setting armed the checks");
    }

    #[test]
    fn a_point_of_another_process_is_refused_with_the_points_here() {
        let faults = users_only();
        let err = faults.set(points::PAYMENTS_RECORD.name, Fault::fail_always()).unwrap_err();
        assert_eq!((err.kind, &*err.code), (ErrorKind::Unprocessable, codes::FAULT_POINT_NOT_HERE));
        assert!(err.message.ends_with("points here: users.create_profile"), "{}", err.message);
        let states = faults.states();
        assert_eq!(states.len(), points::ALL.len());
        assert_eq!(states.iter().filter(|s| s.here).map(|s| s.name).collect::<Vec<_>>(), ["users.create_profile"]);
    }

    #[test]
    fn the_start_up_list_refuses_unknown_names_and_skips_other_processes_points() {
        let faults = users_only();
        let err = faults.set_list("users.create_profile, nope").unwrap_err();
        assert_eq!(err.code, codes::UNKNOWN_FAULT_POINT);
        assert!(err.message.contains("`nope`") && err.message.contains("payments.record"), "{}", err.message);
        assert!(faults.states().iter().all(|s| s.fault.is_none()), "a refused list set something");

        faults.set_list(" payments.record, ,users.create_profile ,").expect("registered names");
        let set: Vec<_> = faults.states().into_iter().filter_map(|s| Some((s.name, s.fault?))).collect();
        assert_eq!(set, [("users.create_profile", Fault::fail_always())]);
        assert!(checked_list("").is_ok() && checked_list("auth.create_credentials").is_ok());
        assert!(
            checked_list("auth.create_credentials,x").unwrap_err().contains("known points: auth.create_credentials")
        );
    }

    #[tokio::test]
    async fn checks_follow_the_settings_and_clones_share_them() {
        let faults = Faults::default();
        assert!(faults.check("users.create_profile").await.is_ok());
        faults.enable("users.create_profile");
        let err = faults.check("users.create_profile").await.expect_err("a share of 1 fails every call");
        assert_eq!(err, Error::unavailable("users.create_profile", "injected fault"));
        assert!(faults.check("payments.record").await.is_ok(), "another point failed");
        assert!(faults.check("not.registered").await.is_ok(), "a check of an unset name must pass");

        let clone = faults.clone();
        assert!(clone.check("users.create_profile").await.is_err());
        assert!(
            Faults::default().check("users.create_profile").await.is_ok(),
            "another instance saw this one's settings"
        );

        faults.set("users.create_profile", Fault { fail_share: Some(0.0), ..Fault::default() }).unwrap();
        assert!(faults.check("users.create_profile").await.is_ok(), "a share of 0 failed");
        clone.disable("users.create_profile");
        assert!(!faults.0.armed.load(Ordering::Relaxed), "nothing set, yet checks still read the map");
        faults.enable("payments.record");
        faults.enable("notifications.record");
        faults.clear("payments.record").unwrap();
        assert!(faults.0.armed.load(Ordering::Relaxed), "one point is still set");
        faults.clear_all();
        assert!(faults.check("notifications.record").await.is_ok());
        assert!(faults.states().iter().all(|s| s.fault.is_none()));
    }

    #[tokio::test]
    async fn each_point_counts_the_calls_it_saw_and_those_it_failed() {
        let faults = users_only();
        let state = |f: &Faults| {
            let s = f.states().into_iter().find(|s| s.name == "users.create_profile").unwrap();
            (s.reached, s.failed)
        };
        for _ in 0..3 {
            faults.check("users.create_profile").await.unwrap();
        }
        assert_eq!(state(&faults), (3, 0), "calls with nothing set must be counted as reached, not failed");
        faults.enable("users.create_profile");
        for _ in 0..2 {
            assert!(faults.check("users.create_profile").await.is_err());
        }
        faults.set("users.create_profile", Fault { latency_ms: Some(1), ..Fault::default() }).unwrap();
        faults.check("users.create_profile").await.unwrap();
        assert_eq!(state(&faults), (6, 2), "only the calls the fault failed count as failed");
        faults.check("payments.record").await.unwrap();
        let elsewhere = faults.states().into_iter().find(|s| s.name == "payments.record").unwrap();
        assert_eq!((elsewhere.here, elsewhere.reached), (false, 0), "a point of another process counted a call");
    }

    #[tokio::test]
    async fn latency_holds_the_call_and_then_lets_it_through() {
        let faults = Faults::default();
        faults.set("payments.record", Fault { latency_ms: Some(100), ..Fault::default() }).unwrap();
        let start = std::time::Instant::now();
        faults.check("payments.record").await.expect("latency alone does not fail");
        assert!(start.elapsed() >= std::time::Duration::from_millis(100), "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn a_leaking_point_keeps_its_bytes_per_call() {
        let faults = Faults::default();
        faults.set("users.create_profile", Fault { leak_bytes: Some(1000), ..Fault::default() }).unwrap();
        for _ in 0..3 {
            faults.check("users.create_profile").await.unwrap();
        }
        assert_eq!(faults.leaked_bytes(), 3000);
        faults.clear_all();
        faults.check("users.create_profile").await.unwrap();
        assert_eq!(faults.leaked_bytes(), 3000, "a leak is kept after its point is cleared, and no more added");
    }
}
