//! Compiles the API contract with `protox` (a pure-Rust protobuf compiler), so that building
//! never needs `protoc`, and writes the encoded descriptor set that server reflection serves.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "safehire/v1/common.proto",
    "safehire/v1/check.proto",
    "safehire/v1/registry.proto",
    "safehire/v1/organisation.proto",
    "safehire/v1/audit.proto",
    "safehire/v1/roster.proto",
    "safehire/v1/alert.proto",
    "safehire/v1/review.proto",
    "safehire/v1/oversight.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, ["proto"])?;
    std::fs::write(out_dir.join("safehire_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .codec_path("crate::api::codec::StrictCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
