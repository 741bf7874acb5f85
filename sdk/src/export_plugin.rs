//! `export_plugin!`: the one line at a plugin's crate root that publishes
//! its stages through the export layer (`export.rs`).

/// Publishes a plugin's stages: generates the library's root module and its
/// manifest (name and version from the plugin's `Cargo.toml`).
///
/// Use it once, at the crate root of a `cdylib` crate that depends on
/// `hsp-sdk` and on `abi_stable` (the generated code names it directly), and
/// builds with `panic = "unwind"`. List the data-plane stages ([`Stage`](crate::Stage)s)
/// and, after `control:`, the [`ControlStage`](crate::ControlStage)s; either list may be empty:
/// `export_plugin!(Gain)`, `export_plugin!(Gain; control: Threshold)`,
/// `export_plugin!(; control: Threshold)`.
///
/// ```
/// use hsp_sdk::{EegPacket, Outcome, PlanarBlock, Stage, StageError, StreamFormat};
///
/// /// Forwards blocks unchanged.
/// pub struct Identity;
///
/// impl Stage for Identity {
///     const KIND: &'static str = "identity";
///     const DOC: &'static str = "Forwards raw EEG unchanged.";
///     type Config = serde_json::Value;
///     type Input = EegPacket;
///     type Output = EegPacket;
///     fn new(_: serde_json::Value, _: &[StreamFormat]) -> Result<Self, StageError> {
///         Ok(Identity)
///     }
///     fn process(&mut self, input: Option<&EegPacket>, output: &mut EegPacket) -> Result<Outcome, StageError> {
///         let Some(input) = input else { return Ok(Outcome::NoOutput) };
///         output.copy_from(input).map_err(|e| StageError::new(e.to_string()))?;
///         Ok(Outcome::Emitted)
///     }
/// }
///
/// hsp_sdk::export_plugin!(Identity);
/// # fn main() {}
/// ```
///
/// The exported items are left out of `cfg(test)` builds of the plugin
/// crate, so one crate's unit tests may link another plugin crate (their
/// root-module symbols would collide).
#[macro_export]
macro_rules! export_plugin {
    ($($stage:ty),* $(,)? $(; control: $($control:ty),+ $(,)?)?) => {
        #[cfg(not(test))]
        #[::abi_stable::export_root_module]
        #[doc(hidden)]
        pub fn hsp_plugin_root_module() -> $crate::abi::PluginModuleRef {
            use ::abi_stable::prefix_type::PrefixTypeTrait as _;
            $crate::abi::PluginModule {
                manifest: hsp_plugin_manifest,
                output_format: hsp_plugin_output_format,
                create_stage: hsp_plugin_create_stage,
                create_control_stage: hsp_plugin_create_control_stage,
                thread_allocations: hsp_plugin_thread_allocations,
            }
            .leak_into_prefix()
        }

        // The ABI version, in a symbol's name, so that a host can tell which
        // ABI a library speaks without loading it, whatever its layout.
        // (`hsp_sdk::abi::ABI_MARKER`; a test keeps the two equal.)
        #[cfg(not(test))]
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        #[doc(hidden)]
        pub static hsp_plugin_abi_v3: u32 = $crate::abi::HSP_ABI_VERSION;

        // The library's own allocator, counting per thread, so the host can
        // see allocations its code makes on the data-plane thread.
        #[cfg(not(test))]
        #[global_allocator]
        static HSP_PLUGIN_ALLOCATOR: $crate::runtime::CountingAllocator =
            $crate::runtime::CountingAllocator;

        #[cfg(not(test))]
        extern "C" fn hsp_plugin_thread_allocations() -> u64 {
            $crate::runtime::thread_allocations()
        }

        #[cfg(not(test))]
        extern "C" fn hsp_plugin_manifest() -> $crate::abi::Manifest {
            $crate::export::manifest(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
                ::std::vec![
                    $($crate::export::describe::<$stage>(),)*
                    $($($crate::export::describe_control::<$control>(),)+)?
                ],
            )
        }

        #[cfg(not(test))]
        extern "C" fn hsp_plugin_output_format(
            kind: ::abi_stable::std_types::RStr<'_>,
            config_json: ::abi_stable::std_types::RStr<'_>,
            inputs: ::abi_stable::std_types::RSlice<'_, $crate::abi::StreamFormat>,
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RVec<$crate::abi::StreamFormat>,
            ::abi_stable::std_types::RString,
        > {
            $crate::export::guard_ffi("output_format", || {
                $(
                    if kind.as_str() == <$stage as $crate::Stage>::KIND {
                        return $crate::export::output_format::<$stage>(config_json.as_str(), inputs);
                    }
                )*
                $($(
                    if kind.as_str() == <$control as $crate::ControlStage>::KIND {
                        return $crate::export::control_output_format::<$control>(config_json.as_str());
                    }
                )+)?
                let _ = (config_json, inputs);
                ::abi_stable::std_types::RErr(
                    ::std::format!("no stage kind `{}` in plugin {}", kind, env!("CARGO_PKG_NAME")).into(),
                )
            })
        }

        #[cfg(not(test))]
        extern "C" fn hsp_plugin_create_stage(
            kind: ::abi_stable::std_types::RStr<'_>,
            config_json: ::abi_stable::std_types::RStr<'_>,
            inputs: ::abi_stable::std_types::RSlice<'_, $crate::abi::StreamFormat>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::FfiStageBox,
            ::abi_stable::std_types::RString,
        > {
            $crate::export::guard_ffi("create_stage", || {
                $(
                    if kind.as_str() == <$stage as $crate::Stage>::KIND {
                        return $crate::export::create::<$stage>(config_json.as_str(), inputs);
                    }
                )*
                let _ = (config_json, inputs);
                ::abi_stable::std_types::RErr(
                    ::std::format!("no data-plane stage kind `{}` in plugin {}", kind, env!("CARGO_PKG_NAME")).into(),
                )
            })
        }

        #[cfg(not(test))]
        extern "C" fn hsp_plugin_create_control_stage(
            kind: ::abi_stable::std_types::RStr<'_>,
            config_json: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::FfiControlStageBox,
            ::abi_stable::std_types::RString,
        > {
            $crate::export::guard_ffi("create_control_stage", || {
                $($(
                    if kind.as_str() == <$control as $crate::ControlStage>::KIND {
                        return $crate::export::create_control::<$control>(config_json.as_str());
                    }
                )+)?
                let _ = config_json;
                ::abi_stable::std_types::RErr(
                    ::std::format!("no control stage kind `{}` in plugin {}", kind, env!("CARGO_PKG_NAME")).into(),
                )
            })
        }
    };
}
