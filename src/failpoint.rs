//! Fault injection for the crash-safety suite (cargo feature `failpoints`).
//!
//! With the feature on, `SLIPWAY_FAILPOINT=<name>` makes the process kill
//! itself with SIGKILL when it reaches the named point (`hit`), or shortly
//! after passing it while the step's work is under way (`hit_soon`): the same
//! as a CI job cancelled or a host losing power there. Without the feature
//! these are empty functions.
//!
//! `SLIPWAY_PAUSE=<name>` instead holds the run at a [`pause`] point (the rest
//! of the process, signal handling included, goes on) until the file named by
//! `SLIPWAY_RESUME` exists, or for good without it: tests use it to act while
//! a run is at a known step, instead of racing it.

#[cfg(feature = "failpoints")]
fn armed(name: &str) -> bool {
    std::env::var("SLIPWAY_FAILPOINT").is_ok_and(|v| v == name)
}

#[cfg(feature = "failpoints")]
fn die(name: &str) {
    eprintln!("failpoint {name}: SIGKILL");
    // SAFETY: sending a signal to ourselves.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

/// Die here, if armed.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if armed(name) {
        die(name);
    }
}

/// Die 150 ms from now, in the middle of whatever runs then, if armed.
#[cfg(feature = "failpoints")]
pub fn hit_soon(name: &str) {
    if armed(name) {
        let name = name.to_string();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(150));
            die(&name);
        });
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit_soon(_name: &str) {}

/// Hold here while armed by `SLIPWAY_PAUSE` (see the module docs).
#[cfg(feature = "failpoints")]
pub async fn pause(name: &str) {
    if !std::env::var("SLIPWAY_PAUSE").is_ok_and(|v| v == name) {
        return;
    }
    eprintln!("failpoint {name}: paused");
    let resume = std::env::var_os("SLIPWAY_RESUME").map(std::path::PathBuf::from);
    loop {
        if resume.as_ref().is_some_and(|f| f.exists()) {
            eprintln!("failpoint {name}: resumed");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn pause(_name: &str) {}
