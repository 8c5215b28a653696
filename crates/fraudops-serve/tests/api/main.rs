//! The API over real HTTP: a server on an ephemeral port per test, driven with reqwest and raw sockets.

mod contract;
mod drift;
mod feature_store;
mod hostile;
mod lifecycle;
mod overload;
mod protection;
mod support;
mod validation;
