//! Paths, written on the wire byte for byte: every route in every non-canonical spelling of
//! the table in `raw` is 400 `invalid_path`, and the traversal that once read another user's
//! profile through the gateway (`..\..\internal\users\profiles\<id>`) reads nothing.

use uuid::Uuid;

use crate::Target;
use crate::api::{Api, Resp, User};
use crate::raw::{SPELLINGS, concrete, documented_routes, send_raw};

/// A fresh account whose id, e-mail and name are all its own, so any of them in an answer
/// meant for someone else is a leak.
async fn victim(api: &Api) -> User {
    api.new_user_named(&format!("Victim {}", Uuid::new_v4().simple())).await
}

/// Panics if `resp` carries anything of `victim`'s: id, e-mail or name.
#[track_caller]
fn assert_nothing_of(victim: &User, resp: &Resp, context: &str) {
    let text = resp.text();
    for (what, value) in [("user id", &victim.user_id), ("e-mail", &victim.email), ("name", &victim.name)] {
        assert!(
            !text.contains(value.as_str()),
            "{context}: {} ({}) leaks the victim's {what}: {text}",
            resp.what,
            resp.status
        );
    }
}

/// Every documented route, in every spelling of the table, sent raw with a valid token,
/// answers 400 `invalid_path` and nothing of the other user the traversals aim at; each route
/// spelled canonically, sent the same raw way, gets past that check.
pub async fn non_canonical_paths_are_400_invalid_path<T: Target>(t: &T) {
    let api = Api::new(t);
    let (user, victim) = (api.new_user().await, victim(&api).await);
    let routes = documented_routes();
    for &(method, pattern, _) in &routes {
        let path = concrete(pattern, &user.user_id);
        for spelling in SPELLINGS {
            let target = (spelling.spell)(&path, &victim.user_id);
            let resp = send_raw(t.base_url(), method, target.as_bytes(), Some(&user.token)).await;
            let context = format!("{} of {method} {pattern}", spelling.name);
            resp.expect_error(400, "invalid_path", &context);
            assert_nothing_of(&victim, &resp, &context);
        }
    }
    // The control, after the rest because it logs the token out: the same raw client and
    // token, with canonical paths, reach the routes.
    for &(method, pattern, _) in &routes {
        let path = concrete(pattern, &user.user_id);
        let resp = send_raw(t.base_url(), method, path.as_bytes(), Some(&user.token)).await;
        let body = resp.text();
        // What the edge or the fallback would answer instead of the route (parsed, since a
        // route's own answer may mention these codes: /openapi.json documents them all).
        let error = serde_json::from_str::<serde_json::Value>(&body).ok().map(|v| v["error"].clone());
        let (code, message) = error
            .map(|e| (e["code"].as_str().unwrap_or("").to_owned(), e["message"].as_str().unwrap_or("").to_owned()))
            .unwrap_or_default();
        let refused = code == "invalid_path" || (code == "not_found" && message == "route not found");
        assert!(!refused && resp.status != 405, "{} must reach its route: {} {body}", resp.what, resp.status);
    }
}

/// The request of the report: user A's token, B's id, the backslash traversal to
/// users-service's internal profile route. It answers 4xx in the error shape with nothing of
/// B's, while B's own profile, fetched by B the same raw way, does hold B's data.
pub async fn path_traversal_reads_no_other_users_profile<T: Target>(t: &T) {
    let api = Api::new(t);
    let (a, b) = (api.new_user().await, victim(&api).await);
    let attack = format!(r"/api/users/..\..\internal\users\profiles\{}", b.user_id);
    let resp = send_raw(t.base_url(), "GET", attack.as_bytes(), Some(&a.token)).await;
    assert!((400..500).contains(&resp.status), "{}: {} {}", resp.what, resp.status, resp.text());
    resp.expect_error(400, "invalid_path", "the reported traversal");
    assert_nothing_of(&b, &resp, "the reported traversal");

    let own = send_raw(t.base_url(), "GET", format!("/api/users/{}", b.user_id).as_bytes(), Some(&b.token)).await;
    let profile = own.expect_json(200, "B reads B's own profile, raw");
    let fields = ["user_id", "email", "name"].map(|k| profile[k].as_str().unwrap_or_default().to_owned());
    assert_eq!(fields, [b.user_id, b.email, b.name], "the leak check above looks for exactly these: {profile}");
}
