//! What each scenario sends: which step a request is, the status it expects, and the
//! request itself, built from parts prepared once per run.
//!
//! `mixed` picks each request's step from a hash of its index, so two runs with the same
//! plan send the same sequence of steps: browse 60 %, purchase 25 %, login 10 %, signup 5 %.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use std::fmt;

/// The password of every user the generator signs up.
pub const PASSWORD: &str = "correct horse battery staple";

/// Weights of `mixed`, in percent: browse, purchase, login, signup.
pub const MIXED_WEIGHTS: [(Step, u64); 4] =
    [(Step::UsersMe, 60), (Step::PaymentsCreate, 25), (Step::Login, 10), (Step::Signup, 5)];

/// A load scenario, named on the command line and in experiment files in lower case.
#[derive(clap::ValueEnum, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// `POST /api/auth/signup`, a fresh e-mail each time.
    Signup,
    /// `POST /api/auth/login` as a seeded user, with the right password.
    Login,
    /// `GET /api/users/me` and `GET /api/payments`, alternately, as a seeded user.
    Browse,
    /// `GET /api/users/me` only.
    Profile,
    /// `POST /api/payments` with a fresh `Idempotency-Key` each time.
    Purchase,
    /// Browse 60, purchase 25, login 10, signup 5 (per 100 requests), chosen per request.
    Mixed,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Signup => "signup",
            Self::Login => "login",
            Self::Browse => "browse",
            Self::Profile => "profile",
            Self::Purchase => "purchase",
            Self::Mixed => "mixed",
        })
    }
}

impl Scenario {
    /// Whether the scenario needs seeded users (every one but `signup`).
    pub fn needs_users(self) -> bool {
        self != Self::Signup
    }

    /// The step of request number `index` of a run.
    pub fn step(self, index: u64) -> Step {
        let browse = |i: u64| if i.is_multiple_of(2) { Step::UsersMe } else { Step::PaymentsList };
        match self {
            Self::Signup => Step::Signup,
            Self::Login => Step::Login,
            Self::Browse => browse(index),
            Self::Profile => Step::UsersMe,
            Self::Purchase => Step::PaymentsCreate,
            Self::Mixed => {
                let h = mix(index);
                let mut roll = h % 100;
                for (step, weight) in MIXED_WEIGHTS {
                    if roll < weight {
                        // Browse alternates on another part of the hash.
                        return if step == Step::UsersMe { browse(h >> 32) } else { step };
                    }
                    roll -= weight;
                }
                Step::UsersMe
            }
        }
    }
}

/// splitmix64: a well-spread, deterministic hash of the request index.
fn mix(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One kind of request; `by_step` in the report is keyed by [`Step::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Signup,
    Login,
    UsersMe,
    PaymentsList,
    PaymentsCreate,
}

impl Step {
    /// Every step, in index order.
    pub const ALL: [Step; 5] = [Step::Signup, Step::Login, Step::UsersMe, Step::PaymentsList, Step::PaymentsCreate];

    /// Its name in reports, the span name of the operation.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signup => "auth.signup",
            Self::Login => "auth.login",
            Self::UsersMe => "users.me",
            Self::PaymentsList => "payments.list",
            Self::PaymentsCreate => "payments.create",
        }
    }

    /// Its position in [`Step::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The status a successful answer has.
    pub fn expected_status(self) -> u16 {
        match self {
            Self::Signup | Self::PaymentsCreate => 201,
            _ => 200,
        }
    }
}

/// One seeded user's prepared request parts.
#[derive(Debug, Clone)]
struct UserParts {
    bearer: HeaderValue,
    login_body: Bytes,
}

/// Every request of a run, from parts built once.
#[derive(Debug, Clone)]
pub struct Requests {
    host: HeaderValue,
    json: HeaderValue,
    users: Vec<UserParts>,
    run_tag: String,
    purchase_body: Bytes,
    uris: [Uri; 4],
}

impl Requests {
    /// Parts for a run against `host` (`127.0.0.1:8080`) as the given `(email, token)`
    /// users; `run_tag` makes this run's e-mails and idempotency keys unique.
    pub fn new(host: &str, users: &[(String, String)], run_tag: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let users = users
            .iter()
            .map(|(email, token)| {
                Ok(UserParts {
                    bearer: HeaderValue::try_from(format!("Bearer {token}")).context("a seeded token")?,
                    login_body: Bytes::from(serde_json::json!({"email": email, "password": PASSWORD}).to_string()),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            host: HeaderValue::try_from(host).context("the target's host")?,
            json: HeaderValue::from_static("application/json"),
            users,
            run_tag: run_tag.to_owned(),
            purchase_body: Bytes::from_static(br#"{"amount_cents":1299,"currency":"EUR"}"#),
            uris: [
                Uri::from_static("/api/auth/signup"),
                Uri::from_static("/api/auth/login"),
                Uri::from_static("/api/users/me"),
                Uri::from_static("/api/payments"),
            ],
        })
    }

    /// Request number `index` of the run, of the given step.
    pub fn build(&self, step: Step, index: u64) -> anyhow::Result<Request<Full<Bytes>>> {
        let user =
            if self.users.is_empty() { None } else { self.users.get((index % self.users.len() as u64) as usize) };
        let (method, uri, body) = match step {
            Step::Signup => {
                let email = format!("load-{}-{index}@example.com", self.run_tag);
                let body = serde_json::json!({"email": email, "password": PASSWORD, "name": "Load"}).to_string();
                (Method::POST, &self.uris[0], Bytes::from(body))
            }
            Step::Login => (Method::POST, &self.uris[1], user.map(|u| u.login_body.clone()).unwrap_or_default()),
            Step::UsersMe => (Method::GET, &self.uris[2], Bytes::new()),
            Step::PaymentsList => (Method::GET, &self.uris[3], Bytes::new()),
            Step::PaymentsCreate => (Method::POST, &self.uris[3], self.purchase_body.clone()),
        };
        let mut builder = Request::builder().method(method).uri(uri.clone()).header(HOST, self.host.clone());
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, self.json.clone());
        }
        if matches!(step, Step::UsersMe | Step::PaymentsList | Step::PaymentsCreate)
            && let Some(user) = user
        {
            builder = builder.header(AUTHORIZATION, user.bearer.clone());
        }
        if step == Step::PaymentsCreate {
            builder = builder.header("idempotency-key", format!("load-{}-{index}", self.run_tag));
        }
        Ok(builder.body(Full::new(body))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_is_deterministic_and_close_to_its_weights() {
        let first: Vec<Step> = (0..10_000).map(|i| Scenario::Mixed.step(i)).collect();
        let again: Vec<Step> = (0..10_000).map(|i| Scenario::Mixed.step(i)).collect();
        assert_eq!(first, again);
        let count = |s: Step| first.iter().filter(|&&x| x == s).count() as f64 / 100.0;
        let browse = count(Step::UsersMe) + count(Step::PaymentsList);
        for (measured, weight) in [
            (browse, 60.0),
            (count(Step::PaymentsCreate), 25.0),
            (count(Step::Login), 10.0),
            (count(Step::Signup), 5.0),
        ] {
            assert!((measured - weight).abs() < 1.5, "{measured} % for a weight of {weight}");
        }
        assert!(count(Step::UsersMe) > 25.0 && count(Step::PaymentsList) > 25.0);
    }

    #[test]
    fn single_step_scenarios() {
        assert!((0..10).all(|i| Scenario::Profile.step(i) == Step::UsersMe));
        let browse: Vec<Step> = (0..4).map(|i| Scenario::Browse.step(i)).collect();
        assert_eq!(browse, [Step::UsersMe, Step::PaymentsList, Step::UsersMe, Step::PaymentsList]);
        assert_eq!(Scenario::Purchase.step(7).expected_status(), 201);
        assert_eq!(Scenario::Login.step(7).expected_status(), 200);
    }

    #[test]
    fn requests_carry_unique_keys_and_the_token() -> anyhow::Result<()> {
        let users =
            vec![("a@example.com".to_owned(), "tok-a".to_owned()), ("b@example.com".to_owned(), "tok-b".to_owned())];
        let r = Requests::new("127.0.0.1:1", &users, "run1")?;
        let p1 = r.build(Step::PaymentsCreate, 1)?;
        let p2 = r.build(Step::PaymentsCreate, 2)?;
        assert_ne!(p1.headers()["idempotency-key"], p2.headers()["idempotency-key"]);
        assert_eq!(p1.headers()[AUTHORIZATION], "Bearer tok-b");
        assert_eq!(p2.headers()[AUTHORIZATION], "Bearer tok-a");
        assert_eq!(r.build(Step::UsersMe, 0)?.uri(), "/api/users/me");
        assert_eq!(r.build(Step::Signup, 0)?.headers().get(AUTHORIZATION), None);
        Ok(())
    }
}
