//! (in progress)
pub mod schema;
pub mod yaml;
