//! `GET` and `PATCH /api/users/me`, and `GET /api/users/{id}`.

use serde_json::json;
use uuid::Uuid;

use crate::Target;
use crate::api::{Api, unique_email};
use crate::shape;

/// PATCH changes name and preferences, answers the updated profile, and the change persists;
/// preferences merge field by field.
pub async fn patch_me_updates_name_and_preferences<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile before PATCH");
    let patched = api
        .patch_me(&user.token, &json!({ "name": "  Grace Hopper  ", "preferences": { "marketing_emails": true } }))
        .await
        .expect_json(200, "PATCH name and one preference");
    shape::profile(&patched, "PATCH answer");
    let mut expected = before.clone();
    expected["name"] = json!("Grace Hopper");
    expected["preferences"] = json!({ "email_receipts": true, "marketing_emails": true });
    assert_eq!(patched, expected, "PATCH answers the updated profile, other fields untouched");
    let after = api.get_me(&user.token).await.expect_json(200, "profile after PATCH");
    assert_eq!(after, expected, "the PATCH persisted");

    let patched = api
        .patch_me(&user.token, &json!({ "preferences": { "email_receipts": false } }))
        .await
        .expect_json(200, "PATCH the other preference");
    expected["preferences"] = json!({ "email_receipts": false, "marketing_emails": true });
    assert_eq!(patched, expected, "preferences merge field by field");
    let after = api.get_me(&user.token).await.expect_json(200, "profile after second PATCH");
    assert_eq!(after, expected, "the second PATCH persisted");
}

/// `PATCH {}` answers 200 with the profile unchanged.
pub async fn patch_me_empty_changes_nothing<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile before PATCH");
    for body in [json!({}), json!({ "preferences": {} })] {
        let patched = api.patch_me(&user.token, &body).await.expect_json(200, &format!("PATCH {body}"));
        assert_eq!(patched, before, "PATCH {body} changes nothing");
    }
    let after = api.get_me(&user.token).await.expect_json(200, "profile after PATCH {}");
    assert_eq!(after, before, "PATCH {{}} changes nothing");
}

/// PATCH with an invalid name answers 422 and changes nothing.
pub async fn patch_me_invalid_name_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile");
    for name in ["", "   ", &"n".repeat(101), "Ada\u{0}"] {
        api.patch_me(&user.token, &json!({ "name": name, "preferences": { "marketing_emails": true } }))
            .await
            .expect_error(422, "validation_failed", &format!("PATCH name {name:?}"));
    }
    let after = api.get_me(&user.token).await.expect_json(200, "profile");
    assert_eq!(after, before, "a rejected PATCH changes nothing at all");
}

/// PATCH with an unknown field, at the top or inside `preferences`, answers 422 and changes
/// nothing.
pub async fn patch_me_unknown_field_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile");
    for body in [
        json!({ "email": unique_email() }),
        json!({ "status": "suspended" }),
        json!({ "name": "Grace", "nickname": "amazing" }),
        json!({ "preferences": { "sms": true } }),
    ] {
        api.patch_me(&user.token, &body).await.expect_error(422, "validation_failed", &format!("PATCH {body}"));
    }
    let after = api.get_me(&user.token).await.expect_json(200, "profile");
    assert_eq!(after, before, "a rejected PATCH changes nothing at all");
}

/// PATCH with a field of the wrong type answers 422 and changes nothing.
pub async fn patch_me_mistyped_field_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile");
    for body in [
        json!({ "name": 42 }),
        json!({ "preferences": { "email_receipts": "no" } }),
        json!({ "preferences": true }),
        json!([]),
    ] {
        api.patch_me(&user.token, &body).await.expect_error(422, "validation_failed", &format!("PATCH {body}"));
    }
    let after = api.get_me(&user.token).await.expect_json(200, "profile");
    assert_eq!(after, before, "a rejected PATCH changes nothing at all");
}

/// `GET /api/users/{own id}` answers the same profile as `/api/users/me`.
pub async fn get_user_by_own_id_is_200<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let me = api.get_me(&user.token).await.expect_json(200, "profile");
    let by_id = api
        .get(&format!("/api/users/{}", user.user_id), Some(&user.token))
        .await
        .expect_json(200, "GET /api/users/{own id}");
    assert_eq!(by_id, me, "the own profile by id equals /api/users/me");
}

/// Another user's id answers 404 `not_found` (never 403), as does an id nobody has.
pub async fn get_user_by_other_id_is_404<T: Target>(t: &T) {
    let api = Api::new(t);
    let alice = api.new_user().await;
    let bob = api.new_user().await;
    for id in [bob.user_id.clone(), Uuid::new_v4().to_string()] {
        api.get(&format!("/api/users/{id}"), Some(&alice.token)).await.expect_error(
            404,
            "not_found",
            &format!("GET /api/users/{id} as another user"),
        );
    }
}

/// A user id that is not a UUID answers 422 `validation_failed`.
pub async fn get_user_by_non_uuid_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for id in ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"] {
        api.get(&format!("/api/users/{id}"), Some(&user.token)).await.expect_error(
            422,
            "validation_failed",
            &format!("GET /api/users/{id}"),
        );
    }
}
