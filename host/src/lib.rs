//! # hsp-host
//!
//! The `host` binary's library. Arrows point down only:
//! `commands` -> `reload` -> `runtime` -> `graph` -> `registry` -> `hsp-sdk`.

#[macro_use]
pub mod console;
pub mod commands;
pub mod graph;
pub mod registry;
pub mod reload;
pub mod runtime;
pub mod template;
