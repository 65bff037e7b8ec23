//! Compiles `proto/` at build time with protox (no `protoc` needed), writes the
//! encoded `FileDescriptorSet` for prost-reflect and generates prost types.

use std::{env, fs, path::PathBuf};

use prost::Message;

const FILES: &[&str] = &[
    "customer/v1/customer.proto",
    "events/v1/customer_events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let fds = protox::Compiler::new(["proto"])?
        .include_imports(true)
        .include_source_info(false)
        .open_files(FILES)?
        .file_descriptor_set();
    fs::write(out.join("descriptors.bin"), fds.encode_to_vec())?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
