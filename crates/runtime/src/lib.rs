//! x

pub mod providers;
