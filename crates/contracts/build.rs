//! Compiles `proto/` with protox (no system `protoc`) and keeps the encoded
//! descriptor set in `OUT_DIR` for gRPC reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    // google.rpc error details, only for reflection (tonic-types encodes them).
    let vendor_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto-vendor");
    let files = [
        "expansion/common/v1/common.proto",
        "expansion/health/v1/health.proto",
        "expansion/pipeline/v1/pipeline.proto",
        "expansion/credit/v1/credit.proto",
        "expansion/common/v1/webhooks.proto",
        "expansion/health/v1/webhooks.proto",
        "expansion/pipeline/v1/webhooks.proto",
        "expansion/credit/v1/webhooks.proto",
    ];
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }
    println!("cargo:rerun-if-changed={}", vendor_root.display());

    let descriptors = protox::compile(files, [&proto_root])?;
    let mut reflection = descriptors.clone();
    reflection
        .file
        .extend(protox::compile(["google/rpc/error_details.proto"], [&vendor_root])?.file);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("expansion_descriptor.bin"),
        reflection.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // prost's codec, but a request that does not decode is INVALID_ARGUMENT.
        .codec_path("crate::codec::Codec")
        .compile_fds(descriptors)?;
    Ok(())
}
