//! Apps that ship with shardd.

pub mod techempower;
