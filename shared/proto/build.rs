//! Generates the gRPC messages, servers and clients from `proto/archlab/*.proto`.
//!
//! protoc comes from `protoc-bin-vendored`, so no system install is needed. Its path goes to
//! prost-build through `Config::protoc_executable` rather than the `PROTOC` environment
//! variable: setting a variable in this process needs `unsafe` under edition 2024, which the
//! workspace forbids.

const PROTOS: &[&str] = &["proto/archlab/auth.proto", "proto/archlab/users.proto", "proto/archlab/notifications.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, PROTOS, &["proto"])?;
    Ok(())
}
