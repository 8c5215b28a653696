//! What the training examples share: `main` as an exit code and an error line.

use std::process::ExitCode;

/// Runs `body`; on an error prints `<name>: <error>` to stderr and exits with failure.
pub fn exit_code(name: &str, body: impl FnOnce() -> Result<(), String>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
