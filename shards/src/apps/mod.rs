//! Apps that ship with shardd.

pub mod techempower;
pub mod techempower_db;
pub mod techempower_routed;
