//! What the engines are built on: the request model every [`Transport`](crate::transport::Transport)
//! executes, the expressions in it, and the clock and randomness the engines read.
//!
//! Public for transports written outside the crate, the bindings (the Node drop-in turns these
//! requests into DocumentClient calls) and test harnesses that drive time and randomness. It
//! follows the protocol, so it changes more often than the rest of the API.

pub mod clock;
pub mod expr;
pub mod random;
pub mod request;
