#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use baton_io_threads as io_threads;
pub use baton_runtime::*;
pub use baton_tls as tls;
