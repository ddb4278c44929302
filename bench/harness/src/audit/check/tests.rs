//! Each rule on made-up data: a clean world passes, and each corruption is reported as
//! exactly one violation of its kind, with the right ids.

use super::ViolationKind::*;
use super::*;

const SETTLE: Duration = Duration::from_secs(10);
/// Seconds before `now`: older than the settle bound.
const OLD: i64 = 60;
/// Seconds before `now`: within the settle bound, still in flight.
const YOUNG: i64 = 3;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_268_800, 0).expect("a valid time")
}

fn ago(secs: i64) -> DateTime<Utc> {
    now() - TimeDelta::seconds(secs)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const ADA: u128 = 1;
const BOB: u128 = 2;
const NEWCOMER: u128 = 3;
const ADA_PAYMENT: u128 = 101;
const BOB_PAYMENT: u128 = 102;
const ANOTHER_PAYMENT: u128 = 103;

fn welcome_notification(user: Uuid) -> Uuid {
    Uuid::new_v5(&user, b"welcome notification")
}

fn welcome_event(user: Uuid) -> Uuid {
    Uuid::new_v5(&user, b"welcome")
}

fn receipt_notification(payment: Uuid) -> Uuid {
    Uuid::new_v5(&payment, b"receipt notification")
}

fn charge_id(payment: Uuid) -> String {
    format!("ch_{}", payment.simple())
}

fn email_id(key: Uuid) -> String {
    format!("em_{}", key.simple())
}

/// The charge the purchase flow makes: the payment id as key and reference.
fn charge_for(payment: Uuid, age: i64) -> Charge {
    Charge {
        charge_id: charge_id(payment),
        idempotency_key: payment.to_string(),
        amount_cents: 1999,
        currency: "EUR".into(),
        reference: Some(payment.to_string()),
        created_at: ago(age),
    }
}

fn email_for(event: Uuid, age: i64) -> Email {
    Email {
        email_id: email_id(event),
        idempotency_key: event.to_string(),
        to: "someone@example.com".into(),
        subject: "Hello".into(),
        created_at: ago(age),
    }
}

fn empty() -> Snapshot {
    Snapshot::empty(now())
}

/// A complete signup `age` seconds ago: credentials, profile, welcome, its email.
fn signup(s: &mut Snapshot, user: Uuid, age: i64) {
    let event_id = welcome_event(user);
    s.credentials.push(Credential { user_id: user, status: CredentialStatus::Active, created_at: ago(age) });
    s.profiles.push(Profile { user_id: user, created_at: ago(age) });
    s.emails.push(email_for(event_id, age));
    s.notifications.push(Notification {
        notification_id: welcome_notification(user),
        event_id,
        user_id: user,
        kind: KIND_WELCOME.into(),
        payment_id: None,
        email_id: Some(email_id(event_id)),
        created_at: ago(age),
    });
}

/// A pending payment row, as the flow writes before charging.
fn pending(s: &mut Snapshot, user: Uuid, payment: Uuid, age: i64) {
    s.payments.push(Payment {
        payment_id: payment,
        user_id: user,
        idempotency_key: format!("order-{}", payment.simple()),
        amount_cents: 1999,
        currency: "EUR".into(),
        status: PaymentStatus::Pending,
        provider_charge_id: None,
        created_at: ago(age),
        updated_at: ago(age),
    });
}

/// A complete purchase `age` seconds ago: payment, charge, receipt, and its email when the
/// user has not opted out of receipts.
fn purchase(s: &mut Snapshot, user: Uuid, payment: Uuid, age: i64, emailed: bool) {
    pending(s, user, payment, age);
    let row = s.payments.last_mut().expect("just pushed");
    row.status = PaymentStatus::Succeeded;
    row.provider_charge_id = Some(charge_id(payment));
    s.charges.push(charge_for(payment, age));
    let event_id = Uuid::new_v5(&payment, b"receipt");
    if emailed {
        s.emails.push(email_for(event_id, age));
    }
    s.notifications.push(Notification {
        notification_id: receipt_notification(payment),
        event_id,
        user_id: user,
        kind: KIND_RECEIPT.into(),
        payment_id: Some(payment),
        email_id: emailed.then(|| email_id(event_id)),
        created_at: ago(age),
    });
}

/// Two users, one purchase each; Bob opted out of receipt emails.
fn world() -> Snapshot {
    let mut s = empty();
    signup(&mut s, id(ADA), OLD);
    signup(&mut s, id(BOB), OLD);
    purchase(&mut s, id(ADA), id(ADA_PAYMENT), OLD, true);
    purchase(&mut s, id(BOB), id(BOB_PAYMENT), OLD, false);
    s
}

/// `(kind, id, related)` of every violation.
fn found(s: &Snapshot) -> Vec<(ViolationKind, String, Vec<String>)> {
    audit(s, SETTLE).into_iter().map(|v| (v.kind, v.id, v.related)).collect()
}

fn one(kind: ViolationKind, id: impl ToString, related: &[String]) -> Vec<(ViolationKind, String, Vec<String>)> {
    vec![(kind, id.to_string(), related.to_vec())]
}

fn payment_mut(s: &mut Snapshot, payment: u128) -> &mut Payment {
    s.payments.iter_mut().find(|p| p.payment_id == id(payment)).expect("a payment of the world")
}

#[test]
fn a_clean_world_has_no_violation() {
    assert_eq!(found(&world()), []);
    assert_eq!(found(&empty()), []);
}

#[test]
fn what_is_still_in_flight_is_not_a_violation_yet() {
    let mut s = world();
    // A signup whose welcome is on its way, a purchase whose receipt is, a payment waiting
    // for the provider, one charged and not yet recorded, a saga between its steps.
    s.credentials.push(Credential { user_id: id(NEWCOMER), status: CredentialStatus::Pending, created_at: ago(YOUNG) });
    signup(&mut s, id(30), YOUNG);
    s.notifications.retain(|n| n.notification_id != welcome_notification(id(30)));
    purchase(&mut s, id(ADA), id(40), YOUNG, true);
    s.notifications.retain(|n| n.notification_id != receipt_notification(id(40)));
    pending(&mut s, id(ADA), id(41), YOUNG);
    pending(&mut s, id(ADA), id(42), OLD);
    s.charges.push(charge_for(id(42), YOUNG));
    s.profiles.push(Profile { user_id: id(43), created_at: ago(YOUNG) });
    s.compensations.push(Compensation { user_id: id(44), created_at: ago(YOUNG), attempts: 0, last_error: None });
    assert_eq!(found(&s), []);
}

#[test]
fn a_charge_for_a_payment_still_pending_is_a_lost_payment() {
    let mut s = world();
    pending(&mut s, id(ADA), id(ANOTHER_PAYMENT), OLD);
    s.charges.push(charge_for(id(ANOTHER_PAYMENT), OLD - 1));
    assert_eq!(found(&s), one(LostPayment, id(ANOTHER_PAYMENT), &[charge_id(id(ANOTHER_PAYMENT))]));
}

#[test]
fn a_failed_payment_is_clean_without_a_charge_and_lost_with_one() {
    let mut s = world();
    pending(&mut s, id(ADA), id(ANOTHER_PAYMENT), OLD);
    if let Some(p) = s.payments.last_mut() {
        p.status = PaymentStatus::Failed;
    }
    assert_eq!(found(&s), [], "failed with no charge: nothing was taken");
    s.charges.push(charge_for(id(ANOTHER_PAYMENT), OLD - 1));
    assert_eq!(found(&s), one(LostPayment, id(ANOTHER_PAYMENT), &[charge_id(id(ANOTHER_PAYMENT))]));
}

#[test]
fn a_second_charge_for_one_payment_is_a_double_charge() {
    let mut s = world();
    // Under another key, as a retry that forgot its key would; the reference still names it.
    let mut second = charge_for(id(ADA_PAYMENT), OLD);
    second.charge_id = "ch_second".into();
    second.idempotency_key = "some-other-key".into();
    s.charges.push(second);
    assert_eq!(found(&s), one(DoubleCharge, id(ADA_PAYMENT), &[charge_id(id(ADA_PAYMENT)), "ch_second".into()]));
}

#[test]
fn two_charges_under_one_key_without_a_reference_are_a_double_charge() {
    let mut s = world();
    let mut second = charge_for(id(BOB_PAYMENT), OLD);
    second.charge_id = "ch_again".into();
    second.reference = None;
    s.charges.push(second);
    assert_eq!(found(&s), one(DoubleCharge, id(BOB_PAYMENT), &[charge_id(id(BOB_PAYMENT)), "ch_again".into()]));
}

#[test]
fn two_charges_under_one_key_naming_no_payment_are_a_double_charge() {
    let mut s = world();
    for n in 1..=2 {
        s.charges.push(Charge {
            charge_id: format!("ch_by_hand_{n}"),
            idempotency_key: "by-hand".into(),
            amount_cents: 500,
            currency: "EUR".into(),
            reference: None,
            // Young, so that only the double charge is reported, not two orphans.
            created_at: ago(YOUNG),
        });
    }
    assert_eq!(found(&s), one(DoubleCharge, "by-hand", &["ch_by_hand_1".into(), "ch_by_hand_2".into()]));
}

#[test]
fn a_charge_naming_no_payment_is_an_orphan_once_settled() {
    let mut s = world();
    let mut stray = charge_for(id(999), OLD);
    stray.charge_id = "ch_stray".into();
    s.charges.push(stray.clone());
    assert_eq!(found(&s), one(OrphanCharge, "ch_stray", &[id(999).to_string()]));

    // Not a UUID at all, as a charge made by hand would be.
    let mut s = world();
    stray.idempotency_key = "by-hand".into();
    stray.reference = None;
    s.charges.push(stray.clone());
    assert_eq!(found(&s), one(OrphanCharge, "ch_stray", &["by-hand".into()]));

    // A purchase begun after the databases were read has a charge and no row yet.
    let mut s = world();
    stray.created_at = ago(YOUNG);
    s.charges.push(stray);
    assert_eq!(found(&s), []);
}

#[test]
fn a_succeeded_payment_without_a_charge_is_uncharged() {
    let mut s = world();
    s.charges.retain(|c| c.charge_id != charge_id(id(ADA_PAYMENT)));
    assert_eq!(found(&s), one(UnchargedPayment, id(ADA_PAYMENT), &[charge_id(id(ADA_PAYMENT))]));
}

#[test]
fn a_payment_pending_past_the_bound_without_a_charge_is_in_doubt() {
    let mut s = world();
    pending(&mut s, id(BOB), id(ANOTHER_PAYMENT), OLD);
    assert_eq!(
        found(&s),
        one(PaymentInDoubt, id(ANOTHER_PAYMENT), &[format!("order-{}", id(ANOTHER_PAYMENT).simple())])
    );
}

#[test]
fn a_charge_that_disagrees_with_its_payment_is_a_mismatch() {
    let mut s = world();
    s.charges.iter_mut().find(|c| c.charge_id == charge_id(id(ADA_PAYMENT))).expect("ada's charge").amount_cents = 1;
    assert_eq!(found(&s), one(ChargeMismatch, id(ADA_PAYMENT), &[charge_id(id(ADA_PAYMENT))]));

    let mut s = world();
    payment_mut(&mut s, BOB_PAYMENT).provider_charge_id = Some("ch_elsewhere".into());
    assert_eq!(found(&s), one(ChargeMismatch, id(BOB_PAYMENT), &[charge_id(id(BOB_PAYMENT))]));
}

#[test]
fn active_credentials_without_a_profile_are_orphans() {
    let mut s = world();
    s.profiles.retain(|p| p.user_id != id(ADA));
    assert_eq!(found(&s), one(OrphanCredentials, id(ADA), &[]));
}

#[test]
fn a_profile_without_credentials_is_an_orphan_once_settled() {
    let mut s = world();
    s.profiles.push(Profile { user_id: id(NEWCOMER), created_at: ago(OLD) });
    assert_eq!(found(&s), one(OrphanProfile, id(NEWCOMER), &[]));
}

#[test]
fn credentials_pending_past_the_bound_are_a_stalled_signup() {
    let mut s = world();
    // Pending credentials are reported as a stalled saga, not also as orphans.
    s.credentials.push(Credential { user_id: id(NEWCOMER), status: CredentialStatus::Pending, created_at: ago(OLD) });
    assert_eq!(found(&s), one(StalledSignup, id(NEWCOMER), &[]));
}

#[test]
fn a_profile_delete_owed_past_the_bound_is_an_unpaid_compensation() {
    let mut s = world();
    s.compensations.push(Compensation {
        user_id: id(NEWCOMER),
        created_at: ago(OLD),
        attempts: 3,
        last_error: Some("users-service unavailable".into()),
    });
    let report = audit(&s, SETTLE);
    assert_eq!(found(&s), one(UnpaidCompensation, id(NEWCOMER), &[]));
    assert!(report[0].detail.contains("3 failed attempts, last: users-service unavailable"), "{}", report[0].detail);
}

#[test]
fn a_recorded_payment_without_a_receipt_is_missing_one() {
    let mut s = world();
    // The row goes; its email stays at extsim, as when the row is deleted by hand.
    s.notifications.retain(|n| n.notification_id != receipt_notification(id(ADA_PAYMENT)));
    assert_eq!(found(&s), one(MissingReceipt, id(ADA_PAYMENT), &[]));
}

#[test]
fn two_receipts_for_one_payment_are_a_duplicate() {
    let mut s = world();
    let mut second = s
        .notifications
        .iter()
        .find(|n| n.notification_id == receipt_notification(id(BOB_PAYMENT)))
        .expect("bob's receipt")
        .clone();
    second.notification_id = id(500);
    second.event_id = id(501);
    s.notifications.push(second);
    let both = [receipt_notification(id(BOB_PAYMENT)).to_string(), id(500).to_string()];
    assert_eq!(found(&s), one(DuplicateReceipt, id(BOB_PAYMENT), &both));
}

#[test]
fn an_account_without_a_welcome_is_missing_one() {
    let mut s = world();
    s.notifications.retain(|n| n.notification_id != welcome_notification(id(BOB)));
    assert_eq!(found(&s), one(MissingWelcome, id(BOB), &[]));
}

#[test]
fn two_welcomes_for_one_account_are_a_duplicate() {
    let mut s = world();
    let mut second = s
        .notifications
        .iter()
        .find(|n| n.notification_id == welcome_notification(id(ADA)))
        .expect("ada's welcome")
        .clone();
    second.notification_id = id(600);
    second.event_id = id(601);
    second.email_id = Some(email_id(id(601)));
    s.notifications.push(second);
    s.emails.push(email_for(id(601), OLD));
    let both = [welcome_notification(id(ADA)).to_string(), id(600).to_string()];
    assert_eq!(found(&s), one(DuplicateWelcome, id(ADA), &both));
}

#[test]
fn a_notification_about_nothing_is_an_orphan() {
    let receipt = Notification {
        notification_id: id(700),
        event_id: id(701),
        user_id: id(ADA),
        kind: KIND_RECEIPT.into(),
        payment_id: Some(id(999)),
        email_id: None,
        created_at: ago(OLD),
    };
    let mut s = world();
    s.notifications.push(receipt.clone());
    assert_eq!(found(&s), one(OrphanNotification, id(700), &[id(701).to_string()]));

    // A receipt for a payment that is not succeeded (and is in doubt itself).
    let mut s = world();
    pending(&mut s, id(ADA), id(999), YOUNG);
    s.notifications.push(receipt.clone());
    assert_eq!(found(&s), one(OrphanNotification, id(700), &[id(701).to_string()]));

    let mut s = world();
    let welcome = Notification { kind: KIND_WELCOME.into(), user_id: id(NEWCOMER), payment_id: None, ..receipt };
    s.emails.push(email_for(welcome.event_id, OLD));
    s.notifications.push(welcome);
    assert_eq!(found(&s), one(OrphanNotification, id(700), &[id(701).to_string()]));
}

#[test]
fn an_emailed_notification_without_its_email_is_missing_one() {
    let mut s = world();
    s.emails.retain(|e| e.idempotency_key != welcome_event(id(BOB)).to_string());
    assert_eq!(found(&s), one(MissingEmail, welcome_notification(id(BOB)), &[welcome_event(id(BOB)).to_string()]));

    // A receipt that recorded an email id must have it at extsim too.
    let mut s = world();
    let receipt_event = Uuid::new_v5(&id(ADA_PAYMENT), b"receipt");
    s.emails.retain(|e| e.idempotency_key != receipt_event.to_string());
    assert_eq!(found(&s), one(MissingEmail, receipt_notification(id(ADA_PAYMENT)), &[receipt_event.to_string()]));
}

#[test]
fn two_emails_for_one_notification_are_a_duplicate() {
    let mut s = world();
    let mut again = email_for(welcome_event(id(ADA)), OLD);
    again.email_id = "em_again".into();
    s.emails.push(again);
    let both = [email_id(welcome_event(id(ADA))), "em_again".into()];
    assert_eq!(found(&s), one(DuplicateEmail, welcome_notification(id(ADA)), &both));
}

#[test]
fn violations_come_sorted_and_counted_for_every_kind() {
    let mut s = world();
    s.profiles.clear();
    s.charges.clear();
    let violations = audit(&s, SETTLE);
    let kinds: Vec<ViolationKind> = violations.iter().map(|v| v.kind).collect();
    assert_eq!(kinds, [UnchargedPayment, UnchargedPayment, OrphanCredentials, OrphanCredentials]);
    assert!(violations[0].id < violations[1].id && violations[2].id < violations[3].id);
    let counts = counts(&violations);
    assert_eq!(counts.len(), ViolationKind::ALL.len(), "every kind is listed");
    assert_eq!((counts[&UnchargedPayment], counts[&OrphanCredentials], counts[&LostPayment]), (2, 2, 0));
}

#[test]
fn kinds_are_named_and_have_a_subject() {
    let names: HashSet<&str> = ViolationKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), ViolationKind::ALL.len());
    assert_eq!(DoubleCharge.name(), "double_charge");
    assert_eq!(
        (OrphanCharge.subject(), MissingEmail.subject(), StalledSignup.subject()),
        ("charge", "notification", "user")
    );
    let json = serde_json::to_string(&counts(&[])).expect("counts serialize");
    let back: BTreeMap<ViolationKind, usize> = serde_json::from_str(&json).expect("and read back");
    assert_eq!(back, counts(&[]));
}

#[test]
fn the_docs_list_every_kind_and_name_files_that_exist() {
    let doc = include_str!("../../../../../docs/audit.md");
    for kind in ViolationKind::ALL {
        let row = format!("| `{}` | {} |", kind.name(), kind.subject());
        assert!(doc.contains(&row), "docs/audit.md has no row {row:?}");
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for path in doc.split('`').filter(|s| s.ends_with(".rs") && s.contains('/')) {
        assert!(root.join(path).is_file(), "docs/audit.md names {path}, which does not exist");
    }
}
