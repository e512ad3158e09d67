//! SIGINT/SIGTERM during a deploy or rollback.
//!
//! The first signal asks the transaction to stop at its next safe point (a
//! step boundary, or the next poll of a health wait) and roll back. A second
//! signal exits at once: the journal then says where the run stopped, the
//! kernel drops the lock, and `slipway recover` finishes the job.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
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
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond signal: exiting now; run `slipway recover` to finish or undo this release");
                crate::engine::exec::kill_all();
                std::process::exit(130);
            }
            eprintln!("\nsignal received: stopping at the next safe point and rolling back (signal again to exit at once)");
        }
    });
}

/// Resolves once a stop was asked for (for racing long waits).
pub async fn wait() {
    while !requested() {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
