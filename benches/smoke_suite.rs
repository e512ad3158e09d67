//! Benchmark: a smoke suite of 100 HTTP checks against a local server that
//! answers each request after 100 ms. Prints the suite's wall time against
//! the sum of the checks' own latencies (what running them one after another
//! would cost), for several `smoke_concurrency` settings.
//!
//! Run: `cargo bench --bench smoke_suite`. Under `cargo test --all-targets`
//! (no `--bench` argument) it only runs a short pass to prove it still works.

#[path = "../tests/it/probes/http_server.rs"]
mod http_server;

use std::path::Path;
use std::time::Instant;

use slipway::backend::compose::context::compose_for;
use slipway::config::Config;
use slipway::probe::smoke::Suite;
use slipway::probe::Vars;

const LATENCY_MS: u64 = 100;

fn config(url: &str, checks: usize) -> String {
    let mut text = format!(
        "project = \"bench\"\n[environments.bench]\nurl = \"{url}\"\nsmoke_timeout = \"120s\"\n[services.api]\n"
    );
    for i in 0..checks {
        text.push_str(&format!(
            "\n[[smoke]]\nname = \"check {i}\"\nhttp = \"{{url}}/delay/{LATENCY_MS}\"\nexpect_json = {{ \"$.status\" = \"ok\" }}\n"
        ));
    }
    text
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let (checks, settings): (usize, &[usize]) = if full {
        (100, &[1, 8, 32, 0])
    } else {
        (10, &[8])
    };
    let server = http_server::start("unused");
    let cfg = match Config::parse(Path::new("bench.toml"), &config(&server.url(), checks)) {
        Ok(c) => c,
        Err(e) => panic!("benchmark config: {e}"),
    };
    let env = cfg.environments["bench"].clone();
    let compose = compose_for(&cfg, &env);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    println!(
        "smoke suite: {checks} http checks, each answered after {LATENCY_MS} ms by a server on 127.0.0.1"
    );
    println!(
        "{:>18}  {:>10}  {:>22}  {:>8}  {:>6}",
        "smoke_concurrency", "wall time", "sum of check latencies", "speed-up", "passed"
    );
    for &concurrency in settings {
        let suite = Suite {
            checks: &cfg.smoke,
            vars: Vars {
                url: server.url(),
                env: "bench".into(),
                tag: "v1".into(),
                ..Vars::default()
            },
            compose: &compose,
            cwd: Path::new("."),
            timeout: env.smoke_timeout,
            concurrency,
        };
        let started = Instant::now();
        let result = runtime.block_on(suite.run());
        assert_eq!(result.passed, checks, "{}", result.reason());
        let wall = started.elapsed().as_secs_f64();
        let sum = result.latency_sum_ms as f64 / 1000.0;
        let label = if concurrency == 0 {
            "0 (all at once)".to_string()
        } else if concurrency == 8 {
            "8 (default)".to_string()
        } else {
            concurrency.to_string()
        };
        println!(
            "{label:>18}  {wall:>9.2}s  {sum:>21.2}s  {:>7.1}x  {:>6}",
            sum / wall,
            result.passed
        );
    }
}
