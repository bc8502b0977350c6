//! Compiles Coffer's protocol definitions (proto/) with the pure-Rust protox compiler, so no
//! `protoc` binary is needed, and generates prost messages plus tonic clients and servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/backend.proto",
        "proto/logical.proto",
        "proto/goplugin.proto",
        "proto/multiplexing.proto",
        "proto/database.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
