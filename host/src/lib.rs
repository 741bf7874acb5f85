//! # hsp-host
//!
//! The `host` binary's library: the plugin registry today; graph loading,
//! the runtimes and hot reload as they land. Arrows point down only:
//! `commands` -> `registry` -> `hsp-sdk`.

pub mod alloc_count;
pub mod commands;
pub mod graph;
pub mod registry;
pub mod runtime;
pub mod template;
