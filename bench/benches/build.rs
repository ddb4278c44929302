//! Generates the bench-only messages from `proto/bench.proto`: the echo service of the gRPC
//! floor, and wire twins of the payment messages (the workspace's protos carry no payments
//! package: payments-service is reached over HTTP only).
//!
//! protoc comes from `protoc-bin-vendored`, passed through the builder as in
//! shared/proto/build.rs (setting `PROTOC` would need `unsafe` under edition 2024).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &["proto/bench.proto"], &["proto"])?;
    Ok(())
}
