//! Who is listening on a TCP port (Linux: /proc), so "port in use" errors can
//! name the process instead of leaving the student to guess.

/// "name (pid N)" of the process listening on `port`, when it can be found.
pub fn owner(port: u16) -> Option<String> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|table| listening_inode(table, port))?;
    let target = format!("socket:[{inode}]");
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = proc_dir.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target) {
                let name = std::fs::read_to_string(proc_dir.path().join("comm")).unwrap_or_default();
                return Some(format!("{} (pid {pid})", name.trim()));
            }
        }
    }
    None
}

fn listening_inode(table: &str, port: u16) -> Option<String> {
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let local_port = cols.get(1)?.rsplit(':').next()?;
        let listening = cols.get(3)? == &"0A";
        (listening && u16::from_str_radix(local_port, 16).ok()? == port).then(|| cols.get(9).map(|s| s.to_string()))?
    })
}
