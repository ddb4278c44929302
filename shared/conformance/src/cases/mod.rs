//! Every conformance case, one file per section of the API, and the
//! [`conformance_tests!`](crate::conformance_tests) macro that lists them.
//!
//! A case is `pub async fn name<T: Target>(t: &T)` and panics, with the request and the answer
//! in the message, when the deployment strays from docs/api.md. Cases never assume a fresh
//! database: each one signs up its own users with unique e-mails, so they can run concurrently
//! against one shared deployment. Every case is re-exported here, so the macro and callers
//! name it `cases::<name>` whichever file holds it. When adding a case, add its name to the
//! macro below at the same place (sections in Layout order, each in file order); a unit test
//! fails if the two disagree.
//!
//! # Layout
//!
//! The sections, in the order the macro lists their cases:
//! - `signup`: `POST /api/auth/signup`, and the welcome notification it causes.
//! - `bodies`: the `Content-Type`, malformed-JSON and object-shape rules of every JSON endpoint.
//! - `login`: `POST /api/auth/login` and `POST /api/auth/logout`.
//! - `authentication`: 401 on every protected route without a valid bearer token.
//! - `users`: `GET`/`PATCH /api/users/me`, `GET /api/users/{id}`.
//! - `payments`: `POST /api/payments` and its idempotency, `GET /api/payments[/{id}]`.
//! - `notifications`: `GET /api/notifications` and the receipts purchases cause.
//! - `edge`: `/health`, `/ready`, unknown routes, wrong methods.
//! - `paths`: every route in every non-canonical spelling, sent raw, is 400 `invalid_path`.

mod authentication;
mod bodies;
mod edge;
mod login;
mod notifications;
mod paths;
mod payments;
mod signup;
mod users;

pub use authentication::*;
pub use bodies::*;
pub use edge::*;
pub use login::*;
pub use notifications::*;
pub use paths::*;
pub use payments::*;
pub use signup::*;
pub use users::*;

/// Expands to one `#[test]` per conformance case, each building its own target with `setup`.
///
/// `setup` is a path to an `async fn() -> impl Target` in the calling crate. Optional
/// attributes after it are put on every generated test, e.g.
/// `conformance_tests!(setup, #[ignore = "needs a running gateway"]);`. Each test runs on a
/// multi-threaded tokio runtime with two workers, like
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path $(, #[$attr:meta])* $(,)?) => {
        $crate::conformance_tests!(@each $setup, [$(#[$attr])*];
            // BEGIN CASES (every `pub async fn` of the sections, in Layout order, each in file order)
            signup_returns_201_with_user_id_and_token,
            signup_token_reads_own_profile_with_defaults,
            signup_duplicate_email_is_409,
            signup_invalid_email_is_422,
            signup_password_length_rules,
            signup_invalid_name_is_422,
            signup_missing_field_is_422,
            signup_mistyped_field_is_422,
            signup_unknown_field_is_422,
            signup_rejected_input_creates_no_account,
            signup_accepts_json_content_type_with_charset,
            signup_body_over_64_kib_is_413,
            signup_sends_exactly_one_welcome_notification,
            json_body_without_json_content_type_is_415,
            malformed_json_body_is_400,
            json_array_for_an_object_is_422,
            login_returns_token_and_future_expiry,
            login_wrong_password_is_401,
            login_unknown_email_is_401,
            login_email_is_case_insensitive,
            login_invalid_body_is_422,
            logout_revokes_the_token,
            logout_keeps_other_sessions,
            missing_authorization_is_401,
            garbled_token_is_401,
            empty_bearer_token_is_401,
            wrong_auth_scheme_is_401,
            patch_me_updates_name_and_preferences,
            patch_me_empty_changes_nothing,
            patch_me_invalid_name_is_422,
            patch_me_unknown_field_is_422,
            patch_me_mistyped_field_is_422,
            get_user_by_own_id_is_200,
            get_user_by_other_id_is_404,
            get_user_by_non_uuid_is_422,
            purchase_returns_201_payment,
            purchase_accepts_each_currency_and_amount_bounds,
            purchase_without_idempotency_key_is_400,
            purchase_with_unusable_idempotency_key_is_400,
            purchase_invalid_amount_is_422,
            purchase_invalid_currency_is_422,
            purchase_unknown_field_is_422,
            purchase_without_token_is_401,
            purchase_replay_returns_same_payment_and_charges_once,
            purchase_replay_with_reordered_body_is_a_replay,
            purchase_same_key_different_body_is_422,
            idempotency_keys_are_scoped_per_user,
            concurrent_identical_purchases_charge_once,
            list_payments_newest_first_own_only,
            get_payment_returns_own_payment,
            get_payment_of_other_user_is_404,
            get_payment_non_uuid_is_422,
            purchase_sends_exactly_one_receipt,
            notifications_are_own_only,
            health_is_ok,
            ready_is_ready,
            unknown_route_is_404,
            wrong_method_is_405,
            non_canonical_paths_are_400_invalid_path,
            path_traversal_reads_no_other_users_profile,
            // END CASES
        );
    };
    (@each $setup:path, $attrs:tt; $($case:ident,)*) => {
        $( $crate::conformance_tests!(@one $setup, $attrs, $case); )*
    };
    (@one $setup:path, [$(#[$attr:meta])*], $case:ident) => {
        $(#[$attr])*
        #[test]
        fn $case() {
            $crate::__run(async {
                let t = $setup().await;
                $crate::cases::$case(&t).await;
            });
        }
    };
}

#[cfg(test)]
mod tests {
    /// Each section file under its module's name, in the order of the Layout above.
    const SECTIONS: [(&str, &str); 9] = [
        ("signup", include_str!("signup.rs")),
        ("bodies", include_str!("bodies.rs")),
        ("login", include_str!("login.rs")),
        ("authentication", include_str!("authentication.rs")),
        ("users", include_str!("users.rs")),
        ("payments", include_str!("payments.rs")),
        ("notifications", include_str!("notifications.rs")),
        ("edge", include_str!("edge.rs")),
        ("paths", include_str!("paths.rs")),
    ];

    /// The macro's list and the sections' `pub async fn`s must name the same cases, in order.
    #[test]
    fn every_case_is_listed_in_the_macro() {
        let src = include_str!("mod.rs");
        let sections: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
        let mut declared: Vec<&str> = src.lines().filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';')).collect();
        declared.sort_unstable();
        let mut sorted = sections.clone();
        sorted.sort_unstable();
        assert_eq!(declared, sorted, "this test must read every section file");
        let layout: Vec<&str> = src.lines().filter_map(|l| l.strip_prefix("//! - `")?.split('`').next()).collect();
        assert_eq!(layout, sections, "the Layout lists every section, in the order of SECTIONS");
        let defined: Vec<&str> = SECTIONS
            .iter()
            .flat_map(|(_, file)| file.lines())
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .map(|rest| rest.split(['<', '(']).next().unwrap_or_default())
            .collect();
        let begin = ["// BEGIN", " CASES"].concat();
        let end = ["// END", " CASES"].concat();
        let list = src
            .split_once(begin.as_str())
            .and_then(|(_, rest)| rest.split_once(end.as_str()))
            .map(|(list, _)| list)
            .expect("the macro's case list markers");
        let listed: Vec<&str> = list
            .lines()
            .skip(1) // the rest of the BEGIN marker's line
            .map(|l| l.trim().trim_end_matches(','))
            .filter(|l| !l.is_empty())
            .collect();
        assert!(defined.len() > 40, "found only {defined:?}");
        assert_eq!(listed, defined, "conformance_tests! must list every case of the sections, in Layout order");
    }
}
