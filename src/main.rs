//! The `chinook` binary: everything lives in the library; see `chinook::cli`.

fn main() {
    std::process::exit(chinook::cli::main());
}
