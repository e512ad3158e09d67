//! Integration tests: the real `slipway` binary against the real Docker
//! engine, a real registry on 127.0.0.1 and real `docker compose`.

mod harness;
mod http_server;

mod config_errors;
mod deploy;
mod env_rules;
mod probes_deploy;
mod rollback;
mod safety;
mod secrets;
mod smoke;
