//! Every fault point of the domain crates, declared once.
//!
//! A point is a place in domain code that calls `faults.check(point).await?`. This table is
//! the registry: what `ARCHLAB_FAULTS` and the admin endpoint accept, and what a refusal
//! lists. Each domain crate names its own points from here in its `faults` module
//! (`archlab_users::faults::CREATE_PROFILE` is [`USERS_CREATE_PROFILE`]`.name`) and lists
//! them in its `faults::ALL`, which is what a process hosting that domain reaches; the
//! monolith's tests check that the domains' lists together are exactly [`ALL`].

/// One fault point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// `<domain>.<step>`, e.g. `users.create_profile`.
    pub name: &'static str,
    /// Where it sits and what failing there shows.
    pub what: &'static str,
}

/// The first write of a signup, in both builds.
pub const AUTH_CREATE_CREDENTIALS: Point =
    Point { name: "auth.create_credentials", what: "before the credentials row of a signup is written" };

/// A profile's rows are written, not yet committed.
pub const USERS_CREATE_PROFILE: Point =
    Point { name: "users.create_profile", what: "after a profile's rows are written and before they commit" };

/// A profile is about to be read: the read path every profile request takes, which the
/// remote clients retry (a retry storm's target).
pub const USERS_GET_PROFILE: Point =
    Point { name: "users.get_profile", what: "before a profile is read (a read the remote clients retry)" };

/// A payment was charged, its row not yet committed.
pub const PAYMENTS_RECORD: Point =
    Point { name: "payments.record", what: "after the provider charged a payment and before its row commits" };

/// Before anything of a notification is recorded or sent.
pub const NOTIFICATIONS_DELIVER: Point = Point {
    name: "notifications.deliver",
    what: "at the start of every delivery, before anything is recorded or sent",
};

/// The email went out, nothing is recorded yet.
pub const NOTIFICATIONS_RECORD: Point =
    Point { name: "notifications.record", what: "after the email went out and before the notification is recorded" };

/// Every fault point, in the order they are listed.
pub const ALL: [Point; 6] = [
    AUTH_CREATE_CREDENTIALS,
    USERS_CREATE_PROFILE,
    USERS_GET_PROFILE,
    PAYMENTS_RECORD,
    NOTIFICATIONS_DELIVER,
    NOTIFICATIONS_RECORD,
];

/// The registered point called `name`.
pub fn find(name: &str) -> Option<&'static Point> {
    ALL.iter().find(|p| p.name == name)
}

/// Every registered name, comma-separated: what a refusal lists.
pub fn names() -> String {
    ALL.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_spelled_domain_dot_step() {
        let mut seen = std::collections::HashSet::new();
        for p in ALL {
            assert!(seen.insert(p.name), "{} twice", p.name);
            let (domain, step) = p.name.split_once('.').expect("domain.step");
            let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            assert!(word(domain) && word(step), "{}", p.name);
            assert!(!p.what.is_empty());
        }
        assert_eq!(find("users.create_profile"), Some(&USERS_CREATE_PROFILE));
        assert_eq!(find("users.create"), None);
        assert_eq!(find(""), None);
        assert!(names().starts_with("auth.create_credentials, users.create_profile"), "{}", names());
    }
}
