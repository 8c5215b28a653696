//! One module per subcommand: its clap arguments (the `///` lines are the help) and its `run`.

pub mod attack;
pub mod drill;
pub mod eval_online;
pub mod labels;
pub mod register;
pub mod serve;
pub mod simulate;
pub mod stream;
pub mod train;
pub mod validate;
