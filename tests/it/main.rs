//! Integration tests: the real `slipway` binary against the real Docker
//! engine, a real registry on 127.0.0.1 and real `docker compose`.

mod harness;

mod config_errors;
mod deploy;
mod probes;
mod rollback;
mod safety;
