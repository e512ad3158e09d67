//! Effects on the host: the Docker Engine API (`docker`), `docker compose`
//! invocations built as data (`compose`), and the one place processes are
//! spawned (`exec`).

pub mod compose;
pub mod docker;
pub mod exec;
pub mod lifecycle;

pub use compose::Compose;
pub use docker::{Container, Docker, Health, Image};
