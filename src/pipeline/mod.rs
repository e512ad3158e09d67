//! The deploy transaction and what surrounds it, over any backend:
//! `transaction` is the pipeline as PRODUCT.md lists its steps, `roll` rolls images out wave by wave (and
//! restores a release that way), `recover`
//! finishes or undoes a release a dead run left, `lifecycle` announces a
//! release and runs its hooks, `plan` holds the pure decisions, and
//! `request` the data a command hands in and gets back, `gate` where one
//! host of a release spanning several waits for the others.

pub mod gate;
pub mod lifecycle;
pub mod logs;
pub mod plan;
pub mod recover;
pub mod request;
pub mod roll;
pub mod transaction;
