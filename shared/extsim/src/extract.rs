//! Extractors whose rejections speak our error shape instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::{Json, http::HeaderValue};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Longest idempotency key accepted, as Stripe does.
const MAX_KEY_LEN: usize = 255;

/// The validated `Idempotency-Key` header: 1..=255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(pub(crate) String);

impl IdempotencyKey {
    fn parse(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let visible = |b: &u8| b.is_ascii_graphic();
        if (1..=MAX_KEY_LEN).contains(&bytes.len()) && bytes.iter().all(visible) {
            // All bytes are ASCII, so this cannot fail.
            value.to_str().ok().map(|s| IdempotencyKey(s.to_owned()))
        } else {
            None
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.headers.get("idempotency-key").and_then(IdempotencyKey::parse).ok_or(Error::MissingIdempotencyKey)
    }
}

/// `axum::Json`, but a malformed body is a `400 invalid_request` in our shape.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(Error::InvalidRequest(rejection.body_text())),
        }
    }
}

/// `axum::extract::Query`, but a malformed query is a `400 invalid_request` in our shape.
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(Error::InvalidRequest(rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Option<IdempotencyKey> {
        IdempotencyKey::parse(&HeaderValue::from_bytes(raw).ok()?)
    }

    #[test]
    fn keys_must_be_1_to_255_visible_ascii_characters() {
        assert_eq!(parse(b"order-42"), Some(IdempotencyKey("order-42".into())));
        assert!(parse(&[b'k'; 255]).is_some());
        assert_eq!(parse(&[b'k'; 256]), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"two words"), None);
        assert_eq!(parse(b"tab\there"), None);
        assert_eq!(parse("caf\u{e9}".as_bytes()), None);
    }
}
