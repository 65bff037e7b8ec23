//! A real PostgreSQL server for one test: Debian's `postgresql` binaries, a
//! fresh cluster in a temporary directory, loopback only, stopped on drop.
//! PostgreSQL refuses to run as root, so under root (CI) it runs as the
//! `postgres` user the package creates.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    time::{Duration, Instant},
};

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    server: Child,
    _dir: tempfile::TempDir,
}

/// Where the server binaries are: `pg_config --bindir`, else the newest
/// /usr/lib/postgresql/<version>/bin.
fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (Debian: apt-get install postgresql; .ci/run does)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL server under /usr/lib/postgresql/*/bin")
}

fn as_server_user(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn checked(what: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Postgres {
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let out = Command::new("id").args(["-u", "postgres"]).output().unwrap();
            let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("a postgres user");
            std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
        }
        let data = dir.path().join("data");
        checked(
            "initdb",
            as_server_user(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
                .output()
                .unwrap(),
        );
        let port = super::free_port();
        let server = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-k")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pg = Postgres { port, bin: bin.clone(), data, server, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .unwrap();
            if ready.success() {
                return pg;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not accept connections within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn psql(&self, db: &str) -> Command {
        let mut c = Command::new("psql");
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", db]).args([
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-A",
            "-t",
        ]);
        c
    }

    /// Runs a script file (it may `\c` to another database).
    pub fn run_file(&self, file: &Path) {
        checked("psql -f", self.psql("postgres").arg("-f").arg(file).output().unwrap());
    }

    /// Runs SQL in `db` and returns what it printed.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        String::from_utf8(checked("psql -c", self.psql(db).arg("-c").arg(sql).output().unwrap()).stdout).unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A fast shutdown through pg_ctl: the server runs under `runuser`, which
        // does not pass signals on, and SIGKILL would leave its children behind.
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "30", "stop"])
            .output();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
