//! Probes: the smoke suite against real servers on 127.0.0.1, env file rules,
//! secrets kept out of every report, and probes inside a real deploy.

mod deploy;
mod env_rules;
mod http_server;
mod secrets;
mod smoke;
