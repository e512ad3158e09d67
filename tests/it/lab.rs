//! Real hosts for tests: network namespaces with their own dockerd and sshd
//! (scripts/hosts.sh), reached only over SSH, and the loopback registry the
//! main engine pushes to (mirrored on the hosts' network by each test).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use slipway::fixture::Registry;

pub const HOSTS_DIR: &str = "/tmp/slipway-hosts";
pub const LAB_IP: &str = "10.231.7.1";

pub fn hosts_sh(args: &[&str]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hosts.sh");
    let out = Command::new(script).args(args).output().expect("hosts.sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// One real host for one test; taken down on drop.
pub struct Host {
    pub name: String,
    pub addr: String,
}

impl Host {
    pub fn up(test: &str) -> Host {
        Host::up_all(&[test]).pop().expect("one host")
    }

    /// Several hosts at once: one `hosts.sh up`, so their dockerds start
    /// side by side instead of one after the other.
    pub fn up_all(tests: &[&str]) -> Vec<Host> {
        // Short, unique per test and run (hosts.sh allows 10 characters).
        let names: Vec<String> = tests
            .iter()
            .map(|t| format!("{t}{}", std::process::id() % 10_000))
            .collect();
        let mut args = vec!["up"];
        args.extend(names.iter().map(String::as_str));
        let (ok, out) = hosts_sh(&args);
        assert!(ok, "hosts.sh up {names:?}: {out}");
        names
            .into_iter()
            .map(|name| {
                let addr = out
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name} ")))
                    .expect("address")
                    .to_string();
                Host { name, addr }
            })
            .collect()
    }

    /// Run `cmd` on the host over SSH (as a user would); (success, stdout).
    ///
    /// The test's own look-ups share one connection per host (an SSH master
    /// kept for a minute), as each handshake costs a few hundred ms of CPU;
    /// slipway's own connections are its own.
    pub fn ssh(&self, cmd: &str) -> (bool, String) {
        let out = Command::new("ssh")
            .args(["-F", &format!("{HOSTS_DIR}/ssh_config")])
            .args(self.mux())
            .args([&self.name, cmd])
            .output()
            .expect("ssh");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    }

    fn mux(&self) -> [String; 6] {
        [
            "-o".into(),
            "ControlMaster=auto".into(),
            "-o".into(),
            format!("ControlPath=/tmp/slw-mux-{}", self.name),
            "-o".into(),
            "ControlPersist=60".into(),
        ]
    }

    pub fn containers(&self, project: &str, service: &str) -> Vec<String> {
        let (_, out) = self.ssh(&format!(
            "docker ps -aq --no-trunc --filter label=com.docker.compose.project={project} \
             --filter label=com.docker.compose.service={service}"
        ));
        out.lines().map(str::to_string).collect()
    }

    /// The image ID the service's one container runs.
    pub fn running_image(&self, project: &str, service: &str) -> String {
        let ids = self.containers(project, service);
        assert_eq!(ids.len(), 1, "{service} on {}: {ids:?}", self.name);
        self.ssh(&format!(
            "docker inspect --format '{{{{.Image}}}}' {}",
            ids[0]
        ))
        .1
    }

    pub fn image_id(&self, reference: &str) -> String {
        self.ssh(&format!(
            "docker image inspect --format '{{{{.Id}}}}' {reference}"
        ))
        .1
    }
}

impl Host {
    /// SIGKILL the host's dockerd (its containers outlive it, as on a server).
    pub fn kill_dockerd(&self) {
        let pid = std::fs::read_to_string(format!("{HOSTS_DIR}/{}/run/docker.pid", self.name))
            .expect("dockerd pid");
        let ok = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }
}

/// Remove the images the main engine built and pushed for test `name`
/// (`<registry>/<name>/…`).
pub fn remove_pushed_images(name: &str) {
    let (_, list) = crate::harness::docker(&["images", "--format", "{{.ID}} {{.Repository}}"]);
    let prefix = format!("{}/{name}/", registry().addr);
    for line in list.lines() {
        if let Some((id, repo)) = line.split_once(' ') {
            if repo.starts_with(&prefix) {
                let _ = crate::harness::docker(&["rmi", "--force", id]);
            }
        }
    }
}

impl Host {
    /// Close the test's shared SSH connection, while the host still answers.
    fn close_mux(&self) {
        let _ = Command::new("ssh")
            .args(["-F", &format!("{HOSTS_DIR}/ssh_config")])
            .args(self.mux())
            .args(["-O", "exit", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Take several hosts down with one `hosts.sh down`, side by side (each
/// waits seconds for its dockerd to go); their own drops then find nothing
/// left to do.
pub fn down_all(hosts: &[Host]) {
    for h in hosts {
        h.close_mux();
    }
    let mut args = vec!["down"];
    args.extend(hosts.iter().map(|h| h.name.as_str()));
    let (ok, out) = hosts_sh(&args);
    if !ok {
        eprintln!("hosts.sh {args:?}: {out}");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.close_mux();
        let (ok, out) = hosts_sh(&["down", &self.name]);
        if !ok {
            eprintln!("hosts.sh down {}: {out}", self.name);
        }
    }
}

/// The loopback registry the main engine pushes to (its store is mirrored
/// on the hosts' network by each test).
pub fn registry() -> &'static Registry {
    static R: OnceLock<&'static Registry> = OnceLock::new();
    R.get_or_init(|| {
        // Started from a thread that never ends: the registry dies with the
        // thread that started it (PR_SET_PDEATHSIG), not with a test's.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r: &'static Registry = Box::leak(Box::new(Registry::start().expect("registry")));
            let _ = tx.send(r);
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("registry")
    })
}
