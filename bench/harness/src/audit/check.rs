//! The rules of `archlab audit`: pure functions from what was read (a [`Snapshot`]) to what
//! is wrong (a list of [`Violation`]s), so that every rule is tested on made-up data with no
//! database and no extsim.
//!
//! Each rule states a promise both builds make (DESIGN.md, docs/architecture.md): a payment
//! row exists before its charge and is charged once, ever, under its own id; a signup leaves
//! credentials and a profile or neither; every account gets one welcome and every recorded
//! payment one receipt, each emailed once under its event id. What is still in flight when
//! the audit reads is not a violation yet: a rule that waits for something to arrive only
//! looks at records older than the settle bound, `cutoff = now - settle` (docs/audit.md says
//! which rules wait and for what).

use archlab_auth::CredentialStatus;
use archlab_extsim::{Charge, Email};
use archlab_notifications::{KIND_RECEIPT, KIND_WELCOME};
use archlab_payments::PaymentStatus;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

/// A user's credentials (`auth.credentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user.
    pub user_id: Uuid,
    /// `pending` only between the steps of the microservices' signup saga.
    pub status: CredentialStatus,
    /// When the signup wrote them.
    pub created_at: DateTime<Utc>,
}

/// A user's profile (`users.profiles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The user.
    pub user_id: Uuid,
    /// When the signup wrote it.
    pub created_at: DateTime<Utc>,
}

/// A profile delete the signup saga still owes users-service (`saga.signup_compensations`,
/// microservices only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compensation {
    /// The user whose profile may exist.
    pub user_id: Uuid,
    /// When the compensation was recorded.
    pub created_at: DateTime<Utc>,
    /// Failed attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A payment (`payments.payments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Its id; also the idempotency key and the reference of its charge.
    pub payment_id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// The client's key.
    pub idempotency_key: String,
    /// Minor units.
    pub amount_cents: i64,
    /// ISO code.
    pub currency: String,
    /// `pending` until recorded as charged.
    pub status: PaymentStatus,
    /// The charge the payment recorded, once `succeeded`.
    pub provider_charge_id: Option<String>,
    /// When the pending row was written (before the charge).
    pub created_at: DateTime<Utc>,
    /// When it last changed: for a succeeded payment, when it was recorded as charged.
    pub updated_at: DateTime<Utc>,
}

/// A notification (`notifications.notifications`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Its id.
    pub notification_id: Uuid,
    /// The event it was made from; also the idempotency key of its email.
    pub event_id: Uuid,
    /// Who was notified.
    pub user_id: Uuid,
    /// `welcome` or `receipt`.
    pub kind: String,
    /// The payment a receipt is for.
    pub payment_id: Option<Uuid>,
    /// The provider's id of its email; `None` when none was sent (receipts a user opted out of).
    pub email_id: Option<String>,
    /// When it was recorded (after its email was sent).
    pub created_at: DateTime<Utc>,
}

/// Everything the audit read from one build and the third parties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When reading began: every age is measured against it.
    pub now: DateTime<Utc>,
    /// Every user's credentials.
    pub credentials: Vec<Credential>,
    /// Every profile.
    pub profiles: Vec<Profile>,
    /// Owed profile deletes (always empty for the monolith, which has no saga).
    pub compensations: Vec<Compensation>,
    /// Every payment.
    pub payments: Vec<Payment>,
    /// Every notification.
    pub notifications: Vec<Notification>,
    /// Every charge extsim accepted.
    pub charges: Vec<Charge>,
    /// Every email extsim accepted.
    pub emails: Vec<Email>,
}

impl Snapshot {
    /// Nothing read yet, as of `now`.
    pub fn empty(now: DateTime<Utc>) -> Self {
        Self {
            now,
            credentials: Vec::new(),
            profiles: Vec::new(),
            compensations: Vec::new(),
            payments: Vec::new(),
            notifications: Vec::new(),
            charges: Vec::new(),
            emails: Vec::new(),
        }
    }
}

/// What is wrong. The `id` of a [`Violation`] names a record of [`ViolationKind::subject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// Money taken, purchase not recorded: a charge older than the bound for a payment still `pending`.
    LostPayment,
    /// More than one charge for one payment (its id), or under one idempotency key (the key,
    /// when the charges name no single payment).
    DoubleCharge,
    /// A charge older than the bound that names no payment.
    OrphanCharge,
    /// A `succeeded` payment the provider holds no charge for.
    UnchargedPayment,
    /// A payment `pending` longer than the bound, with no charge: the purchase is in doubt.
    PaymentInDoubt,
    /// A payment and its charge disagree: amount, currency, or the charge id it recorded.
    ChargeMismatch,
    /// Active credentials older than the bound with no profile.
    OrphanCredentials,
    /// A profile older than the bound with no credentials.
    OrphanProfile,
    /// Credentials `pending` longer than the bound: a signup saga neither finished nor compensated.
    StalledSignup,
    /// A profile delete the signup saga has owed for longer than the bound.
    UnpaidCompensation,
    /// A payment recorded longer than the bound ago with no receipt.
    MissingReceipt,
    /// A payment with more than one receipt.
    DuplicateReceipt,
    /// An account older than the bound with no welcome.
    MissingWelcome,
    /// An account with more than one welcome.
    DuplicateWelcome,
    /// A notification older than the bound about nothing: a receipt for no succeeded payment,
    /// a welcome for no account.
    OrphanNotification,
    /// A notification that should have been emailed and extsim holds no email for.
    MissingEmail,
    /// A notification extsim holds more than one email for.
    DuplicateEmail,
}

impl ViolationKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Self; 17] = [
        Self::LostPayment,
        Self::DoubleCharge,
        Self::OrphanCharge,
        Self::UnchargedPayment,
        Self::PaymentInDoubt,
        Self::ChargeMismatch,
        Self::OrphanCredentials,
        Self::OrphanProfile,
        Self::StalledSignup,
        Self::UnpaidCompensation,
        Self::MissingReceipt,
        Self::DuplicateReceipt,
        Self::MissingWelcome,
        Self::DuplicateWelcome,
        Self::OrphanNotification,
        Self::MissingEmail,
        Self::DuplicateEmail,
    ];

    /// The name reports use, e.g. `double_charge`.
    pub fn name(self) -> &'static str {
        archlab_kernel::wire::name(&self)
    }

    /// What a violation's `id` is the id of: `payment`, `charge`, `user` or `notification`.
    pub fn subject(self) -> &'static str {
        use ViolationKind::*;
        match self {
            LostPayment | DoubleCharge | UnchargedPayment | PaymentInDoubt | ChargeMismatch | MissingReceipt
            | DuplicateReceipt => "payment",
            OrphanCharge => "charge",
            OrphanCredentials | OrphanProfile | StalledSignup | UnpaidCompensation | MissingWelcome
            | DuplicateWelcome => "user",
            OrphanNotification | MissingEmail | DuplicateEmail => "notification",
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing wrong, with the ids an operator needs to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// What is wrong.
    pub kind: ViolationKind,
    /// The record it is about (a payment, charge, user or notification id: see [`ViolationKind::subject`]).
    pub id: String,
    /// The other records involved: charge ids, notification ids, email ids, keys.
    pub related: Vec<String>,
    /// One sentence for a person.
    pub detail: String,
}

impl Violation {
    fn new(kind: ViolationKind, id: impl ToString, related: Vec<String>, detail: String) -> Self {
        Self { kind, id: id.to_string(), related, detail }
    }
}

/// Every rule over `snapshot`, a record left alone while younger than `settle`; sorted by
/// kind, then id.
pub fn audit(snapshot: &Snapshot, settle: Duration) -> Vec<Violation> {
    let cutoff = TimeDelta::from_std(settle)
        .ok()
        .and_then(|settle| snapshot.now.checked_sub_signed(settle))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut found = payments(snapshot, cutoff);
    found.extend(accounts(snapshot, cutoff));
    found.extend(notifications(snapshot, cutoff));
    found.extend(emails(snapshot));
    found.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    found
}

/// The payment a charge is for: its reference, which the purchase flow sets to the payment
/// id, else its idempotency key, which is the payment id too. The reference comes first so
/// that a second charge for one payment under another key still counts against it.
fn charged_payment(charge: &Charge) -> Option<Uuid> {
    let parse = |s: &str| Uuid::parse_str(s).ok();
    charge.reference.as_deref().and_then(parse).or_else(|| parse(&charge.idempotency_key))
}

fn ids(charges: &[&Charge]) -> Vec<String> {
    charges.iter().map(|c| c.charge_id.clone()).collect()
}

/// Payments against the provider's charges: lost, double, orphan and uncharged payments,
/// payments in doubt, and charges that disagree with their payment.
pub fn payments(snapshot: &Snapshot, cutoff: DateTime<Utc>) -> Vec<Violation> {
    use ViolationKind::*;
    let mut found = Vec::new();
    let known: HashSet<Uuid> = snapshot.payments.iter().map(|p| p.payment_id).collect();
    let mut charged: HashMap<Uuid, Vec<&Charge>> = HashMap::new();
    for charge in &snapshot.charges {
        match charged_payment(charge).filter(|id| known.contains(id)) {
            Some(payment_id) => charged.entry(payment_id).or_default().push(charge),
            // The payment row is written before the charge, so an old charge without one is
            // money taken for nothing we know of; a young one may be a purchase begun after
            // the databases were read.
            None if charge.created_at <= cutoff => found.push(Violation::new(
                OrphanCharge,
                &charge.charge_id,
                vec![charge.idempotency_key.clone()],
                format!(
                    "{} {} charged under key {:?} (reference {:?}), and no payment has that id",
                    charge.amount_cents,
                    charge.currency,
                    charge.idempotency_key,
                    charge.reference.as_deref().unwrap_or("")
                ),
            )),
            None => {}
        }
    }

    // One key, one charge, whatever the charges name: extsim guarantees it, a provider's log
    // from elsewhere may not. Charges that all count against one payment are reported as
    // that payment's double charge below.
    let mut by_key: BTreeMap<&str, Vec<&Charge>> = BTreeMap::new();
    for charge in &snapshot.charges {
        by_key.entry(charge.idempotency_key.as_str()).or_default().push(charge);
    }
    for (key, charges) in by_key.iter().filter(|(_, charges)| charges.len() > 1) {
        let named: HashSet<Option<Uuid>> =
            charges.iter().map(|c| charged_payment(c).filter(|id| known.contains(id))).collect();
        if named.len() == 1 && !named.contains(&None) {
            continue;
        }
        found.push(Violation::new(
            DoubleCharge,
            key,
            ids(charges),
            format!("{} charges at the provider under one idempotency key", charges.len()),
        ));
    }

    for payment in &snapshot.payments {
        let charges = charged.get(&payment.payment_id).map(Vec::as_slice).unwrap_or_default();
        let id = payment.payment_id;
        if charges.len() > 1 {
            found.push(Violation::new(
                DoubleCharge,
                id,
                ids(charges),
                format!(
                    "{} charges at the provider for one payment of {} {}",
                    charges.len(),
                    payment.amount_cents,
                    payment.currency
                ),
            ));
        }

        let mut disagreements: Vec<String> = charges
            .iter()
            .filter(|c| c.amount_cents != payment.amount_cents || c.currency != payment.currency)
            .map(|c| {
                format!(
                    "charge {} is {} {}, the payment {} {}",
                    c.charge_id, c.amount_cents, c.currency, payment.amount_cents, payment.currency
                )
            })
            .collect();
        match payment.status {
            PaymentStatus::Succeeded if charges.is_empty() => found.push(Violation::new(
                UnchargedPayment,
                id,
                payment.provider_charge_id.iter().cloned().collect(),
                format!(
                    "succeeded with charge {:?}, but the provider holds no charge for it",
                    payment.provider_charge_id.as_deref().unwrap_or("")
                ),
            )),
            PaymentStatus::Succeeded => {
                let recorded = payment.provider_charge_id.as_deref();
                if !charges.iter().any(|c| Some(c.charge_id.as_str()) == recorded) {
                    disagreements.push(format!(
                        "it recorded charge {:?}, which is not among its charges at the provider",
                        recorded.unwrap_or("")
                    ));
                }
            }
            PaymentStatus::Pending => {
                let settled: Vec<&Charge> = charges.iter().copied().filter(|c| c.created_at <= cutoff).collect();
                if !settled.is_empty() {
                    found.push(Violation::new(
                        LostPayment,
                        id,
                        ids(&settled),
                        format!(
                            "charged at the provider, yet still pending: {} {} taken, no purchase recorded",
                            payment.amount_cents, payment.currency
                        ),
                    ));
                } else if charges.is_empty() && payment.created_at <= cutoff {
                    found.push(Violation::new(
                        PaymentInDoubt,
                        id,
                        vec![payment.idempotency_key.clone()],
                        format!(
                            "pending since {} and never charged: the client was not told it succeeded",
                            payment.created_at.to_rfc3339()
                        ),
                    ));
                }
            }
            // Failed means no money was taken: a charge the provider holds contradicts it.
            PaymentStatus::Failed => {
                let settled: Vec<&Charge> = charges.iter().copied().filter(|c| c.created_at <= cutoff).collect();
                if !settled.is_empty() {
                    found.push(Violation::new(
                        LostPayment,
                        id,
                        ids(&settled),
                        format!(
                            "charged at the provider, yet marked failed: {} {} taken, no purchase recorded",
                            payment.amount_cents, payment.currency
                        ),
                    ));
                }
            }
        }
        if !disagreements.is_empty() {
            found.push(Violation::new(ChargeMismatch, id, ids(charges), disagreements.join("; ")));
        }
    }
    found
}

/// Credentials against profiles, stalled signups and owed compensations.
pub fn accounts(snapshot: &Snapshot, cutoff: DateTime<Utc>) -> Vec<Violation> {
    use ViolationKind::*;
    let mut found = Vec::new();
    let profiles: HashSet<Uuid> = snapshot.profiles.iter().map(|p| p.user_id).collect();
    let credentials: HashSet<Uuid> = snapshot.credentials.iter().map(|c| c.user_id).collect();
    for credential in snapshot.credentials.iter().filter(|c| c.created_at <= cutoff) {
        let has_profile = profiles.contains(&credential.user_id);
        match credential.status {
            CredentialStatus::Active if !has_profile => found.push(Violation::new(
                OrphanCredentials,
                credential.user_id,
                Vec::new(),
                "an account that can log in, with no profile".to_owned(),
            )),
            CredentialStatus::Active => {}
            CredentialStatus::Pending => found.push(Violation::new(
                StalledSignup,
                credential.user_id,
                Vec::new(),
                format!(
                    "credentials pending since {} ({}): the signup saga neither finished nor was compensated",
                    credential.created_at.to_rfc3339(),
                    if has_profile { "a profile exists" } else { "no profile" }
                ),
            )),
        }
    }
    for profile in snapshot.profiles.iter().filter(|p| p.created_at <= cutoff) {
        if !credentials.contains(&profile.user_id) {
            found.push(Violation::new(
                OrphanProfile,
                profile.user_id,
                Vec::new(),
                "a profile with no credentials".to_owned(),
            ));
        }
    }
    for owed in snapshot.compensations.iter().filter(|c| c.created_at <= cutoff) {
        found.push(Violation::new(
            UnpaidCompensation,
            owed.user_id,
            Vec::new(),
            format!(
                "the saga has owed users-service this profile's delete since {} ({} failed attempts{})",
                owed.created_at.to_rfc3339(),
                owed.attempts,
                owed.last_error.as_deref().map(|e| format!(", last: {e}")).unwrap_or_default()
            ),
        ));
    }
    found
}

fn notification_ids(notifications: &[&Notification]) -> Vec<String> {
    notifications.iter().map(|n| n.notification_id.to_string()).collect()
}

/// One receipt per succeeded payment, one welcome per account, and no notification about
/// nothing.
pub fn notifications(snapshot: &Snapshot, cutoff: DateTime<Utc>) -> Vec<Violation> {
    use ViolationKind::*;
    let mut found = Vec::new();
    let succeeded: HashSet<Uuid> =
        snapshot.payments.iter().filter(|p| p.status == PaymentStatus::Succeeded).map(|p| p.payment_id).collect();
    let accounts: HashSet<Uuid> = snapshot.credentials.iter().map(|c| c.user_id).collect();
    let mut receipts: HashMap<Uuid, Vec<&Notification>> = HashMap::new();
    let mut welcomes: HashMap<Uuid, Vec<&Notification>> = HashMap::new();
    for n in &snapshot.notifications {
        let about = match (n.kind.as_str(), n.payment_id) {
            (KIND_RECEIPT, Some(payment_id)) => {
                receipts.entry(payment_id).or_default().push(n);
                (!succeeded.contains(&payment_id))
                    .then(|| format!("a receipt for payment {payment_id}, which is not a succeeded payment"))
            }
            (KIND_RECEIPT, None) => Some("a receipt that names no payment".to_owned()),
            (KIND_WELCOME, _) => {
                welcomes.entry(n.user_id).or_default().push(n);
                (!accounts.contains(&n.user_id))
                    .then(|| format!("a welcome for user {}, who has no credentials", n.user_id))
            }
            (other, _) => Some(format!("a notification of unknown kind {other:?}")),
        };
        if let Some(detail) = about.filter(|_| n.created_at <= cutoff) {
            found.push(Violation::new(OrphanNotification, n.notification_id, vec![n.event_id.to_string()], detail));
        }
    }

    for payment in snapshot.payments.iter().filter(|p| p.status == PaymentStatus::Succeeded) {
        match receipts.get(&payment.payment_id).map(Vec::as_slice).unwrap_or_default() {
            [] if payment.updated_at <= cutoff => found.push(Violation::new(
                MissingReceipt,
                payment.payment_id,
                Vec::new(),
                format!("succeeded at {} and no receipt was recorded", payment.updated_at.to_rfc3339()),
            )),
            [] | [_] => {}
            many => found.push(Violation::new(
                DuplicateReceipt,
                payment.payment_id,
                notification_ids(many),
                format!("{} receipts for one payment", many.len()),
            )),
        }
    }
    for account in snapshot.credentials.iter().filter(|c| c.status == CredentialStatus::Active) {
        match welcomes.get(&account.user_id).map(Vec::as_slice).unwrap_or_default() {
            [] if account.created_at <= cutoff => found.push(Violation::new(
                MissingWelcome,
                account.user_id,
                Vec::new(),
                format!("signed up at {} and no welcome was recorded", account.created_at.to_rfc3339()),
            )),
            [] | [_] => {}
            many => found.push(Violation::new(
                DuplicateWelcome,
                account.user_id,
                notification_ids(many),
                format!("{} welcomes for one account", many.len()),
            )),
        }
    }
    found
}

/// One email at extsim per notification that was emailed, under its event id. A welcome is
/// always emailed; a receipt when it recorded an email id (the user may have opted out). The
/// email goes out before the notification is recorded, so no age bound applies.
pub fn emails(snapshot: &Snapshot) -> Vec<Violation> {
    use ViolationKind::*;
    let mut by_key: HashMap<&str, Vec<&Email>> = HashMap::new();
    for email in &snapshot.emails {
        by_key.entry(email.idempotency_key.as_str()).or_default().push(email);
    }
    let mut found = Vec::new();
    for n in &snapshot.notifications {
        let key = n.event_id.to_string();
        let sent = by_key.get(key.as_str()).map(Vec::as_slice).unwrap_or_default();
        let expected = n.email_id.is_some() || n.kind == KIND_WELCOME;
        match sent {
            [] if expected => found.push(Violation::new(
                MissingEmail,
                n.notification_id,
                vec![key],
                format!(
                    "a {} {} but extsim holds no email under its event id",
                    n.kind,
                    match &n.email_id {
                        Some(email_id) => format!("that recorded email {email_id}"),
                        None => "that must be emailed".to_owned(),
                    }
                ),
            )),
            [] | [_] => {}
            many => found.push(Violation::new(
                DuplicateEmail,
                n.notification_id,
                many.iter().map(|e| e.email_id.clone()).collect(),
                format!("{} emails under event id {key} for one {}", many.len(), n.kind),
            )),
        }
    }
    found
}

/// How many violations of each kind, every kind listed (zero included, so a report shows
/// what was checked).
pub fn counts(violations: &[Violation]) -> BTreeMap<ViolationKind, usize> {
    let mut counts: BTreeMap<ViolationKind, usize> = ViolationKind::ALL.iter().map(|k| (*k, 0)).collect();
    for v in violations {
        *counts.entry(v.kind).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests;
