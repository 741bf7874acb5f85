//! `host`: the hsp command line. Parsing and exit codes only; the work is in
//! `hsp_host::commands`.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid input.

use clap::{Parser, Subcommand};
use hsp_host::commands;
use hsp_host::registry;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: hsp_sdk::runtime::CountingAllocator = hsp_sdk::runtime::CountingAllocator;

/// The hybrid sensor pipeline host: loads stage plugins, runs pipelines.
#[derive(Debug, Parser)]
#[command(name = "host", version, about)]
struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// A plugin directory searched before HSP_PLUGIN_PATH and the host's own
    /// directory (./plugins is searched only when named); may be given more
    /// than once.
    #[arg(long = "plugins", value_name = "DIR", global = true)]
    plugin_dirs: Vec<PathBuf>,

    /// Load plugin files and directories that someone other than you (or
    /// root) owns or can write, and symlinked libraries; refused by default.
    #[arg(long, global = true)]
    allow_insecure_plugins: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List and inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),

    /// Run a pipeline until its sources finish (or SIGINT / SIGTERM /
    /// --duration), drain every queue, and print per-stage stats.
    Run {
        /// The pipeline file (TOML).
        file: PathBuf,
        /// Stop the sources after this many seconds, then drain.
        #[arg(long, value_name = "SECS")]
        duration: Option<f64>,
        /// Print the stats table every SECS seconds (it is always printed at exit).
        #[arg(long, value_name = "SECS")]
        stats_interval: Option<f64>,
        /// Do not watch the pipeline file and plugin directories for changes
        /// (by default changes are applied to the running pipeline).
        #[arg(long)]
        no_watch: bool,
        /// Name a data-plane stage whose call has not returned after SECS
        /// seconds; once the run is stopping, give up on a data plane stuck
        /// that long (exit 1, naming the stage).
        #[arg(long, value_name = "SECS", default_value_t = 5.0)]
        watchdog: f64,
    },

    /// Generate a ready cargo project for a new plugin stage.
    NewPlugin {
        /// Crate and stage name: lowercase letters, digits, `_`, `-`.
        name: String,
        /// Where to create it (default: ./NAME); never overwritten.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// What the stage does with packets.
        #[arg(long, value_enum, default_value = "filter")]
        kind: NewPluginKind,
    },

    /// Measure what the runtime costs per packet against a plain loop over
    /// the same plugin stages (a baseline measured in the same run).
    Bench {
        /// Packets per run.
        #[arg(long, default_value_t = 2_000_000)]
        packets: u64,
        /// Runs of each (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },

    /// Check a pipeline file against the plugins found, without running it:
    /// every error with its line and column (exit 2), or the stages and
    /// their negotiated formats (exit 0).
    Validate {
        /// The pipeline file (TOML).
        file: PathBuf,
    },

    /// Loads a library in this (child) process and reports; used by the
    /// host to probe plugin files it does not trust yet.
    #[command(name = registry::PROBE_SUBCOMMAND, hide = true)]
    Probe {
        /// The shadow copy to load.
        shadow: PathBuf,
        /// The plugin file it was copied from, named in messages.
        path: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum NewPluginKind {
    /// No input; emits raw EEG.
    Source,
    /// Raw EEG in, raw EEG out.
    Filter,
    /// Raw EEG in, nothing out.
    Sink,
    /// On the control plane: band powers in, events out.
    Control,
    /// Two EEG inputs, one EEG output (a stage with several ports).
    Mix,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Every plugin found along the search path, and the files that failed.
    List,
    /// Copy a plugin library into the plugin directory (the first --plugins
    /// DIR, or ./plugins) under a temporary name, then rename it into place,
    /// so a running host never sees a half-written file.
    Install {
        /// The library to install.
        file: PathBuf,
    },
    /// A plugin's stage kinds, ports and config keys (by plugin name or stage kind).
    Inspect {
        /// A plugin name (`hsp-iir`), file stem (`libhsp_iir`) or stage kind (`iir`).
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    // A plugin directory the user named must exist: a typo would otherwise
    // surface later as an "unknown stage kind" (install creates its target).
    let reads_plugin_dirs = !matches!(
        cli.command,
        Command::Plugins(PluginsCommand::Install { .. })
            | Command::Probe { .. }
            | Command::NewPlugin { .. }
    );
    if reads_plugin_dirs {
        if let Some(missing) = cli.plugin_dirs.iter().find(|dir| !dir.is_dir()) {
            hsp_host::errln!("error: --plugins {}: no such directory", missing.display());
            return ExitCode::from(2);
        }
    }
    let trust = if cli.allow_insecure_plugins {
        registry::Trust::AllowInsecure
    } else {
        registry::Trust::Strict
    };
    let dirs = &cli.plugin_dirs;
    let code = match cli.command {
        Command::Plugins(PluginsCommand::List) => {
            let registry = commands::discover_plugins(dirs, trust);
            hsp_host::out!("{}", commands::plugins::list(&registry));
            ExitCode::SUCCESS
        }
        Command::Plugins(PluginsCommand::Inspect { name }) => inspect(dirs, trust, &name),
        Command::Run {
            file,
            duration,
            stats_interval,
            no_watch,
            watchdog,
        } => {
            let timing = (duration, stats_interval, watchdog);
            run(dirs, trust, &file, timing, no_watch)
        }
        Command::NewPlugin { name, dir, kind } => new_plugin(&name, dir, kind),
        Command::Plugins(PluginsCommand::Install { file }) => {
            let dir = dirs
                .first()
                .cloned()
                .unwrap_or_else(|| PathBuf::from("plugins"));
            match registry::install(&file, &dir) {
                Ok(installed) => {
                    hsp_host::outln!("installed {}", installed.display());
                    ExitCode::SUCCESS
                }
                Err(error) => failure(&format!("error: {error}"), 2),
            }
        }
        Command::Bench { packets, runs } => {
            let registry = commands::discover_plugins(dirs, trust);
            match commands::bench::bench(&registry, packets, runs) {
                Ok(result) => {
                    hsp_host::out!("{}", commands::bench::render(&result, packets, runs));
                    ExitCode::SUCCESS
                }
                Err(error) => failure(&format!("error: {error}"), 1),
            }
        }
        Command::Validate { file } => validate(dirs, trust, &file),
        Command::Probe { shadow, path } => match registry::run_probe(&shadow, &path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => failure(&error.to_string(), 3),
        },
    };
    registry::remove_shadow_dir();
    code
}

/// Prints `message` and returns exit code `code`.
fn failure(message: &str, code: u8) -> ExitCode {
    hsp_host::errln!("{message}");
    ExitCode::from(code)
}

/// `host plugins inspect NAME`.
fn inspect(dirs: &[PathBuf], trust: registry::Trust, name: &str) -> ExitCode {
    let registry = commands::discover_plugins(dirs, trust);
    if let Some(report) = commands::plugins::inspect(&registry, name) {
        hsp_host::out!("{report}");
        return ExitCode::SUCCESS;
    }
    let kinds: Vec<&str> = registry.stage_kinds().collect();
    let hint = commands::plugins::suggest(&registry, name)
        .map(|close| format!("; did you mean `{close}`?"))
        .unwrap_or_default();
    failure(
        &format!(
            "error: no plugin or stage kind named `{name}`{hint} (stage kinds: {})",
            kinds.join(", ")
        ),
        2,
    )
}

/// `host run FILE`; `timing` is `--duration`, `--stats-interval` and
/// `--watchdog` in seconds.
fn run(
    dirs: &[PathBuf],
    trust: registry::Trust,
    file: &std::path::Path,
    timing: (Option<f64>, Option<f64>, f64),
    no_watch: bool,
) -> ExitCode {
    let seconds = |value: f64, flag: &str| {
        std::time::Duration::try_from_secs_f64(value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                format!("error: {flag} must be a positive number of seconds, got {value}")
            })
    };
    let (duration, stats_interval, watchdog) = timing;
    let options = (|| {
        Ok::<_, String>(hsp_host::runtime::RunOptions {
            duration: duration.map(|s| seconds(s, "--duration")).transpose()?,
            stats_interval: stats_interval
                .map(|s| seconds(s, "--stats-interval"))
                .transpose()?,
            watchdog: seconds(watchdog, "--watchdog")?,
        })
    })();
    let options = match options {
        Ok(options) => options,
        Err(message) => return failure(&message, 2),
    };
    // Before anything slow: a signal from here on drains.
    let signals = hsp_host::runtime::watch_signals(registry::remove_shadow_dir);
    let registry = commands::discover_plugins(dirs, trust);
    let watch = (!no_watch).then(|| hsp_host::reload::WatchSetup {
        plugin_dirs: registry::drop_in_dirs(dirs),
        policy: commands::load_policy(trust),
    });
    ExitCode::from(commands::run::run(file, registry, watch, &options, signals))
}

/// `host new-plugin NAME`.
fn new_plugin(name: &str, dir: Option<PathBuf>, kind: NewPluginKind) -> ExitCode {
    let kind = match kind {
        NewPluginKind::Source => hsp_host::template::TemplateKind::Source,
        NewPluginKind::Filter => hsp_host::template::TemplateKind::Filter,
        NewPluginKind::Sink => hsp_host::template::TemplateKind::Sink,
        NewPluginKind::Control => hsp_host::template::TemplateKind::Control,
        NewPluginKind::Mix => hsp_host::template::TemplateKind::Mix,
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    match hsp_host::template::generate(name, &dir, kind) {
        Ok(files) => {
            hsp_host::outln!("created {} ({} files)", dir.display(), files.len());
            hsp_host::outln!(
                "next: cd {} && cargo test && cargo build --release",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => failure(&format!("error: {error}"), 2),
    }
}

/// `host validate FILE`.
fn validate(dirs: &[PathBuf], trust: registry::Trust, file: &std::path::Path) -> ExitCode {
    let registry = commands::discover_plugins(dirs, trust);
    // A kind that a user library shadows, and files refused as untrusted,
    // are worth a line even when the pipeline is valid.
    for failure in registry.failures() {
        hsp_host::errln!("warning: {failure}");
    }
    match commands::validate::validate(&registry, file) {
        Ok(report) => {
            hsp_host::out!("{report}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                hsp_host::errln!("{error}");
            }
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        // Its own complaint about a failed write is an `eprintln!`, which
        // panics on a closed stderr: a lost log line must not end the run.
        .log_internal_errors(false)
        .init();
}
