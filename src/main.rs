//! The `chinook` binary: everything lives in the library; see `chinook::cli`.

fn main() {
    // Like other Unix tools, end quietly when the reader of our output goes
    // away (`chinook consume | head`) instead of failing to print.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(chinook::cli::main());
}
