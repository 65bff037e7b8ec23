//! Compiles `proto/` at build time with protox (no `protoc` needed), writes the
//! encoded `FileDescriptorSet` for prost-reflect and generates prost types.

use std::{env, fs, path::PathBuf};

use prost::Message;

const FILES: &[&str] = &[
    "customer/v1/customer.proto",
    "events/v1/customer_events.proto",
    "events/v1/saga.proto",
    "events/v1/window_result.proto",
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
    embed_labs(&out)?;
    Ok(())
}

/// Embeds every `labs/<NN>-<slug>/` (its `lab.toml` and `README.md`), so an
/// installed chinook carries the labs and adding a lab is adding files.
fn embed_labs(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=labs");
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("labs");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("lab.toml").is_file())
        .collect();
    dirs.sort();
    let mut code = String::from(
        "/// (directory, lab.toml, README.md) of every lab, in order.\npub const EMBEDDED: &[(&str, &str, &str)] = &[\n",
    );
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).ok_or("lab directory names are UTF-8")?;
        code += &format!(
            "    ({name:?}, include_str!({:?}), include_str!({:?})),\n",
            dir.join("lab.toml").display().to_string(),
            dir.join("README.md").display().to_string()
        );
    }
    code += "];\n";
    fs::write(out.join("labs.rs"), code)?;
    Ok(())
}
