//! Apps that ship with shardd.

pub mod techempower;
pub mod techempower_routed;
