//! `strace -f -o FILE` output, parsed into which thread made which system
//! call: the bug-class tests use it to see every poller call, however the
//! code that made it got hold of the poller.
#![allow(dead_code)]

use std::collections::HashMap;

/// One system call as `strace -f` logged it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The kernel thread id that made the call.
    pub tid: u32,
    pub name: String,
    /// The first argument, when it is a number (a descriptor, for the calls
    /// these tests trace).
    pub fd: Option<i32>,
    /// What it returned (`"5"`, `"-1 EAGAIN (Resource temporarily
    /// unavailable)"`); `None` if the log never shows it finishing.
    pub result: Option<String>,
    /// The line as logged (for failure messages).
    pub line: String,
}

impl Call {
    /// It failed with `EAGAIN`: a non-blocking socket was full (or empty).
    pub fn would_block(&self) -> bool {
        self.result
            .as_deref()
            .is_some_and(|r| r.starts_with("-1 EAGAIN"))
    }

    /// It returned a non-negative number.
    pub fn succeeded(&self) -> bool {
        self.result
            .as_deref()
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    }
}

/// Every call in `log`, in the order strace logged their starts. A call
/// another thread interrupted (`<unfinished ...>`, later `<... resumed>`)
/// is one `Call`. Signal and exit lines are skipped.
pub fn parse(log: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let mut unfinished: HashMap<u32, usize> = HashMap::new();
    for line in log.lines() {
        let Some((tid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(tid) = tid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("<... ") {
            // `<... NAME resumed>REST) = RESULT`
            if let Some(i) = unfinished.remove(&tid) {
                calls[i].result = result_of(rest);
                calls[i].line.push_str(" ... ");
                calls[i].line.push_str(rest);
            }
            continue;
        }
        let Some(open) = rest.find('(') else {
            continue;
        };
        let name = &rest[..open];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `--- SIGCHLD ...`, `+++ exited ...`
        }
        let fd = rest[open + 1..]
            .split([',', ')'])
            .next()
            .and_then(|arg| arg.trim().parse().ok());
        let finished = !rest.ends_with("<unfinished ...>");
        if !finished {
            unfinished.insert(tid, calls.len());
        }
        calls.push(Call {
            tid,
            name: name.to_string(),
            fd,
            result: if finished { result_of(rest) } else { None },
            line: line.to_string(),
        });
    }
    calls
}

/// The text after the last ` = ` (arguments come before it; strace escapes
/// the data strings it shows).
fn result_of(text: &str) -> Option<String> {
    text.rfind(" = ").map(|i| text[i + 3..].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_finished_unfinished_and_resumed_calls() {
        let log = "\
100 epoll_wait(3, [{events=EPOLLIN, data={u32=1, u64=1}}], 1024, 100) = 1
101   writev(12, [{iov_base=\"\\26\\3\\3 = x\", iov_len=5}], 1 <unfinished ...>
100 epoll_ctl(3, EPOLL_CTL_DEL, 12, NULL) = 0
101 <... writev resumed>) = -1 EAGAIN (Resource temporarily unavailable)
101 --- SIGCHLD {si_signo=SIGCHLD} ---
102 sendto(9, \"a\", 1, MSG_NOSIGNAL, NULL, 0) = 1
102 +++ exited with 0 +++
";
        let calls = parse(log);
        let names: Vec<_> = calls.iter().map(|c| (c.tid, c.name.as_str())).collect();
        assert_eq!(
            names,
            [
                (100, "epoll_wait"),
                (101, "writev"),
                (100, "epoll_ctl"),
                (102, "sendto")
            ]
        );
        assert_eq!(calls[1].fd, Some(12));
        assert!(calls[1].would_block());
        assert!(calls[0].succeeded() && calls[3].succeeded());
        assert_eq!(calls[2].result.as_deref(), Some("0"));
    }
}
