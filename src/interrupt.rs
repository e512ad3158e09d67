//! SIGINT/SIGTERM during a deploy or rollback.
//!
//! The first signal asks the transaction to stop at its next safe point (a
//! step boundary, or the next poll of a health wait) and roll back, and is
//! journaled at once, from the handler, as the release's `interrupted` step:
//! a stopped release is the operator saying no, so `slipway recover` puts the
//! previous release back even if the run dies before it noticed the signal.
//! A second signal exits at once: the journal then says where the run
//! stopped, the kernel drops the lock, and `slipway recover` finishes the job.
//!
//! The handler and the commit step take one lock ([`unless_requested`]), so
//! a release's journal holds either `interrupted` before `commit` (the release
//! never goes forward) or `commit` first (the signal came too late to stop it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::state::{Journal, Step};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The release a signal is journaled to, once one has begun.
static RELEASE: Mutex<Option<Journal>> = Mutex::new(None);

fn release() -> MutexGuard<'static, Option<Journal>> {
    RELEASE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// From now on a signal is journaled to `release` (in the state folder
/// `dir`); a signal that came before is journaled now.
pub fn journal_to(dir: &Path, release_id: i64) -> crate::error::Result<()> {
    let journal = Journal::open(dir, release_id)?;
    let mut slot = release();
    if requested() {
        journal.write(Step::Interrupted, "a signal")?;
    }
    *slot = Some(journal);
    Ok(())
}

/// Run `f` (the commit's journal entry) unless a stop was asked for; a
/// signal waits for it, so the journal orders the two.
pub fn unless_requested<T>(f: impl FnOnce() -> T) -> Option<T> {
    let _slot = release();
    (!requested()).then(f)
}

/// Listen for SIGINT and SIGTERM for the rest of the process.
pub fn install() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!(
            "warning: cannot listen for signals; an interrupted deploy needs `slipway recover`"
        );
        return;
    };
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if first_signal(name) {
                eprintln!("\nsignal received: stopping at the next safe point and rolling back (signal again to exit at once)");
            } else {
                eprintln!(
                    "\nsecond signal: exiting now; run `slipway recover` to undo this release"
                );
                crate::engine::exec::kill_all();
                std::process::exit(130);
            }
        }
    });
}

/// The operator's stop from elsewhere than a signal (a remote run's
/// controller gone): the same path as a first SIGTERM.
pub fn stop(reason: &str) {
    if first_signal(reason) {
        eprintln!("\n{reason}: stopping at the next safe point and rolling back");
    }
}

/// Record a signal; true if it is the first. The journal row is written
/// before this returns, so a second signal cannot exit before it exists.
fn first_signal(name: &str) -> bool {
    let slot = release();
    if REQUESTED.swap(true, Ordering::SeqCst) {
        return false;
    }
    if let Some(journal) = slot.as_ref() {
        if let Err(e) = journal.write(Step::Interrupted, name) {
            eprintln!("warning: could not journal the signal: {e}");
        }
    }
    true
}

/// Resolves once a stop was asked for (for racing long waits).
pub async fn wait() {
    while !requested() {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// For unit tests of the transaction: a signal at a chosen point, and a
/// clean slate after. Tests that use it hold [`testing::LOCK`]: the flag is
/// process-wide.
#[cfg(test)]
pub mod testing {
    use super::*;

    pub static LOCK: Mutex<()> = Mutex::new(());

    /// What the handler does on a first SIGTERM.
    pub fn signal() {
        first_signal("SIGTERM");
    }

    pub fn reset() {
        REQUESTED.store(false, Ordering::SeqCst);
        *release() = None;
    }
}
