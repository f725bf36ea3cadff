//! What the matrix reads from /proc about a server's processes: its child
//! processes, their CPU time and memory, whether they have exited.

/// `root` and every process descended from it (from the parent ids in
/// /proc/*/stat).
pub fn tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat_fields(&stat)?.get(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    tree
}

/// The fields of a /proc/PID/stat line after "pid (comm)", from the state
/// on (comm may hold spaces and ')').
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
}

/// CPU seconds of the live threads of `pid`, from
/// /proc/PID/task/*/schedstat (nanosecond resolution; a thread that has
/// exited takes its time with it).
pub fn threads_cpu_seconds(pid: u32) -> f64 {
    let mut ns = 0u64;
    let tasks = format!("/proc/{pid}/task");
    for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    ns as f64 / 1e9
}

/// utime + stime of a whole process, exited threads included
/// (/proc/PID/stat, in clock ticks).
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // From the state (field 3) on: utime is field 14, stime 15.
    let ticks: u64 = stat_fields(&stat)
        .unwrap_or_default()
        .get(11..13)
        .into_iter()
        .flatten()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}

/// Resident memory of `pid`, in bytes (0 if it is gone).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Whether `pid` has exited (gone, or a zombie: its sockets are closed).
pub fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat_fields(&stat)?.first()? == &"Z"))
        .unwrap_or(true)
}

/// SIGKILL to `pid` (not a child of ours: `Child::kill` does those).
pub fn kill(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes plain integers; a pid that has gone since is
        // at worst an ESRCH.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
