//! `UsersService` over a freshly migrated database.
//!
//! Covers: `create_profile` is idempotent for the same person and refuses another email
//! under the same id (409 `profile_exists`) without touching the stored one; a fault at
//! `users.create_profile` leaves no half-written profile; `update_profile` changes only
//! what the patch names, refuses an invalid name (422) and an unknown user (404); and
//! `get_profile` of an unknown user is `not_found`.

use archlab_kernel::{Email, ErrorKind, Faults};
use archlab_users::{
    DisplayName, NewProfile, Preferences, PreferencesPatch, ProfilePatch, UserStatus, UsersApi, UsersService,
};
use sqlx::PgPool;
use uuid::Uuid;

#[tokio::test]
async fn create_profile_starts_active_with_default_preferences() {
    let (users, _) = service().await;
    let new = new_profile("  Ada@Example.com ", "  Ada Lovelace ");

    let profile = users.create_profile(new.clone()).await.unwrap();

    assert_eq!(profile.user_id, new.user_id);
    assert_eq!(profile.email, "ada@example.com");
    assert_eq!(profile.name, "Ada Lovelace");
    assert_eq!(profile.status, UserStatus::Active);
    assert_eq!(profile.preferences, Preferences { email_receipts: true, marketing_emails: false });
    assert_eq!(users.get_profile(new.user_id).await.unwrap(), profile);
}

#[tokio::test]
async fn create_profile_twice_with_the_same_data_is_a_no_op() {
    let (users, pool) = service().await;
    let new = new_profile("ada@example.com", "Ada");

    let first = users.create_profile(new.clone()).await.unwrap();
    let second = users.create_profile(new.clone()).await.unwrap();

    assert_eq!(second, first, "a repeated create must answer with the stored profile");
    assert_eq!(count(&pool, "SELECT count(*) FROM users.profiles").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM users.preferences").await, 1);
}

#[tokio::test]
async fn create_profile_with_another_email_under_the_same_id_is_a_409() {
    let (users, _) = service().await;
    let new = new_profile("ada@example.com", "Ada");
    let stored = users.create_profile(new.clone()).await.unwrap();
    let impostor = NewProfile { email: Email::parse("eve@example.com").unwrap(), ..new.clone() };

    let err = users.create_profile(impostor).await.expect_err("another email under the same id");

    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(err.code, "profile_exists");
    assert_eq!(users.get_profile(new.user_id).await.unwrap(), stored, "the stored profile changed");
}

#[tokio::test]
async fn a_fault_inside_create_profile_leaves_no_profile() {
    let (users, pool) = service().await;
    let faults = Faults::default();
    let users_with_fault = UsersService::new(pool.clone(), faults.clone());
    faults.enable(archlab_users::faults::CREATE_PROFILE);
    let new = new_profile("ada@example.com", "Ada");

    let err = users_with_fault.create_profile(new.clone()).await.expect_err("fault point is on");

    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(count(&pool, "SELECT count(*) FROM users.profiles").await, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM users.preferences").await, 0);
    faults.disable(archlab_users::faults::CREATE_PROFILE);
    users_with_fault.create_profile(new.clone()).await.expect("the same create after the fault");
    assert_eq!(users.get_profile(new.user_id).await.unwrap().name, "Ada");
}

#[tokio::test]
async fn update_profile_with_a_name_only_keeps_the_preferences() {
    let (users, _) = service().await;
    let id = created(&users, "ada@example.com", "Ada").await;
    let prefs = PreferencesPatch { email_receipts: Some(false), marketing_emails: Some(true) };
    users.update_profile(id, ProfilePatch { name: None, preferences: Some(prefs) }).await.unwrap();

    let updated = users.update_profile(id, ProfilePatch { name: Some(" Countess ".into()), preferences: None }).await;

    let updated = updated.unwrap();
    assert_eq!(updated.name, "Countess");
    assert_eq!(updated.preferences, Preferences { email_receipts: false, marketing_emails: true });
    assert_eq!(updated.email, "ada@example.com");
    assert_eq!(users.get_profile(id).await.unwrap(), updated);
}

#[tokio::test]
async fn update_profile_with_one_preference_keeps_the_other_and_the_name() {
    let (users, _) = service().await;
    let id = created(&users, "ada@example.com", "Ada").await;

    let patch = ProfilePatch {
        name: None,
        preferences: Some(PreferencesPatch { marketing_emails: Some(true), ..Default::default() }),
    };
    let updated = users.update_profile(id, patch).await.unwrap();

    assert_eq!(updated.name, "Ada");
    assert_eq!(updated.preferences, Preferences { email_receipts: true, marketing_emails: true });

    let patch = ProfilePatch {
        name: None,
        preferences: Some(PreferencesPatch { email_receipts: Some(false), ..Default::default() }),
    };
    let updated = users.update_profile(id, patch).await.unwrap();
    assert_eq!(updated.preferences, Preferences { email_receipts: false, marketing_emails: true });
}

#[tokio::test]
async fn an_empty_patch_changes_nothing() {
    let (users, _) = service().await;
    let id = created(&users, "ada@example.com", "Ada").await;
    let before = users.get_profile(id).await.unwrap();

    let after = users.update_profile(id, ProfilePatch::default()).await.unwrap();

    assert_eq!(after, before);
}

#[tokio::test]
async fn update_profile_with_an_invalid_name_is_a_422_and_changes_nothing() {
    let (users, _) = service().await;
    let id = created(&users, "ada@example.com", "Ada").await;
    let before = users.get_profile(id).await.unwrap();

    for bad in ["", "   ", "bell\u{7}", &"n".repeat(DisplayName::MAX_CHARS + 1)] {
        let patch = ProfilePatch {
            name: Some(bad.to_owned()),
            preferences: Some(PreferencesPatch { marketing_emails: Some(true), ..Default::default() }),
        };
        let err = users.update_profile(id, patch).await.expect_err(bad);
        assert_eq!(err.kind, ErrorKind::Unprocessable, "{bad:?}");
        assert_eq!(err.code, "validation_failed", "{bad:?}");
    }
    assert_eq!(users.get_profile(id).await.unwrap(), before, "a refused patch was partly applied");
}

#[tokio::test]
async fn update_profile_of_an_unknown_user_is_a_404() {
    let (users, pool) = service().await;

    let patch = ProfilePatch { name: Some("Ghost".into()), preferences: None };
    let err = users.update_profile(Uuid::new_v4(), patch).await.expect_err("unknown user");

    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.code, "not_found");
    assert_eq!(count(&pool, "SELECT count(*) FROM users.profiles").await, 0);
}

#[tokio::test]
async fn get_profile_of_an_unknown_user_is_not_found() {
    let (users, _) = service().await;
    created(&users, "ada@example.com", "Ada").await;

    let err = users.get_profile(Uuid::new_v4()).await.expect_err("unknown user");

    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.code, "not_found");
}

// --- helpers ---

/// A service over a fresh, migrated database, and the pool to check rows with.
async fn service() -> (UsersService, PgPool) {
    let pool = archlab_testkit::fresh_pool("users").await;
    archlab_users::migrate(&pool).await.expect("users migrations");
    (UsersService::new(pool.clone(), Faults::default()), pool)
}

fn new_profile(email: &str, name: &str) -> NewProfile {
    NewProfile { user_id: Uuid::new_v4(), email: Email::parse(email).unwrap(), name: DisplayName::parse(name).unwrap() }
}

async fn created(users: &UsersService, email: &str, name: &str) -> Uuid {
    users.create_profile(new_profile(email, name)).await.unwrap().user_id
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}
