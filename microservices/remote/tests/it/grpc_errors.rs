//! The shared `Error` across a gRPC status and back: lossless for every kind, and
//! `Unavailable` naming the dependency for any status that is not an archlab error.

use archlab_kernel::{Error, ErrorKind};
use archlab_remote::errors::{CODE_KEY, KIND_KEY, from_status, grpc_code, to_status};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

const ALL_KINDS: [ErrorKind; 11] = [
    ErrorKind::BadRequest,
    ErrorKind::Unauthorized,
    ErrorKind::NotFound,
    ErrorKind::MethodNotAllowed,
    ErrorKind::Conflict,
    ErrorKind::PayloadTooLarge,
    ErrorKind::UnsupportedMediaType,
    ErrorKind::Unprocessable,
    ErrorKind::BadGateway,
    ErrorKind::Unavailable,
    ErrorKind::Internal,
];

#[test]
fn every_kind_round_trips_exactly() {
    for kind in ALL_KINDS {
        let original =
            Error::new(kind, format!("{kind:?}_code").to_lowercase(), format!("what went wrong: {kind:?} ✓"));
        let status = to_status(original.clone());
        assert_eq!(status.code(), grpc_code(kind));
        assert_eq!(status.message(), original.message);
        assert_eq!(from_status(&status, "users-service"), original, "{kind:?}");
    }
}

#[test]
fn the_kind_travels_under_its_json_name() {
    for kind in ALL_KINDS {
        let status = to_status(Error::new(kind, "c", "m"));
        let json = serde_json::to_value(kind).unwrap();
        assert_eq!(status.metadata().get(KIND_KEY).unwrap().to_str().unwrap(), json.as_str().unwrap());
        assert_eq!(status.metadata().get(CODE_KEY).unwrap(), "c");
    }
}

#[test]
fn the_usual_kinds_map_to_the_usual_codes() {
    assert_eq!(to_status(Error::validation("x")).code(), Code::InvalidArgument);
    assert_eq!(to_status(Error::new(ErrorKind::BadRequest, "bad_json", "x")).code(), Code::InvalidArgument);
    assert_eq!(to_status(Error::not_found("user")).code(), Code::NotFound);
    assert_eq!(to_status(Error::conflict("profile_exists", "x")).code(), Code::AlreadyExists);
    assert_eq!(to_status(Error::unauthorized("x")).code(), Code::Unauthenticated);
    assert_eq!(to_status(Error::unavailable("db", "x")).code(), Code::Unavailable);
    let bad_gateway = Error::new(ErrorKind::BadGateway, "payment_failed", "x");
    let status = to_status(bad_gateway.clone());
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(from_status(&status, "payments-service"), bad_gateway, "the kind survives the shared code");
    let status = to_status(Error::new(ErrorKind::Internal, "internal", "internal error"));
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(status.message(), "internal error");
}

#[test]
fn a_status_without_metadata_is_unavailable_naming_the_dependency() {
    for status in [Status::unavailable("tcp connect error"), Status::not_found("nope"), Status::unknown("?")] {
        let e = from_status(&status, "auth-service");
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(e.code, "dependency_unavailable");
        assert!(e.message.starts_with("auth-service unavailable: "), "{}", e.message);
    }
}

#[test]
fn an_unknown_kind_is_not_trusted() {
    let mut status = Status::not_found("x");
    status.metadata_mut().insert(KIND_KEY, MetadataValue::from_static("teapot"));
    status.metadata_mut().insert(CODE_KEY, MetadataValue::from_static("short_and_stout"));
    assert_eq!(from_status(&status, "users-service").kind, ErrorKind::Unavailable);
}
