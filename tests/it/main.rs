//! Integration tests: the real `slipway` binary against the real Docker
//! engine, a real registry on 127.0.0.1 and real `docker compose`.

mod harness;
mod lab;

mod across_hosts;
mod bad_input;
mod canary;
mod config_errors;
mod dependencies;
mod deploy;
#[cfg(feature = "failpoints")]
mod faults;
mod init;
mod install;
mod logs;
mod metrics;
mod notify;
mod probes;
mod proxies;
mod rollback;
mod safety;
mod signals;
mod startfirst;
mod state;
mod wayback;
