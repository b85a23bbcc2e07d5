//! `executor: slurm` from the command line: with fake `sbatch`/`squeue`/`scancel` on `PATH`
//! (the state machine itself is tested in the engine), and against a real single-node SLURM
//! (`make scaleout` starts one with `scripts/scaleout/with-slurm.sh` and runs the ignored test;
//! without a cluster it fails loudly).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::scaleout::{Nginx, PASSWORD, USER};
use super::util::{Project, Run};

const PIPE: &str = r#"version: 1
stages:
  first:
    kind: command
    executor: slurm
    resources: { cpus: 1, time: "5:00" }
    inputs: [in.txt]
    outputs: [a.txt]
    with: { run: "tr a-z A-Z < in.txt > a.txt" }
  second:
    kind: command
    executor: slurm
    inputs: [a.txt]
    outputs: [b.txt]
    with: { run: "cat a.txt a.txt > b.txt" }
  third:
    kind: command
    inputs: [b.txt]
    outputs: [c.txt]
    with: { run: "wc -l < b.txt > c.txt" }
"#;

/// `artifact ARGS` with a home holding a user config that polls quickly, and `path_front`
/// before `PATH`.
fn art(p: &Project, home: &Path, path_front: Option<&Path>, args: &[&str]) -> Command {
    let cfg = home.join(".config/artifact/config.yaml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "slurm:\n  poll_secs: 0.2\n  result_wait_secs: 10\n").unwrap();
    let mut c = p.cmd(args);
    super::util::as_user(&mut c, home);
    if let Some(front) = path_front {
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", front.display()));
    }
    c
}

fn fake_bin(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    let scripts = [
        (
            "sbatch",
            format!(
                "#!/bin/sh\necho \"$*\" >> {d}/sbatch.log\nfor a in \"$@\"; do last=\"$a\"; done\nn=$(wc -l < {d}/sbatch.log)\nsh \"$last\" >/dev/null 2>&1\necho $((n+500))\n"
            ),
        ),
        (
            "squeue",
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -j ] && ids=\"$2\"; shift; done\nfor i in $(echo \"$ids\" | tr , ' '); do echo \"$i COMPLETED\"; done\n".to_string(),
        ),
        ("scancel", format!("#!/bin/sh\necho \"$*\" >> {d}/scancel.log\n")),
    ];
    for (name, text) in scripts {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&p, perm).unwrap();
    }
}

#[test]
fn slurm_stages_go_through_sbatch_and_executor_local_keeps_them_here() {
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join("fakebin");
    fake_bin(&bin);
    let p = Project::new(PIPE);
    p.write("in.txt", "one\ntwo\n");
    let r = Run::from(
        art(&p, home.path(), Some(&bin), &["run", "-j", "1"])
            .output()
            .unwrap(),
    );
    r.code(0);
    r.says("3 stages: 3 ran");
    assert_eq!(p.read("c.txt").trim(), "4");
    let log = std::fs::read_to_string(bin.join("sbatch.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "only the two slurm stages are submitted: {log}"
    );
    assert!(
        lines[0].contains("--comment=first") && lines[0].contains("--cpus-per-task=1"),
        "{log}"
    );
    assert!(lines[1].contains("--comment=second"), "{log}");
    // Same job name for every job of one run.
    let name = |l: &str| {
        l.split_whitespace()
            .find(|w| w.starts_with("--job-name="))
            .map(String::from)
    };
    assert_eq!(name(lines[0]), name(lines[1]));
    // --executor local: nothing more is submitted.
    p.write("in.txt", "three\n");
    let r = Run::from(
        art(&p, home.path(), Some(&bin), &["run", "--executor", "local"])
            .output()
            .unwrap(),
    );
    r.code(0);
    r.says("3 ran");
    assert_eq!(
        std::fs::read_to_string(bin.join("sbatch.log")).unwrap(),
        log
    );
}

#[test]
fn without_sbatch_slurm_stages_run_locally_with_a_warning() {
    let home = tempfile::tempdir().unwrap();
    let p = Project::new(PIPE);
    p.write("in.txt", "x\n");
    let mut c = art(&p, home.path(), None, &["run"]);
    c.env("PATH", "/nonexistent");
    let r = Run::from(c.output().unwrap());
    r.code(0);
    assert!(
        r.stderr.contains("run locally: sbatch is not on PATH"),
        "{}",
        r.stderr
    );
}

fn squeue(args: &[&str]) -> String {
    let o = Command::new("squeue").args(args).output().expect("squeue");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Against the single-node cluster of `scripts/scaleout/with-slurm.sh` (`make scaleout`).
#[test]
#[ignore = "needs a SLURM cluster: `make scaleout` starts one and runs this test"]
fn a_real_slurm_cluster_runs_fails_and_cancels_jobs() {
    assert!(
        std::env::var_os("SLURM_CONF").is_some()
            && Command::new("sinfo")
                .arg("-h")
                .output()
                .is_ok_and(|o| o.status.success()),
        "no SLURM cluster answers (SLURM_CONF unset or sinfo fails): run this test through \
         `make scaleout` (scripts/scaleout/with-slurm.sh), as root"
    );
    let home = tempfile::tempdir().unwrap();
    let p = Project::new(PIPE);
    p.write("in.txt", "one\ntwo\n");
    let r = Run::from(art(&p, home.path(), None, &["run"]).output().unwrap());
    r.code(0);
    r.says("3 stages: 3 ran");
    assert_eq!(p.read("b.txt"), "ONE\nTWO\nONE\nTWO\n");
    assert_eq!(p.read("c.txt").trim(), "4");
    // Job folders of successful jobs are gone; no job id is left saved.
    assert_eq!(p.read(".artifact/slurm/jobs.json").trim(), "{}");

    // A failing command: the stage fails with the job's state and exit code.
    p.write(
        "pipeline.yaml",
        &PIPE.replace("cat a.txt a.txt > b.txt", "echo no space left >&2; exit 3"),
    );
    let r = Run::from(art(&p, home.path(), None, &["run"]).output().unwrap());
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("exit code 3"), "{}", r.stderr);
    assert!(r.stderr.contains("no space left"), "{}", r.stderr);
    assert_eq!(
        p.read("b.txt"),
        "ONE\nTWO\nONE\nTWO\n",
        "previous output kept"
    );

    // Ctrl-C while the job runs: the job is cancelled, the run exits 130.
    p.write(
        "pipeline.yaml",
        &PIPE.replace("cat a.txt a.txt > b.txt", "sleep 60; cat a.txt > b.txt"),
    );
    let mut child = art(&p, home.path(), None, &["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let q = squeue(&["-h", "-t", "RUNNING", "-o", "%i %k"]);
        if let Some(l) = q.lines().find(|l| l.ends_with(" second")) {
            break l.split_whitespace().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the job never started: {q}");
        std::thread::sleep(Duration::from_millis(100));
    };
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(st.code(), Some(130));
    let state = squeue(&["-h", "-t", "all", "-j", &job, "-o", "%T"]);
    assert_eq!(state.trim(), "CANCELLED", "job {job}");
    assert_eq!(
        p.read("b.txt"),
        "ONE\nTWO\nONE\nTWO\n",
        "previous output put back"
    );

    // Two stages over the cache transport, against a real nginx: each job fetches its input
    // from the cache into node-local scratch, runs there and publishes; the runner fetches.
    let nginx = Nginx::start();
    let home = tempfile::tempdir().unwrap();
    let x = Project::new(XPORT);
    x.write("data/in.txt", "one\ntwo\n");
    let none = home.path().join("no-fakes");
    let r = xart(&x, home.path(), &none, &writable(&nginx), true, &["run"]);
    r.code(0);
    r.says("2 stages: 2 ran");
    assert_eq!(x.read("out/b.txt"), "ONE\nTWO\nONE\nTWO\n");
    let ran_in = x.read("where.txt");
    assert!(
        ran_in.contains("/artifact-job.") && !ran_in.starts_with(&x.root().display().to_string()),
        "{ran_in}"
    );
    assert_eq!(names(&nginx.store().join("ac")).len(), 2);
    assert_eq!(x.read(".artifact/slurm/jobs.json").trim(), "{}");
}

// ---- the cache transport (no shared file system), against a real nginx ----

/// Fake `sbatch`/`squeue`/`scancel` for the cache transport: `sbatch` keeps a copy of the job
/// script and runs it at once, as a compute node would, with its own node-local `TMPDIR`
/// (`node-tmp/`) and from `/`; the job's environment is the submitter's, as with sbatch's
/// default `--export=ALL`. `squeue` then reports COMPLETED or FAILED from the job's exit
/// status. A file `skip` makes jobs run nothing (a job that COMPLETED without its manifest);
/// an executable `after` runs after each job (e.g. to tamper with the server's files).
fn node_fakes(dir: &Path) {
    std::fs::create_dir_all(dir.join("node-tmp")).unwrap();
    let d = dir.display();
    let scripts = [
        (
            "sbatch",
            format!(
                r#"#!/bin/sh
echo "$*" >> {d}/sbatch.log
for a in "$@"; do last="$a"; done
n=$(($(wc -l < {d}/sbatch.log) + 600))
cp "$last" {d}/job.$n.sh
st=COMPLETED
if [ ! -e {d}/skip ]; then
  (cd / && TMPDIR={d}/node-tmp sh "$last" >/dev/null 2>&1) || st=FAILED
fi
[ -x {d}/after ] && {d}/after
echo "$st" > {d}/state.$n
echo "$n;cluster"
"#
            ),
        ),
        (
            "squeue",
            format!(
                "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -j ] && ids=\"$2\"; shift; done\nfor i in $(echo \"$ids\" | tr , ' '); do [ -f {d}/state.$i ] && echo \"$i $(cat {d}/state.$i)\"; done\nexit 0\n"
            ),
        ),
        (
            "scancel",
            format!("#!/bin/sh\necho \"$*\" >> {d}/scancel.log\n"),
        ),
    ];
    for (name, text) in scripts {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&p, perm).unwrap();
    }
}

const XPORT: &str = r#"version: 1
stages:
  first:
    kind: command
    executor: slurm
    inputs: [data/in.txt]
    outputs: [out/a.txt, where.txt]
    with: { run: "tr a-z A-Z < data/in.txt > out/a.txt && pwd > where.txt" }
  second:
    kind: command
    executor: slurm
    inputs: [out/a.txt]
    outputs: [out/b.txt]
    with: { run: "cat out/a.txt out/a.txt > out/b.txt" }
"#;

/// `artifact ARGS` with the node fakes first on `PATH` and a user config selecting the cache
/// transport with `remote` (a YAML block, or none) as the remote section; `token`: pass the
/// writer's credentials in `ARTIFACT_REMOTE_TOKEN` (else only a `~/.netrc` may have them).
fn xart(p: &Project, home: &Path, bin: &Path, remote: &str, token: bool, args: &[&str]) -> Run {
    let cfg = home.join(".config/artifact/config.yaml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!("slurm:\n  poll_secs: 0.05\n  result_wait_secs: 1\n  transport: cache\n{remote}"),
    )
    .unwrap();
    let mut c = p.cmd(args);
    let path = std::env::var("PATH").unwrap_or_default();
    super::util::as_user(&mut c, home)
        .env("PATH", format!("{}:{path}", bin.display()))
        .env_remove("TMPDIR");
    if token {
        c.env("ARTIFACT_REMOTE_TOKEN", format!("{USER}:{PASSWORD}"));
    }
    Run::from(c.output().expect("spawn artifact"))
}

fn writable(n: &Nginx) -> String {
    format!("remote:\n  url: {}\n  write: true\n", n.url())
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn digest(s: &str) -> String {
    engine::hash::sha256_bytes(s.as_bytes())
}

#[test]
fn cache_transport_runs_in_node_scratch_and_outputs_arrive_through_the_cache() {
    let nginx = Nginx::start();
    let home = tempfile::tempdir().unwrap();
    // Credentials from ~/.netrc, read by the runner and, on the node, by curl.
    std::fs::write(
        home.path().join(".netrc"),
        format!("machine 127.0.0.1 login {USER} password {PASSWORD}\n"),
    )
    .unwrap();
    let node = home.path().join("node");
    node_fakes(&node);
    let p = Project::new(XPORT);
    p.write("data/in.txt", "one\ntwo\n");
    let r = xart(
        &p,
        home.path(),
        &node,
        &writable(&nginx),
        false,
        &["run", "-j", "1"],
    );
    r.code(0);
    r.says("2 stages: 2 ran");
    assert_eq!(p.read("out/a.txt"), "ONE\nTWO\n");
    assert_eq!(p.read("out/b.txt"), "ONE\nTWO\nONE\nTWO\n");
    // The command ran in the node's scratch, which is gone, and the project never saw it.
    let ran_in = p.read("where.txt");
    assert!(
        ran_in.starts_with(&format!(
            "{}/artifact-job.",
            node.join("node-tmp").display()
        )),
        "{ran_in}"
    );
    assert!(
        names(&node.join("node-tmp")).is_empty(),
        "scratch left on the node"
    );
    assert_eq!(
        names(p.root()),
        [
            ".artifact",
            "data",
            "out",
            "pipeline.lock",
            "pipeline.yaml",
            "where.txt"
        ]
    );
    assert_eq!(names(&p.path("out")), ["a.txt", "b.txt"]);
    // The server holds the input, the outputs and both manifests; no job failed, so no log.
    let cas = names(&nginx.store().join("cas"));
    for content in ["one\ntwo\n", "ONE\nTWO\n", "ONE\nTWO\nONE\nTWO\n", &ran_in] {
        assert!(cas.contains(&digest(content)), "{content:?} not in {cas:?}");
    }
    assert_eq!(cas.len(), 4, "{cas:?}");
    assert_eq!(names(&nginx.store().join("ac")).len(), 2);
    // The jobs start outside the project and write no files of SLURM's; no credentials in
    // the scripts.
    let log = std::fs::read_to_string(node.join("sbatch.log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.contains("--chdir=/ ") && log.contains("--output=/dev/null"),
        "{log}"
    );
    for e in names(&node) {
        if e.starts_with("job.") {
            let script = std::fs::read_to_string(node.join(&e)).unwrap();
            assert!(!script.contains(PASSWORD), "{e} holds the password");
        }
    }
    // Nothing to do the second time; a new clone gets both stages from the cache, submitting
    // nothing.
    let r = xart(&p, home.path(), &node, &writable(&nginx), false, &["run"]);
    r.code(0);
    r.says("0 ran");
    let clone = Project::new(XPORT);
    clone.write("data/in.txt", "one\ntwo\n");
    let r = xart(
        &clone,
        home.path(),
        &node,
        &writable(&nginx),
        false,
        &["run"],
    );
    r.code(0);
    assert!(
        r.stdout
            .contains("0 ran, 2 restored (2 fetched from remote)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read_to_string(node.join("sbatch.log")).unwrap(),
        log
    );
}

#[test]
fn cache_transport_a_failing_command_publishes_nothing_but_its_log() {
    let nginx = Nginx::start();
    let home = tempfile::tempdir().unwrap();
    let node = home.path().join("node");
    node_fakes(&node);
    let pipe = |run: &str| {
        XPORT.replace(
            "tr a-z A-Z < data/in.txt > out/a.txt && pwd > where.txt",
            run,
        )
    };
    let p = Project::new(&pipe("echo disk full >&2; exit 3"));
    p.write("data/in.txt", "one\n");
    p.write("out/a.txt", "old\n");
    let r = xart(&p, home.path(), &node, &writable(&nginx), true, &["run"]);
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    for want in [
        "SLURM job 601 ended FAILED",
        "disk full",
        "the command failed with exit code 3",
    ] {
        assert!(r.stderr.contains(want), "{want:?} not in {}", r.stderr);
    }
    assert_eq!(p.read("out/a.txt"), "old\n", "previous output kept");
    assert!(p.read(".artifact/logs/first.log").contains("disk full"));
    // A command that exits 0 without writing a declared output publishes nothing either.
    p.write("pipeline.yaml", &pipe("echo only one > out/a.txt"));
    let r = xart(&p, home.path(), &node, &writable(&nginx), true, &["run"]);
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("the command did not write its declared output where.txt"),
        "{}",
        r.stderr
    );
    // Only the input is on the server, and two logs (no manifest: neither is one).
    assert_eq!(names(&nginx.store().join("cas")), [digest("one\n")]);
    let ac = nginx.objects("ac");
    assert_eq!(ac.len(), 2, "{ac:?}");
    for f in ac {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("artifact job on "), "{text}");
    }
    assert!(
        names(&node.join("node-tmp")).is_empty(),
        "scratch left on the node"
    );
    // The token reached the jobs through their environment, never through their scripts.
    for e in names(&node).into_iter().filter(|e| e.starts_with("job.")) {
        let script = std::fs::read_to_string(node.join(&e)).unwrap();
        assert!(!script.contains(PASSWORD), "{e} holds the password");
    }
}

#[test]
fn cache_transport_a_tampered_output_fails_the_stage() {
    let nginx = Nginx::start();
    let home = tempfile::tempdir().unwrap();
    let node = home.path().join("node");
    node_fakes(&node);
    // After the job: every blob but the input's is overwritten on the server.
    let input = digest("one\n");
    let after = node.join("after");
    std::fs::write(
        &after,
        format!(
            "#!/bin/sh\nfor f in {}/*; do [ \"${{f##*/}}\" = {input} ] || echo evil > \"$f\"; done\n",
            nginx.store().join("cas").display()
        ),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&after).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&after, perm).unwrap();
    let p = Project::new(XPORT);
    p.write("data/in.txt", "one\n");
    let r = xart(&p, home.path(), &node, &writable(&nginx), true, &["run"]);
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "of SLURM job 601 cannot be used: cas/{} has content with sha256 {} (damaged or tampered with)",
            digest("ONE\n"),
            digest("evil\n")
        )),
        "{}",
        r.stderr
    );
    assert!(!p.path("out/a.txt").exists());
    assert!(!p.path("where.txt").exists());

    // An input the server holds under its digest, with other bytes: the job checks what it
    // downloaded and fails, naming the input.
    std::fs::remove_file(&after).unwrap();
    let evil = digest("two\n");
    std::fs::write(nginx.store().join("cas").join(&evil), "evil\n").unwrap();
    p.write("data/in.txt", "two\n");
    let r = xart(&p, home.path(), &node, &writable(&nginx), true, &["run"]);
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "input data/in.txt from {}/cas/{evil} does not hash to its name (damaged or tampered with)",
            nginx.url()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn cache_transport_a_completed_job_without_manifest_fails_clearly() {
    let nginx = Nginx::start();
    let home = tempfile::tempdir().unwrap();
    let node = home.path().join("node");
    node_fakes(&node);
    std::fs::write(node.join("skip"), "").unwrap();
    let p = Project::new(XPORT);
    p.write("data/in.txt", "one\n");
    let r = xart(&p, home.path(), &node, &writable(&nginx), true, &["run"]);
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    for want in [
        "SLURM job 601 COMPLETED but its manifest never appeared on the remote cache",
        &format!("({}/ac/", nginx.url()),
        "it published no log",
    ] {
        assert!(r.stderr.contains(want), "{want:?} not in {}", r.stderr);
    }
    assert!(!p.path("out/a.txt").exists());
}

#[test]
fn cache_transport_without_a_writable_remote_is_a_usage_error() {
    let nginx = Nginx::start();
    let home = tempfile::tempdir().unwrap();
    let node = home.path().join("node");
    node_fakes(&node);
    let p = Project::new(XPORT);
    p.write("data/in.txt", "one\n");
    let r = xart(&p, home.path(), &node, "", true, &["run"]);
    r.code(2);
    assert!(
        r.stderr.contains("slurm.transport is `cache`, which needs a remote cache the jobs can write to, but no remote cache is configured"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("config.yaml"), "{}", r.stderr);
    let read_only = format!("remote:\n  url: {}\n", nginx.url());
    let r = xart(&p, home.path(), &node, &read_only, true, &["run"]);
    r.code(2);
    assert!(r.stderr.contains("writes are off"), "{}", r.stderr);
    // --executor local needs neither (locally the command makes its own folder, as the
    // project's folders are its own; a job's scratch has the folders of every declared path).
    p.write(
        "pipeline.yaml",
        &XPORT.replace("tr a-z", "mkdir -p out && tr a-z"),
    );
    xart(
        &p,
        home.path(),
        &node,
        "",
        true,
        &["run", "--executor", "local"],
    )
    .code(0);
    assert!(!node.join("sbatch.log").exists());
}
