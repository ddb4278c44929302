//! `codec`: the payment messages serialized and read back, serde_json vs prost.
//!
//! JSON sides use the real types: `archlab_payments::Payment` (the record an owner reads),
//! `archlab_payments::Charge` (the provider's answer) and, for the charge request, a struct
//! of exactly the body shared/payments/src/provider.rs sends. The protobuf sides use the
//! bench's wire twins in proto/bench.proto (the workspace's protos carry no payments package:
//! payments-service is reached over HTTP only), converted the way shared/proto's
//! conventions say (UUIDs as strings, times as Unix microseconds).

use archlab_benches::pb;
use archlab_payments::{Charge, Payment, PaymentStatus};
use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::Duration;
use uuid::Uuid;

/// The JSON body of `POST /v1/charges`, as the payments provider adapter writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ChargeRequest {
    amount_cents: i64,
    currency: String,
    reference: String,
}

fn payment() -> Payment {
    Payment {
        payment_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        status: PaymentStatus::Succeeded,
        amount_cents: 1_999,
        currency: "EUR".to_owned(),
        created_at: chrono::DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap_or_default(),
    }
}

fn payment_pb(p: &Payment) -> pb::PaymentRecord {
    pb::PaymentRecord {
        payment_id: p.payment_id.to_string(),
        status: p.status.as_str().to_owned(),
        amount_cents: p.amount_cents,
        currency: p.currency.clone(),
        created_at_unix_micros: p.created_at.timestamp_micros(),
    }
}

fn payment_from_pb(m: pb::PaymentRecord) -> Payment {
    Payment {
        payment_id: m.payment_id.parse().expect("a UUID"),
        status: archlab_kernel::wire::parse(&m.status).expect("a status"),
        amount_cents: m.amount_cents,
        currency: m.currency,
        created_at: chrono::DateTime::from_timestamp_micros(m.created_at_unix_micros).expect("a time"),
    }
}

fn codec(c: &mut Criterion) {
    let record = payment();
    let request = ChargeRequest {
        amount_cents: record.amount_cents,
        currency: record.currency.clone(),
        reference: record.payment_id.to_string(),
    };
    let request_pb = pb::ChargeRequest {
        amount_cents: request.amount_cents,
        currency: request.currency.clone(),
        reference: request.reference.clone(),
    };
    let charge_json = br#"{"charge_id":"ch_0123456789abcdef0123456789abcdef"}"#.to_vec();
    let charge_pb = pb::ChargeResponse { charge_id: "ch_0123456789abcdef0123456789abcdef".to_owned() }.encode_to_vec();

    // Each pair below must round-trip; a codec that loses a field is not a faster codec.
    let json = serde_json::to_vec(&record).expect("serialize");
    assert_eq!(serde_json::from_slice::<Payment>(&json).expect("read back"), record);
    assert_eq!(
        payment_from_pb(pb::PaymentRecord::decode(&*payment_pb(&record).encode_to_vec()).expect("decode")),
        record
    );
    let charge: Charge = serde_json::from_slice(&charge_json).expect("a charge");
    assert_eq!(pb::ChargeResponse::decode(&*charge_pb).expect("decode").charge_id, charge.charge_id);

    let mut group = c.benchmark_group("codec");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(50);
    group.bench_function("charge_request_json_encode", |b| b.iter(|| serde_json::to_vec(black_box(&request))));
    group.bench_function("charge_request_prost_encode", |b| b.iter(|| black_box(&request_pb).encode_to_vec()));
    let request_json = serde_json::to_vec(&request).expect("serialize");
    let request_bytes = request_pb.encode_to_vec();
    group.bench_function("charge_request_json_decode", |b| {
        b.iter(|| serde_json::from_slice::<ChargeRequest>(black_box(&request_json)).expect("decode"))
    });
    group.bench_function("charge_request_prost_decode", |b| {
        b.iter(|| pb::ChargeRequest::decode(black_box(&*request_bytes)).expect("decode"))
    });
    group.bench_function("charge_response_json_decode", |b| {
        b.iter(|| serde_json::from_slice::<Charge>(black_box(&charge_json)).expect("decode"))
    });
    group.bench_function("charge_response_prost_decode", |b| {
        b.iter(|| pb::ChargeResponse::decode(black_box(&*charge_pb)).expect("decode"))
    });
    group.bench_function("payment_json_encode", |b| b.iter(|| serde_json::to_vec(black_box(&record))));
    group.bench_function("payment_prost_encode", |b| b.iter(|| payment_pb(black_box(&record)).encode_to_vec()));
    let record_bytes = payment_pb(&record).encode_to_vec();
    group.bench_function("payment_json_decode", |b| {
        b.iter(|| serde_json::from_slice::<Payment>(black_box(&json)).expect("decode"))
    });
    group.bench_function("payment_prost_decode", |b| {
        b.iter(|| payment_from_pb(pb::PaymentRecord::decode(black_box(&*record_bytes)).expect("decode")))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
