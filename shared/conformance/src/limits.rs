//! The limits on signup and login (docs/api.md, "Limits"), checked the same way against
//! either build.
//!
//! These are not conformance cases and are not in [`conformance_tests!`](crate::conformance_tests):
//! each one spends an account's or a client address's budget on purpose, so it needs a
//! deployment of its own, started with the limits it is given (the builds' tests start one
//! with the defaults and pass the default numbers). The budgets refill while a check runs,
//! so each bound allows the cells that elapsed time can have added back: a check fails when
//! a limit is missing or looser than stated, never because the machine was slow.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::Target;
use crate::api::{Api, Method, PASSWORD, unique_email};

/// The code of a 429 from any of the rate limits.
const RATE_LIMITED: &str = "rate_limited";
/// The code of a 503 from a saturated password-hashing cap.
const OVERLOADED: &str = "overloaded";
const LOGIN: &str = "/api/auth/login";

/// A client address other than the 127.0.0.1 the other clients use (all of 127/8 is loopback).
pub const OTHER_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// How many cells a budget of `burst` per `window` may have refilled since `since`, plus the
/// one that may be in flight.
fn refilled(burst: u32, window: Duration, since: Instant) -> u32 {
    let period = window / burst;
    u32::try_from(since.elapsed().as_nanos() / period.as_nanos()).unwrap_or(u32::MAX).saturating_add(1)
}

/// Repeated wrong-password logins for one account answer 401 until the account's budget
/// (`per_hour`, the signup included) is spent, then 429 `rate_limited` with `Retry-After`,
/// even for the right password and for a signup with that e-mail; another account from
/// the same address still logs in.
pub async fn account_limit<T: Target>(t: &T, per_hour: u32) {
    let api = Api::new(t);
    let victim = api.new_user().await;
    let bystander = api.new_user().await;
    let started = Instant::now();
    let mut allowed = 1; // the signup
    let retry_secs = loop {
        let answer = api.login(&victim.email, "wrong password!").await;
        if answer.status == 429 {
            break answer.expect_retry_later(429, RATE_LIMITED, "a wrong-password login past the account's budget");
        }
        answer.expect_error(401, "invalid_credentials", &format!("wrong-password login #{allowed}"));
        allowed += 1;
        let most = per_hour + refilled(per_hour, Duration::from_secs(3600), started);
        assert!(allowed <= most, "{allowed} attempts on one account were let through; the budget is {per_hour}/hour");
    };
    assert!(allowed >= per_hour, "refused after {allowed} attempts; the budget is {per_hour}/hour");
    assert!(retry_secs > 5, "the next attempt is {retry_secs} s away: the check ran too slowly to go on");
    api.login(&victim.email, &victim.password).await.expect_retry_later(
        429,
        RATE_LIMITED,
        "the right password once the account's budget is spent",
    );
    api.signup(&victim.email, PASSWORD, "Again").await.expect_retry_later(
        429,
        RATE_LIMITED,
        "a signup with the e-mail of an account whose budget is spent",
    );
    let body = api.login(&bystander.email, &bystander.password).await.expect_json(200, "another account's login");
    let token = body["token"].as_str().unwrap_or_default();
    api.get_me(token).await.expect_json(200, "another account's session after the limit");
}

/// One client address gets `per_minute` signup and login requests, together, then 429
/// `rate_limited` with `Retry-After`; its other requests, and another address's signups
/// and logins, are untouched.
pub async fn address_limit<T: Target>(t: &T, per_minute: u32) {
    let window = Duration::from_secs(60);
    let api = Api::new(t);
    let started = Instant::now();
    let mut answered = 0;
    loop {
        // An invalid body: refused by the limit or, within it, by validation; cheap either way.
        let answer = api.json_call(Method::POST, LOGIN, None, &json!({})).await;
        if answer.status == 429 {
            answer.expect_retry_later(429, RATE_LIMITED, "a login past the address's budget");
            break;
        }
        answer.expect_error(422, "validation_failed", &format!("login request #{} from one address", answered + 1));
        answered += 1;
        let most = per_minute + refilled(per_minute, window, started);
        assert!(
            answered <= most,
            "{answered} logins from one address were let through; the budget is {per_minute}/min"
        );
    }
    assert!(answered >= per_minute, "refused after {answered} requests; the budget is {per_minute}/min");

    // Signups share the budget: at most the cells refilled meanwhile get through.
    let spent = Instant::now();
    let mut signups = 0;
    loop {
        let answer = api.signup_json(&json!({})).await;
        if answer.status == 429 {
            answer.expect_retry_later(429, RATE_LIMITED, "a signup from an address whose budget is spent");
            break;
        }
        answer.expect_error(422, "validation_failed", "a signup from an address whose budget is spent");
        signups += 1;
        assert!(signups <= refilled(per_minute, window, spent), "signups from a spent address got {signups} through");
    }

    api.get("/health", None).await.expect_json(200, "a request other than signup or login from the limited address");
    let other = Api::from_address(t, OTHER_ADDRESS);
    let user = other.new_user().await;
    other.login(&user.email, &user.password).await.expect_json(200, "a login from another address");
    api.get_me(&user.token).await.expect_json(200, "a session used from the limited address");
}

/// While every password-hashing slot is held (`occupy` holds them until its value is
/// dropped), logins and signups wait at most the bounded queue and are shed with 503
/// `overloaded` and `Retry-After`, a concurrent burst included; once the slots are free
/// they succeed, and a shed signup has left nothing behind.
pub async fn busy_hashing_is_shed<T: Target, G>(t: &T, occupy: impl Future<Output = G>) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let held = occupy.await;
    api.login(&user.email, &user.password).await.expect_retry_later(503, OVERLOADED, "a login while hashing is full");
    let email = unique_email();
    api.signup(&email, PASSWORD, "Ada").await.expect_retry_later(503, OVERLOADED, "a signup while hashing is full");
    let burst = futures::future::join_all((0..16).map(|_| {
        let api = api.clone();
        async move { api.login(&unique_email(), PASSWORD).await }
    }))
    .await;
    for answer in burst {
        answer.expect_retry_later(503, OVERLOADED, "a login of a concurrent burst while hashing is full");
    }
    drop(held);
    api.login(&user.email, &user.password).await.expect_json(200, "a login once hashing is free");
    api.signup(&email, PASSWORD, "Ada").await.assert_status(201, "the e-mail of a shed signup is still free");
}
