//! The binary: everything lives in the library; this only hands over the process.
fn main() -> std::process::ExitCode {
    keyctl::run(std::env::args_os().collect())
}
