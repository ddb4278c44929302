//! Proto messages ⇄ domain types.
//!
//! The wire carries plain strings and integers; the domain carries validated values. Going
//! in (a request on the server, an answer on the client) everything is parsed exactly as the
//! public HTTP edge would parse it, so a malformed message becomes `validation_failed`,
//! never a panic and never a value the domain would not have accepted itself.

use archlab_auth::Session;
use archlab_kernel::{Email, Error, Money, Result};
use archlab_notifications::{Delivery, EventKind, NotificationEvent};
use archlab_proto::auth::v1 as auth_pb;
use archlab_proto::notifications::v1 as notifications_pb;
use archlab_proto::users::v1 as users_pb;
use archlab_users::{DisplayName, NewProfile, Preferences, Profile, UserStatus};
use chrono::{DateTime, Utc};
use notifications_pb::notification_event::Kind;
use uuid::Uuid;

/// A UUID field, or `validation_failed` naming the field.
pub(crate) fn uuid(field: &str, raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| Error::validation(format!("{field} must be a UUID")))
}

/// Times travel as Unix microseconds: Postgres' precision, so nothing stored is lost.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(field: &str, micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| Error::validation(format!("{field} is out of range")))
}

// ---- auth

pub(crate) fn session_to_pb(s: &Session) -> auth_pb::Session {
    auth_pb::Session { user_id: s.user_id.to_string(), expires_at_unix_micros: micros(s.expires_at) }
}

pub(crate) fn session_from_pb(s: auth_pb::Session) -> Result<Session> {
    Ok(Session { user_id: uuid("user_id", &s.user_id)?, expires_at: time("expires_at", s.expires_at_unix_micros)? })
}

// ---- users

pub(crate) fn new_profile_to_pb(p: &NewProfile) -> users_pb::CreateProfileRequest {
    users_pb::CreateProfileRequest {
        user_id: p.user_id.to_string(),
        email: p.email.as_str().to_owned(),
        name: p.name.as_str().to_owned(),
    }
}

pub(crate) fn new_profile_from_pb(p: users_pb::CreateProfileRequest) -> Result<NewProfile> {
    Ok(NewProfile {
        user_id: uuid("user_id", &p.user_id)?,
        email: Email::parse(&p.email)?,
        name: DisplayName::parse(&p.name)?,
    })
}

pub(crate) fn profile_to_pb(p: &Profile) -> users_pb::Profile {
    let status = match p.status {
        UserStatus::Active => users_pb::UserStatus::Active,
        UserStatus::Suspended => users_pb::UserStatus::Suspended,
    };
    users_pb::Profile {
        user_id: p.user_id.to_string(),
        email: p.email.clone(),
        name: p.name.clone(),
        status: status.into(),
        preferences: Some(users_pb::Preferences {
            email_receipts: p.preferences.email_receipts,
            marketing_emails: p.preferences.marketing_emails,
        }),
        created_at_unix_micros: micros(p.created_at),
    }
}

pub(crate) fn profile_from_pb(p: users_pb::Profile) -> Result<Profile> {
    let status = match users_pb::UserStatus::try_from(p.status) {
        Ok(users_pb::UserStatus::Active) => UserStatus::Active,
        Ok(users_pb::UserStatus::Suspended) => UserStatus::Suspended,
        Ok(users_pb::UserStatus::Unspecified) | Err(_) => {
            return Err(Error::validation("status is missing or unknown"));
        }
    };
    let prefs = p.preferences.ok_or_else(|| Error::validation("preferences are missing"))?;
    Ok(Profile {
        user_id: uuid("user_id", &p.user_id)?,
        email: p.email,
        name: p.name,
        status,
        preferences: Preferences { email_receipts: prefs.email_receipts, marketing_emails: prefs.marketing_emails },
        created_at: time("created_at", p.created_at_unix_micros)?,
    })
}

// ---- notifications

pub(crate) fn event_to_pb(e: &NotificationEvent) -> notifications_pb::NotificationEvent {
    let kind = match &e.kind {
        EventKind::Welcome { name } => Kind::Welcome(notifications_pb::Welcome { name: name.clone() }),
        EventKind::Receipt { payment_id, amount } => Kind::Receipt(notifications_pb::Receipt {
            payment_id: payment_id.to_string(),
            amount_cents: amount.amount_cents,
            currency: amount.currency.code().to_owned(),
        }),
    };
    notifications_pb::NotificationEvent {
        event_id: e.event_id.to_string(),
        user_id: e.user_id.to_string(),
        email_to: e.email_to.clone(),
        kind: Some(kind),
    }
}

pub(crate) fn event_from_pb(e: notifications_pb::NotificationEvent) -> Result<NotificationEvent> {
    let kind = match e.kind {
        Some(Kind::Welcome(w)) => EventKind::Welcome { name: w.name },
        Some(Kind::Receipt(r)) => EventKind::Receipt {
            payment_id: uuid("payment_id", &r.payment_id)?,
            amount: Money::parse(r.amount_cents, &r.currency)?,
        },
        None => return Err(Error::validation("event kind is missing")),
    };
    Ok(NotificationEvent {
        event_id: uuid("event_id", &e.event_id)?,
        user_id: uuid("user_id", &e.user_id)?,
        email_to: e.email_to,
        kind,
    })
}

pub(crate) fn delivery_to_pb(d: &Delivery) -> notifications_pb::Delivery {
    notifications_pb::Delivery { notification_id: d.notification_id.to_string(), duplicate: d.duplicate }
}

pub(crate) fn delivery_from_pb(d: notifications_pb::Delivery) -> Result<Delivery> {
    Ok(Delivery { notification_id: uuid("notification_id", &d.notification_id)?, duplicate: d.duplicate })
}
