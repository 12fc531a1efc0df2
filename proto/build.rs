//! Generates the hcmon.v1 Rust code with protox, a pure-Rust protobuf compiler, so building
//! needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "hcmon/v1/ingest.proto",
        "hcmon/v1/enrollment.proto",
        "prometheus/remote.proto",
        "prometheus/write_v2.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
