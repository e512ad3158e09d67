//! The tests on network-namespace hosts (scripts/hosts.sh: SSH, several
//! hosts, Swarm), the longest of the suite. libtest starts tests in name
//! order, so this module's name puts them first and the short tests fill the
//! other threads around them, instead of a Swarm run starting last, alone.
//! (The files stay beside the others; `cargo test --test it -- swarm::`
//! still picks them out.)

#[path = "fleet.rs"]
mod fleet;
#[path = "remote.rs"]
mod remote;
#[path = "swarm.rs"]
mod swarm;
