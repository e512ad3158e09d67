//! The deploy transaction and the operations around it. `plan` and the
//! keep-set in `prune` are pure decisions; `transaction` is the pipeline as
//! PRODUCT.md lists its steps; `context` resolves what they run against.

pub mod context;
pub mod dependencies;
pub mod hooks;
pub mod lifecycle;
pub mod logs;
pub mod plan;
pub mod prune;
pub mod recover;
pub mod rollout;
pub mod transaction;

pub use context::Ctx;
