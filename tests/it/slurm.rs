//! `executor: slurm` from the command line: with fake `sbatch`/`squeue`/`scancel` on `PATH`
//! (the state machine itself is tested in the engine), and against a real single-node SLURM
//! (`make scaleout` starts one with `scripts/scaleout/with-slurm.sh` and runs the ignored test;
//! without a cluster it fails loudly).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
    c.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("ARTIFACT_CONFIG")
        .env_remove("ARTIFACT_REMOTE");
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
    assert!(r.stdout.contains("3 stages: 3 ran"), "{}", r.stdout);
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
    assert!(r.stdout.contains("3 ran"), "{}", r.stdout);
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
    assert!(
        r.stdout.contains("3 stages: 3 ran"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
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
}
