//! One module per subcommand: its clap arguments (the `///` lines are the help) and its `run`.

pub mod serve;
pub mod simulate;
pub mod train;
