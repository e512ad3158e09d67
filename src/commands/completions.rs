//! `slipway completions SHELL` and `slipway man`: generated from the clap
//! definitions in `cli.rs`, so they never drift from the real flags. The
//! `.deb` ships their output (scripts/deb.sh).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "slipway", &mut buf);
    emit(&buf)
}

pub fn man() -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| Error::env(format!("cannot render the man page: {e}")))?;
    emit(&buf)
}

fn emit(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::env(format!("cannot write to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_page_name_every_subcommand() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "slipway", &mut buf);
            let text = String::from_utf8_lossy(&buf);
            for sub in ["deploy", "rollback", "init", "recover"] {
                assert!(text.contains(sub), "{shell}: no {sub}");
            }
        }
        let mut buf = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut buf)
            .expect("render");
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with(".ie") || text.contains(".TH slipway"),
            "{text}"
        );
        assert!(text.contains("rollback"));
    }

    #[test]
    fn version_names_the_commit() {
        let v = Cli::command().get_version().unwrap_or_default().to_string();
        assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
        assert!(v.contains("commit"), "{v}");
    }
}
