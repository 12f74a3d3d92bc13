//! `model/utils`.
pub mod block;
pub mod head_utils;
pub mod transform;
