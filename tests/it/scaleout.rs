//! Services for the scale-out tests: a real nginx serving the Bazel HTTP cache layout with
//! WebDAV PUT (basic auth for writes), started on 127.0.0.1 at a free port and stopped by PID.
//! Missing nginx is a loud failure, never a skip (`make scaleout-deps` installs it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "ci";
pub const PASSWORD: &str = "s3cret";

pub struct Nginx {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn tool(name: &str) -> PathBuf {
    for d in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(d).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} is not installed, so the remote-cache tests cannot run (they never skip): \
         run `make scaleout-deps` or `apt-get install nginx apache2-utils`"
    );
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

impl Nginx {
    pub fn start() -> Nginx {
        let nginx = tool("nginx");
        let htpasswd = tool("htpasswd");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["store/cas", "store/ac", "store/.tmp", "tmp", "logs"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        let root = nix_is_root();
        let user_line = if root {
            // The master drops its workers to www-data; the store must be theirs, and the
            // folders above it traversable.
            let st = Command::new("chown")
                .args(["-R", "www-data:www-data"])
                .arg(d.join("store"))
                .status()
                .expect("chown");
            assert!(st.success(), "chown www-data failed");
            "user www-data www-data;"
        } else {
            ""
        };
        set_mode(d, 0o755);
        let st = Command::new(&htpasswd)
            .args(["-bcB"])
            .arg(d.join("htpasswd"))
            .args([USER, PASSWORD])
            .stderr(Stdio::null())
            .status()
            .expect("htpasswd");
        assert!(st.success(), "htpasswd failed");
        set_mode(&d.join("htpasswd"), 0o644);
        let port = free_port();
        let dd = d.display();
        let conf = format!(
            r#"{user_line}
worker_processes 1;
daemon off;
master_process on;
pid {dd}/nginx.pid;
error_log {dd}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {dd}/logs/access.log;
  client_body_temp_path {dd}/store/.tmp;
  proxy_temp_path {dd}/tmp/proxy;
  fastcgi_temp_path {dd}/tmp/fastcgi;
  uwsgi_temp_path {dd}/tmp/uwsgi;
  scgi_temp_path {dd}/tmp/scgi;
  default_type application/octet-stream;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {dd}/store;
    # A broken backend, for the 5xx case.
    location ^~ /broken/ {{ return 500; }}
    location ~ "^/(cas|ac)/[0-9a-f]{{64}}$" {{
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      limit_except GET {{
        auth_basic "artifact cache";
        auth_basic_user_file {dd}/htpasswd;
      }}
    }}
    location / {{ return 404; }}
  }}
}}
"#
        );
        std::fs::write(d.join("nginx.conf"), conf).expect("write nginx.conf");
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(d.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let mut n = Nginx { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = n.child.try_wait() {
                let log = std::fs::read_to_string(n.dir.path().join("logs/error.log"))
                    .unwrap_or_default();
                panic!("nginx exited ({st}) before answering:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "nginx is not answering on 127.0.0.1:{port} after 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Files under `store/<space>/`.
    pub fn objects(&self, space: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.store().join(space))
            .expect("read store")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: graceful stop of the master, whose workers follow (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(p: &Path, mode: u32) {
    let mut perm = std::fs::metadata(p).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, mode);
    std::fs::set_permissions(p, perm).expect("chmod");
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
