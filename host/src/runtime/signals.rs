//! Signals, on a thread of their own so that they work even while the
//! control plane is stuck in a control stage's call. Each signal is
//! subscribed once, for the whole run, so none is lost between two waits.
//!
//! | signal | what it does |
//! |---|---|
//! | SIGINT, SIGTERM, SIGHUP, SIGQUIT (first) | stop the sources; every queue drains, every sink flushes; exit 0 |
//! | any of them again | stop every stage now: queued packets are let go (counted), sinks flush what they hold; exit 130 |
//! | a third, or the data plane not ending within [`ABORT_GRACE`] of the second | exit 130 at once |
//! | SIGUSR1 | print the stats table now; the run goes on |
//!
//! SIGHUP (a closed terminal or SSH session) and SIGQUIT drain like SIGTERM:
//! nothing the pipeline accepted is thrown away because a terminal went.

use super::hybrid::StopHandle;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the second signal's stop-everything may take before the process
/// exits regardless (a stage stuck in a call never lets it finish).
pub const ABORT_GRACE: Duration = Duration::from_secs(2);

/// Exit code after an interrupted drain.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Set by a second stop signal: signals are process-wide, and so is this.
static INTERRUPTED_TWICE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a second stop signal came: the run was cut short, whatever
/// state the pipeline ended in, and exits with [`EXIT_INTERRUPTED`].
pub fn interrupted_twice() -> bool {
    INTERRUPTED_TWICE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The signals of a `host run`, watched from before its plugins load until
/// the process ends. Attach the running pipeline with [`attach`]; a stop
/// signal that came earlier stops it as soon as it is attached.
///
/// [`attach`]: SignalWatch::attach
pub struct SignalWatch {
    target: Arc<Mutex<Target>>,
    reasons: mpsc::UnboundedReceiver<&'static str>,
}

#[derive(Default)]
struct Target {
    handle: Option<StopHandle>,
    stops: u32,
}

impl SignalWatch {
    /// The pipeline the signals now act on.
    pub fn attach(&self, handle: StopHandle) {
        let mut target = lock(&self.target);
        match target.stops {
            0 => {}
            1 => handle.stop(),
            _ => handle.abort(),
        }
        target.handle = Some(handle);
    }

    /// The next stop signal's name (the sources are already stopped then).
    pub async fn next_stop(&mut self) -> Option<&'static str> {
        self.reasons.recv().await
    }
}

fn lock(target: &Mutex<Target>) -> std::sync::MutexGuard<'_, Target> {
    target
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the signal thread and returns once every signal is subscribed,
/// so that none arriving after this call has its default (killing) effect.
///
/// `before_forced_exit` runs before the process exits at once on a repeated
/// signal (the host removes its plugin shadow directory there).
pub fn watch_signals(before_forced_exit: fn()) -> SignalWatch {
    let _ = BEFORE_FORCED_EXIT.set(before_forced_exit);
    let (tx, reasons) = mpsc::unbounded_channel();
    let target = Arc::new(Mutex::new(Target::default()));
    let shared = Arc::clone(&target);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("hsp-signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                tracing::warn!(
                    "cannot start the signal thread's runtime; signals use their defaults"
                );
                let _ = ready_tx.send(());
                return;
            };
            runtime.block_on(serve(shared, tx, ready_tx));
        });
    match spawned {
        Ok(_) => {
            let _ = ready.recv();
        }
        Err(error) => tracing::warn!(
            "cannot start the signal thread ({error}); a stuck control stage will need SIGKILL"
        ),
    }
    SignalWatch { target, reasons }
}

#[cfg(unix)]
async fn serve(
    target: Arc<Mutex<Target>>,
    tx: mpsc::UnboundedSender<&'static str>,
    ready: std::sync::mpsc::Sender<()>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let subscribe = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(error) => {
            tracing::warn!("cannot listen for {name}: {error}");
            None
        }
    };
    let mut interrupt = subscribe(SignalKind::interrupt(), "SIGINT");
    let mut terminate = subscribe(SignalKind::terminate(), "SIGTERM");
    let mut hangup = subscribe(SignalKind::hangup(), "SIGHUP");
    let mut quit = subscribe(SignalKind::quit(), "SIGQUIT");
    let mut user1 = subscribe(SignalKind::user_defined1(), "SIGUSR1");
    let _ = ready.send(());
    loop {
        let reason = tokio::select! {
            Some(()) = recv(&mut interrupt) => "SIGINT",
            Some(()) = recv(&mut terminate) => "SIGTERM",
            Some(()) = recv(&mut hangup) => "SIGHUP",
            Some(()) = recv(&mut quit) => "SIGQUIT",
            Some(()) = recv(&mut user1) => {
                if let Some(handle) = &lock(&target).handle {
                    handle.request_report();
                }
                continue;
            }
            else => return,
        };
        on_stop_signal(&target, &tx, reason);
    }
}

#[cfg(unix)]
async fn recv(stream: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match stream {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn serve(
    target: Arc<Mutex<Target>>,
    tx: mpsc::UnboundedSender<&'static str>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let _ = ready.send(());
    while tokio::signal::ctrl_c().await.is_ok() {
        on_stop_signal(&target, &tx, "SIGINT");
    }
}

fn on_stop_signal(
    target: &Mutex<Target>,
    tx: &mpsc::UnboundedSender<&'static str>,
    reason: &'static str,
) {
    let mut target = lock(target);
    target.stops += 1;
    match (target.stops, &target.handle) {
        (1, handle) => {
            if let Some(handle) = handle {
                handle.stop();
            }
            let _ = tx.send(reason);
        }
        (2, Some(handle)) => {
            INTERRUPTED_TWICE.store(true, std::sync::atomic::Ordering::Relaxed);
            crate::errln!(
                "{reason} again: stopping every stage now (sinks flush what they hold; queued packets are let go)"
            );
            handle.abort();
            std::thread::spawn(|| {
                std::thread::sleep(ABORT_GRACE);
                crate::errln!(
                    "the data plane did not stop within {} s (a stage stuck in a call?): exiting now",
                    ABORT_GRACE.as_secs()
                );
                exit_now();
            });
        }
        (2, None) => {
            crate::errln!("{reason} again before the pipeline started: exiting now");
            exit_now();
        }
        _ => {
            crate::errln!("{reason} a third time: exiting now");
            exit_now();
        }
    }
}
/// What the process does before a forced exit (the host removes its plugin
/// shadow directory), set by [`watch_signals`].
static BEFORE_FORCED_EXIT: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Exits with [`EXIT_INTERRUPTED`], after [`BEFORE_FORCED_EXIT`].
fn exit_now() -> ! {
    if let Some(before) = BEFORE_FORCED_EXIT.get() {
        before();
    }
    std::process::exit(EXIT_INTERRUPTED);
}
