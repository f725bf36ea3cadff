//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP) and the pops under them (LMOVE, RPOPLPUSH, LMPOP,
//! ZMPOP), against a real `redis-server`: multi-connection scenarios run on
//! both servers, and their transcripts must be byte-for-byte the same, on
//! RESP2 and on RESP3. Every read has a timeout; a scenario waits for a
//! client to be blocked by polling INFO's `blocked_clients` (bounded).

mod util;

include!("util/kv_example.rs");

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use util::differential::{assert_same, differential, Raw};
use util::real_redis::RealRedis;

/// How long a reply that is due may take.
const REPLY_WAIT: Duration = Duration::from_secs(5);
/// How long "no reply" is watched for.
const QUIET_WAIT: Duration = Duration::from_millis(150);

/// A raw RESP connection with bounded reads.
struct Conn(Raw);

impl Conn {
    fn connect(port: u16) -> Self {
        let raw = Raw::connect(port);
        raw.0.get_ref().set_read_timeout(Some(REPLY_WAIT)).unwrap();
        Conn(raw)
    }

    fn send(&mut self, args: &[String]) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.0.send(&args);
    }

    fn read(&mut self) -> Vec<u8> {
        self.0.read()
    }

    /// A reply if one arrives within `QUIET_WAIT`; "<closed>" at EOF.
    fn try_read(&mut self) -> Option<Vec<u8>> {
        self.0
             .0
            .get_ref()
            .set_read_timeout(Some(QUIET_WAIT))
            .unwrap();
        let got = match self.0 .0.fill_buf() {
            Ok([]) => Some(b"<closed>".to_vec()),
            Ok(_) => None,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Some(Vec::new())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                Some(b"<closed>".to_vec())
            }
            Err(e) => panic!("read: {e}"),
        };
        self.0
             .0
            .get_ref()
            .set_read_timeout(Some(REPLY_WAIT))
            .unwrap();
        match got {
            Some(v) if v.is_empty() => None,
            Some(closed) => Some(closed),
            None => Some(self.read()),
        }
    }

    fn call(&mut self, args: &[String]) -> Vec<u8> {
        self.send(args);
        self.read()
    }
}

/// Runs `steps` on the server at `port` with connections 0..4, each on
/// protocol `proto`. A step's text is a command (sent, its reply
/// recorded), or:
/// - `> CMD`: send only (a command that blocks);
/// - `<`: read the connection's next reply;
/// - `?`: record whether a reply arrives within `QUIET_WAIT`;
/// - `BLOCKED n`: wait until the server has `n` blocked clients;
/// - `CLOSE`: close the connection;
/// - `SLEEP ms`.
///
/// `{n}` in a command is connection n's CLIENT ID.
fn transcript(port: u16, proto: &str, steps: &[(usize, &str)]) -> Vec<(String, Vec<u8>)> {
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let mut control = Conn::connect(port);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let mut c = Conn::connect(port);
        c.call(&args(&["HELLO", proto]));
        let id = c.call(&args(&["CLIENT", "ID"]));
        ids.push(String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned());
        conns.push(Some(c));
    }
    let mut out = Vec::new();
    for &(i, step) in steps {
        let label = format!("[{i}] {step}");
        // Shown only if the test fails: where a read timed out.
        eprintln!("port {port} RESP{proto}: {label}");
        if let Some(ms) = step.strip_prefix("SLEEP ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        if let Some(n) = step.strip_prefix("BLOCKED ") {
            let want = format!("blocked_clients:{n}\r\n");
            let deadline = Instant::now() + REPLY_WAIT;
            loop {
                let info = control.call(&args(&["INFO", "clients"]));
                if String::from_utf8_lossy(&info).contains(&want) {
                    break;
                }
                assert!(Instant::now() < deadline, "{label}: never reached");
                std::thread::sleep(Duration::from_millis(5));
            }
            continue;
        }
        if step == "CLOSE" {
            conns[i] = None;
            continue;
        }
        let conn = conns[i].as_mut().expect("an open connection");
        let command = |text: &str| -> Vec<String> {
            text.split(' ')
                .map(|w| {
                    let mut w = w.to_string();
                    for (n, id) in ids.iter().enumerate() {
                        w = w.replace(&format!("{{{n}}}"), id);
                    }
                    w
                })
                .collect()
        };
        let reply = match step {
            "<" => conn.read(),
            "?" => conn.try_read().unwrap_or_else(|| b"<none>".to_vec()),
            _ => match step.strip_prefix("> ") {
                Some(text) => {
                    conn.send(&command(text));
                    continue;
                }
                None => conn.call(&command(step)),
            },
        };
        out.push((label, reply));
    }
    out
}

/// Runs `steps` on kv and on redis-server, on RESP2 and RESP3; the
/// transcripts must match byte for byte.
fn compare(steps: &[(usize, &str)]) {
    let real = RealRedis::start();
    let kv = kv_test_server(None);
    for proto in ["2", "3"] {
        let ours = transcript(kv.addr.port(), proto, steps);
        let theirs = transcript(real.addr.port(), proto, steps);
        assert_same(proto, &ours, &theirs, |r| {
            format!("{:?}", String::from_utf8_lossy(r))
        });
    }
}

#[test]
fn a_push_wakes_a_blocked_client() {
    compare(&[
        (1, "FLUSHALL"),
        (0, "> BLPOP list 0"),
        (1, "BLOCKED 1"),
        (0, "?"),
        (1, "RPUSH list a b"),
        (0, "<"),
        (1, "BLOCKED 0"),
        (1, "LRANGE list 0 -1"),
        (0, "> BRPOP list2 0"),
        (1, "BLOCKED 1"),
        (1, "LPUSH list2 x y"),
        (0, "<"),
        (1, "LRANGE list2 0 -1"),
    ]);
}

#[test]
fn waiters_are_served_first_come_first_served() {
    compare(&[
        (3, "FLUSHALL"),
        (0, "> BLPOP k 0"),
        (3, "BLOCKED 1"),
        (1, "> BLPOP k 0"),
        (3, "BLOCKED 2"),
        (2, "> BLPOP k 0"),
        (3, "BLOCKED 3"),
        (3, "RPUSH k a b c d"),
        (0, "<"),
        (1, "<"),
        (2, "<"),
        (3, "LRANGE k 0 -1"),
        // A key consumed by the first waiter leaves the second blocked.
        (3, "DEL k"),
        (0, "> BLPOP k 0"),
        (3, "BLOCKED 1"),
        (1, "> BLPOP k 0"),
        (3, "BLOCKED 2"),
        (3, "RPUSH k x"),
        (0, "<"),
        (1, "?"),
        (3, "BLOCKED 1"),
        (3, "RPUSH k y"),
        (1, "<"),
        (3, "EXISTS k"),
    ]);
}

#[test]
fn timeouts_answer_null() {
    compare(&[
        (0, "FLUSHALL"),
        (0, "BLPOP k 0.1"),
        (0, "BRPOP k 0.05"),
        (0, "BLMOVE a b LEFT RIGHT 0.05"),
        (0, "BRPOPLPUSH a b 0.05"),
        (0, "BLMPOP 0.05 2 k k2 LEFT"),
        (0, "BLMPOP 0.05 1 k RIGHT COUNT 3"),
        (0, "BZPOPMIN z 0.05"),
        (0, "BZPOPMAX z 0.05"),
        (0, "BZMPOP 0.05 1 z MIN"),
        (0, "BZMPOP 0.05 1 z MAX COUNT 2"),
        (0, "BLPOP k 1e-5"),
        (1, "BLOCKED 0"),
        (0, "EXISTS k a b z"),
    ]);
}

#[test]
fn argument_errors_match() {
    compare(&[
        (0, "FLUSHALL"),
        (0, "BLPOP k x"),
        (0, "BLPOP k -1"),
        (0, "BLPOP k -0.0011"),
        (0, "BLPOP k inf"),
        (0, "BLPOP k nan"),
        (0, "BLPOP k 1e17"),
        (0, "BLPOP k 1e5000"),
        (0, "BLPOP k ''"),
        (0, "BLPOP k"),
        (0, "BRPOP"),
        (0, "BLMOVE a b UP DOWN 0"),
        (0, "BLMOVE a b LEFT RIGHT x"),
        (0, "BLMOVE a b LEFT RIGHT"),
        (0, "BRPOPLPUSH a b -1"),
        (0, "BLMPOP x 1 k LEFT"),
        (0, "BLMPOP 0 0 k LEFT"),
        (0, "BLMPOP 0 x k LEFT"),
        (0, "BLMPOP 0 2 k LEFT"),
        (0, "BLMPOP 0 1 k MIDDLE"),
        (0, "BLMPOP 0 1 k LEFT COUNT 0"),
        (0, "BLMPOP 0 1 k LEFT COUNT"),
        (0, "BLMPOP 0 1 k LEFT COUNT 1 COUNT 1"),
        (0, "BLMPOP 0 1 k"),
        (0, "BZMPOP 0 1 z LEFT"),
        (0, "BZMPOP 0 99999999999999 z MIN"),
        // numkeys, the end and COUNT are read before the timeout.
        (0, "BLMPOP x 1 k LEFT COUNT 0"),
        (0, "BLMPOP -1 1 k MIDDLE"),
        (0, "BZMPOP x 0 z MIN"),
        (0, "BZMPOP -1 1 z MAX COUNT -1"),
        (0, "BLMPOP x 1 k LEFT"),
        (0, "BZPOPMIN z -1"),
        (0, "BZPOPMAX z"),
    ]);
}

#[test]
fn a_waiter_on_several_keys_takes_the_first_that_gets_data() {
    compare(&[
        (2, "FLUSHALL"),
        (0, "> BLPOP k1 k2 k1 0"),
        (2, "BLOCKED 1"),
        (1, "RPUSH k2 v"),
        (0, "<"),
        (2, "BLOCKED 0"),
        // Data already there: the first key in order that has some.
        (1, "RPUSH k3 c"),
        (1, "RPUSH k2 b"),
        (0, "BLPOP k1 k2 k3 0"),
        (0, "BLMPOP 0 3 k1 k2 k3 RIGHT COUNT 5"),
        (0, "> BZMPOP 0 2 z1 z2 MAX COUNT 2"),
        (2, "BLOCKED 1"),
        (1, "ZADD z2 1 a 2 b 3 c"),
        (0, "<"),
        (1, "ZRANGE z2 0 -1 WITHSCORES"),
    ]);
}

#[test]
fn blmove_into_a_key_another_client_waits_on_wakes_it_in_turn() {
    compare(&[
        (3, "FLUSHALL"),
        (0, "> BLMOVE src dst LEFT RIGHT 0"),
        (3, "BLOCKED 1"),
        (1, "> BLPOP dst 0"),
        (3, "BLOCKED 2"),
        (2, "> BRPOPLPUSH dst end 0"),
        (3, "BLOCKED 3"),
        (3, "RPUSH src v"),
        (0, "<"),
        (1, "<"),
        (2, "?"),
        (3, "LLEN dst"),
        (3, "RPUSH dst w"),
        (2, "<"),
        (3, "LRANGE end 0 -1"),
        // Moving a list onto itself rotates it.
        (0, "> BLMOVE r r LEFT RIGHT 0"),
        (3, "BLOCKED 1"),
        (3, "RPUSH r 1 2 3"),
        (0, "<"),
        (3, "LRANGE r 0 -1"),
    ]);
}

#[test]
fn wrong_types_answer_or_wait_as_redis_does() {
    compare(&[
        (3, "FLUSHALL"),
        (3, "SET s x"),
        (0, "BLPOP nope s 0"),
        (0, "BZPOPMIN s 0"),
        (0, "BLMPOP 0 2 nope s LEFT"),
        (0, "BZMPOP 0 1 s MIN"),
        (3, "RPUSH l a"),
        (0, "BRPOPLPUSH l s 0"),
        (0, "BZPOPMIN l 0"),
        // A waiter whose destination holds another type gets WRONGTYPE;
        // the element goes to the next waiter.
        (0, "> BLMOVE src s LEFT RIGHT 0"),
        (3, "BLOCKED 1"),
        (1, "> BLPOP src 0"),
        (3, "BLOCKED 2"),
        (3, "RPUSH src v1"),
        (0, "<"),
        (1, "<"),
        (3, "EXISTS src"),
        // A zset waiter on a key that becomes a list stays blocked.
        (0, "> BZPOPMIN k 0"),
        (3, "BLOCKED 1"),
        (3, "RPUSH k v"),
        (0, "?"),
        (3, "DEL k"),
        (3, "ZADD k 1.5 m"),
        (0, "<"),
    ]);
}

#[test]
fn inside_multi_nothing_blocks() {
    compare(&[
        (0, "FLUSHALL"),
        (0, "MULTI"),
        (0, "BLPOP k 0"),
        (0, "BRPOP k 0"),
        (0, "BLMOVE a b LEFT RIGHT 0"),
        (0, "BRPOPLPUSH a b 0"),
        (0, "BLMPOP 0 1 k LEFT"),
        (0, "BZPOPMIN z 0"),
        (0, "BZPOPMAX z 0"),
        (0, "BZMPOP 0 1 z MIN"),
        (0, "RPUSH k v"),
        (0, "BLPOP k 0"),
        (0, "EXEC"),
        (1, "BLOCKED 0"),
        // A push inside a transaction serves after EXEC, and only if the
        // key still has data then.
        (1, "> BLPOP q 0"),
        (0, "BLOCKED 1"),
        (0, "MULTI"),
        (0, "RPUSH q 1"),
        (0, "DEL q"),
        (0, "EXEC"),
        (1, "?"),
        (0, "MULTI"),
        (0, "RPUSH q 2"),
        (0, "RPUSH q 3"),
        (0, "EXEC"),
        (1, "<"),
        (0, "LRANGE q 0 -1"),
    ]);
}

#[test]
fn a_client_that_leaves_while_blocked_leaves_nothing_behind() {
    compare(&[
        (1, "FLUSHALL"),
        (0, "> BLPOP k 0"),
        (1, "BLOCKED 1"),
        (0, "CLOSE"),
        (1, "BLOCKED 0"),
        (1, "RPUSH k v"),
        (1, "LRANGE k 0 -1"),
        // Killed while blocked: the same.
        (2, "> BZPOPMIN z 0"),
        (1, "BLOCKED 1"),
        (1, "CLIENT KILL ID {2}"),
        (1, "BLOCKED 0"),
        (1, "ZADD z 1 m"),
        (1, "ZCARD z"),
    ]);
}

#[test]
fn requests_sent_while_blocked_run_after_in_order() {
    compare(&[
        (1, "FLUSHALL"),
        (0, "> BLPOP k 0"),
        (0, "> PING"),
        (0, "> RPUSH k2 mine"),
        (0, "> BLPOP k3 0"),
        (0, "> ECHO after"),
        (1, "BLOCKED 1"),
        (0, "?"),
        (1, "RPUSH k v"),
        (0, "<"),
        (0, "<"),
        (0, "<"),
        (0, "?"),
        (1, "BLOCKED 1"),
        (1, "RPUSH k3 w"),
        (0, "<"),
        (0, "<"),
        // CLIENT REPLY OFF silences a served reply too.
        (0, "> CLIENT REPLY SKIP"),
        (0, "> BLPOP k4 0"),
        (1, "BLOCKED 1"),
        (1, "RPUSH k4 x"),
        (0, "PING"),
    ]);
}

#[test]
fn client_unblock_answers_as_a_timeout_or_an_error() {
    compare(&[
        (1, "FLUSHALL"),
        (0, "> BLPOP k 0"),
        (1, "BLOCKED 1"),
        (1, "CLIENT UNBLOCK {0} ERROR"),
        (0, "<"),
        (1, "CLIENT UNBLOCK {0}"),
        (0, "> BZMPOP 0 1 z MIN"),
        (1, "BLOCKED 1"),
        (1, "CLIENT UNBLOCK {0} FOO"),
        (1, "CLIENT UNBLOCK x"),
        (1, "CLIENT UNBLOCK {0} TIMEOUT"),
        (0, "<"),
        (1, "BLOCKED 0"),
    ]);
}

#[test]
fn keys_made_by_rename_move_and_swapdb_wake_waiters() {
    compare(&[
        (1, "FLUSHALL"),
        (0, "> BLPOP k 0"),
        (1, "BLOCKED 1"),
        (1, "RPUSH tmp a"),
        (1, "RENAME tmp k"),
        (0, "<"),
        (0, "> BZPOPMAX z 0"),
        (1, "BLOCKED 1"),
        (1, "SELECT 1"),
        (1, "ZADD z 1 a 2 b"),
        (1, "MOVE z 0"),
        (0, "<"),
        (0, "> BLMPOP 0 1 s LEFT COUNT 2"),
        (1, "BLOCKED 1"),
        (1, "RPUSH s x y z"),
        (1, "SWAPDB 0 1"),
        (0, "<"),
        (1, "LRANGE s 0 -1"),
    ]);
}

#[test]
fn a_served_waiter_touches_watched_keys() {
    compare(&[
        (2, "FLUSHALL"),
        (0, "WATCH dst"),
        (1, "> BLMOVE src dst RIGHT LEFT 0"),
        (2, "BLOCKED 1"),
        (2, "RPUSH src v"),
        (1, "<"),
        (0, "MULTI"),
        (0, "GET x"),
        (0, "EXEC"),
        (0, "WATCH src"),
        (1, "> BLPOP src 0"),
        (2, "BLOCKED 1"),
        (2, "RPUSH src w"),
        (1, "<"),
        (0, "MULTI"),
        (0, "GET x"),
        (0, "EXEC"),
    ]);
}

#[test]
fn keys_are_served_in_the_order_they_became_ready() {
    compare(&[
        (3, "FLUSHALL"),
        (0, "> BLPOP a b 0"),
        (3, "BLOCKED 1"),
        (3, "MULTI"),
        (3, "RPUSH b 1"),
        (3, "RPUSH a 2"),
        (3, "EXEC"),
        (0, "<"),
        (3, "LRANGE a 0 -1"),
        (3, "DEL a b"),
        (0, "> BLPOP a 0"),
        (3, "BLOCKED 1"),
        (1, "> BLPOP b a 0"),
        (3, "BLOCKED 2"),
        (2, "> BLPOP b 0"),
        (3, "BLOCKED 3"),
        (3, "MULTI"),
        (3, "RPUSH a x y"),
        (3, "RPUSH b z"),
        (3, "EXEC"),
        (0, "<"),
        (1, "<"),
        (2, "<"),
        (3, "EXISTS a b"),
        // Waiters wait in their own database.
        (0, "SELECT 1"),
        (0, "> BLPOP k 0"),
        (3, "BLOCKED 1"),
        (3, "RPUSH k in0"),
        (0, "?"),
        (3, "SELECT 1"),
        (3, "RPUSH k in1"),
        (0, "<"),
        (3, "SELECT 0"),
        (3, "LRANGE k 0 -1"),
    ]);
}

/// The non-blocking pops, through the synchronous differential helper.
const POPS: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    (0, "RPUSH l a b c d"),
    (0, "LMOVE l l2 LEFT RIGHT"),
    (0, "LMOVE l l2 RIGHT LEFT"),
    (0, "LMOVE l l LEFT RIGHT"),
    (0, "LRANGE l 0 -1"),
    (0, "LRANGE l2 0 -1"),
    (0, "LMOVE nope l LEFT LEFT"),
    (0, "RPUSH one a"),
    (0, "LMOVE one one LEFT RIGHT"),
    (0, "RPOPLPUSH one one"),
    (0, "LRANGE one 0 -1"),
    (0, "LMOVE l l2 UP DOWN"),
    (0, "LMOVE l l2 LEFT"),
    (0, "RPOPLPUSH l l2"),
    (0, "RPOPLPUSH l l2"),
    (0, "EXISTS l"),
    (0, "RPOPLPUSH nope l2"),
    (0, "SET s x"),
    (0, "LMOVE s l2 LEFT LEFT"),
    (0, "LMOVE l2 s LEFT LEFT"),
    (0, "LMOVE nope s LEFT LEFT"),
    (0, "RPOPLPUSH l2 s"),
    (0, "LMPOP 1 l2 LEFT"),
    (0, "LMPOP 2 nope l2 RIGHT COUNT 10"),
    (0, "LMPOP 1 l2 LEFT"),
    (0, "LMPOP 2 nope s LEFT"),
    (0, "LMPOP 0 k LEFT"),
    (0, "LMPOP -1 k LEFT"),
    (0, "LMPOP x k LEFT"),
    (0, "LMPOP 2 k LEFT"),
    (0, "LMPOP 1 k MIDDLE"),
    (0, "LMPOP 1 k LEFT COUNT 0"),
    (0, "LMPOP 1 k LEFT COUNT -1"),
    (0, "LMPOP 1 k LEFT COUNT"),
    (0, "LMPOP 1 k LEFT FOO"),
    (0, "LMPOP 1 k LEFT COUNT 1 COUNT 1"),
    (0, "LMPOP 9223372036854775807 k LEFT"),
    (0, "LMPOP 1 k"),
    (0, "RPUSH big 1 2 3"),
    (0, "LMPOP 1 big LEFT COUNT 9223372036854775807"),
    (0, "ZADD z 1 a 2 b 3 c 4.5 d"),
    (0, "ZMPOP 1 z MIN"),
    (0, "ZMPOP 1 z MAX COUNT 2"),
    (0, "ZMPOP 2 nope z MAX COUNT 9223372036854775807"),
    (0, "ZMPOP 1 z MIN"),
    (0, "ZMPOP 1 s MIN"),
    (0, "ZMPOP 1 z LEFT"),
    (0, "ZMPOP 1 z MIN COUNT 0"),
    (0, "ZMPOP 0 z MIN"),
    (0, "ZADD z 1 a"),
    (0, "BZPOPMIN z 0"),
    (0, "ZADD z 1 a 2 b"),
    (0, "BZPOPMAX nope z 0"),
    (0, "BZMPOP 0 1 z MIN COUNT 5"),
    // Scores as Redis 7.0 prints doubles (%.17g), not shortest form.
    (0, "ZADD z 0.1 a 1.1 b 2.5e-7 c 3 d 4 e"),
    (0, "ZMPOP 1 z MIN"),
    (0, "ZMPOP 1 z MIN COUNT 1"),
    (0, "BZPOPMIN z 0"),
    (0, "BZMPOP 0 1 z MAX"),
    (0, "RPUSH l3 a"),
    (0, "BLMOVE l3 l4 LEFT LEFT 0"),
    (0, "BRPOPLPUSH l4 l3 0"),
    (0, "BLMPOP 0 1 l3 RIGHT"),
    // WATCH: the pops touch what they change.
    (0, "RPUSH w a b"),
    (0, "WATCH w"),
    (1, "LMPOP 1 w LEFT"),
    (0, "MULTI"),
    (0, "LLEN w"),
    (0, "EXEC"),
    (0, "ZADD wz 1 a 2 b"),
    (0, "WATCH wz"),
    (1, "ZMPOP 1 wz MAX"),
    (0, "MULTI"),
    (0, "ZCARD wz"),
    (0, "EXEC"),
    (0, "WATCH w2"),
    (1, "LMOVE w w2 LEFT LEFT"),
    (0, "MULTI"),
    (0, "LLEN w2"),
    (0, "EXEC"),
];

#[test]
fn resp2_pops_are_byte_for_byte_redis_servers() {
    differential(kv_test_server(None).addr, "2", POPS);
}

#[test]
fn resp3_pops_are_byte_for_byte_redis_servers() {
    differential(kv_test_server(None).addr, "3", POPS);
}

/// kv only (Redis stops reading instead): a blocked client that keeps
/// sending is closed once its queue is full; the server stays healthy and
/// nothing of it is left blocked.
#[test]
fn a_blocked_client_cannot_queue_without_bound() {
    let kv = kv_test_server(None);
    let port = kv.addr.port();
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let mut hostile = Conn::connect(port);
    hostile.send(&args(&["BLPOP", "k", "0"]));
    let mut other = Conn::connect(port);
    let blocked = |c: &mut Conn, n: usize| {
        let deadline = Instant::now() + REPLY_WAIT;
        loop {
            let info = c.call(&args(&["INFO", "clients"]));
            if String::from_utf8_lossy(&info).contains(&format!("blocked_clients:{n}\r\n")) {
                return;
            }
            assert!(Instant::now() < deadline, "never {n} blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    blocked(&mut other, 1);
    // Past whichever bound comes first, the count or the bytes.
    let ping = vec![b"PING".to_vec()];
    let fit = blocking::MAX_PENDING_REQUESTS
        .min(blocking::MAX_PENDING_BYTES / blocking::request_cost(&ping));
    let pings = b"*1\r\n$4\r\nPING\r\n".repeat(fit + 100);
    // The server may close while this is still being written.
    let _ = hostile.0 .0.get_mut().write_all(&pings);
    let deadline = Instant::now() + REPLY_WAIT;
    loop {
        match hostile.try_read() {
            Some(end) if end == b"<closed>" => break,
            Some(reply) => panic!("no reply expected: {:?}", String::from_utf8_lossy(&reply)),
            None => assert!(Instant::now() < deadline, "not closed"),
        }
    }
    blocked(&mut other, 0);
    assert_eq!(other.call(&args(&["RPUSH", "k", "v"])), b":1\r\n");
    assert_eq!(other.call(&args(&["LLEN", "k"])), b":1\r\n");
}

/// kv only, at some scale: many waiters on one key, served in arrival
/// order by one push, or all timing out; nothing is left blocked, and
/// CLIENT LIST flags a blocked client with `b` as Redis does.
#[test]
fn many_waiters_are_served_in_order_or_time_out() {
    let kv = kv_test_server(None);
    let port = kv.addr.port();
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let mut control = Conn::connect(port);
    let wait_blocked = |c: &mut Conn, n: usize| {
        let deadline = Instant::now() + REPLY_WAIT;
        loop {
            let info = c.call(&args(&["INFO", "clients"]));
            if String::from_utf8_lossy(&info).contains(&format!("blocked_clients:{n}\r\n")) {
                return;
            }
            assert!(Instant::now() < deadline, "never {n} blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    const N: usize = 60;
    let mut waiters: Vec<Conn> = (0..N).map(|_| Conn::connect(port)).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send(&args(&["BLPOP", "k", "0"]));
        wait_blocked(&mut control, i + 1);
    }
    let list = control.call(&args(&["CLIENT", "LIST"]));
    let list = String::from_utf8_lossy(&list);
    assert_eq!(list.matches(" flags=b ").count(), N, "{list}");
    assert_eq!(list.matches(" cmd=blpop ").count(), N, "{list}");
    let items: Vec<String> = (0..N + 1).map(|i| format!("v{i}")).collect();
    let mut push = vec!["RPUSH".to_string(), "k".to_string()];
    push.extend(items.iter().cloned());
    control.call(&push);
    for (i, w) in waiters.iter_mut().enumerate() {
        let want = format!("*2\r\n$1\r\nk\r\n${}\r\nv{i}\r\n", format!("v{i}").len());
        assert_eq!(String::from_utf8_lossy(&w.read()), want);
    }
    wait_blocked(&mut control, 0);
    assert_eq!(
        control.call(&args(&["LRANGE", "k", "0", "-1"])),
        format!("*1\r\n$3\r\nv{N}\r\n").into_bytes()
    );
    for w in waiters.iter_mut() {
        w.send(&args(&["BZPOPMIN", "z", "other", "0.05"]));
    }
    for w in waiters.iter_mut() {
        assert_eq!(w.read(), b"*-1\r\n");
    }
    wait_blocked(&mut control, 0);
}

/// kv with `timeout 1` (the runtime checks idleness every 300 ms) and IO
/// threads always on.
fn idle_timeout_server() -> util::TestServer<()> {
    let kv = service::KvConfig {
        timeout_secs: 1,
        ..kv_test_config(None)
    };
    util::spawn_server(
        baton::Config::default()
            .io_threads(2)
            .io_activation(baton::IoActivation::Always)
            .idle_timeout(Some(Duration::from_millis(300))),
        move || service::Kv::new(kv),
    )
}

/// kv only (with io threads always on): the idle timeout spares a blocked
/// client, as Redis's `timeout` spares BLPOP, and applies again after.
#[test]
fn a_blocked_client_is_not_closed_as_idle() {
    let server = idle_timeout_server();
    let port = server.addr.port();
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let mut waiter = Conn::connect(port);
    waiter.send(&args(&["BLPOP", "k", "0"]));
    std::thread::sleep(Duration::from_millis(900));
    let mut pusher = Conn::connect(port);
    assert_eq!(pusher.call(&args(&["RPUSH", "k", "v"])), b":1\r\n");
    assert_eq!(waiter.read(), b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(waiter.try_read(), Some(b"<closed>".to_vec()), "idle again");
}

/// kv only: a subscriber to patterns alone stays exempt from the idle
/// timeout after a blocking command ends (the exemption was recomputed from
/// its channels only, so it was closed as idle and its subscription lost).
#[test]
fn a_pattern_subscriber_stays_exempt_after_a_blocking_command() {
    let server = idle_timeout_server();
    let port = server.addr.port();
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let mut subscriber = Conn::connect(port);
    subscriber.call(&args(&["HELLO", "3"]));
    assert_eq!(
        subscriber.call(&args(&["PSUBSCRIBE", "p*"])),
        b">3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n"
    );
    assert_eq!(
        subscriber.call(&args(&["BLPOP", "nokey", "0.1"])),
        b"_\r\n",
        "timed out"
    );
    std::thread::sleep(Duration::from_millis(900));
    let mut publisher = Conn::connect(port);
    assert_eq!(publisher.call(&args(&["PUBLISH", "pq", "m"])), b":1\r\n");
    assert_eq!(
        subscriber.read(),
        b">4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npq\r\n$1\r\nm\r\n"
    );
}

/// What a blocked client sent after QUIT never runs (as Redis stops
/// reading a client once QUIT is processed): QUIT and a SET queued behind
/// a BLPOP; the BLPOP times out, QUIT closes, the SET is dropped.
#[test]
fn requests_queued_after_quit_by_a_blocked_client_never_run() {
    let kv = kv_test_server(None);
    let port = kv.addr.port();
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let mut client = Conn::connect(port);
    client.send(&args(&["BLPOP", "k", "0.2"]));
    client.send(&args(&["QUIT"]));
    client.send(&args(&["SET", "after-quit", "1"]));
    assert_eq!(client.read(), b"*-1\r\n");
    assert_eq!(client.read(), b"+OK\r\n");
    assert_eq!(client.try_read(), Some(b"<closed>".to_vec()));
    let mut other = Conn::connect(port);
    assert_eq!(other.call(&args(&["EXISTS", "after-quit"])), b":0\r\n");
}

/// A pipeline of a blocking command and thousands of commands behind it
/// (within the queue's bounds) is answered in full and in order, as Redis
/// answers it: the BLPOP's timeout, then every PONG.
#[test]
fn a_blocking_command_with_a_long_pipeline_behind_it_is_answered_in_full() {
    let kv = kv_test_server(None);
    let port = kv.addr.port();
    let mut client = Conn::connect(port);
    const PINGS: usize = 5000;
    let mut pipeline = b"*3\r\n$5\r\nBLPOP\r\n$2\r\npk\r\n$3\r\n0.2\r\n".to_vec();
    pipeline.extend(b"*1\r\n$4\r\nPING\r\n".repeat(PINGS));
    client.0 .0.get_mut().write_all(&pipeline).unwrap();
    assert_eq!(client.read(), b"*-1\r\n");
    for i in 0..PINGS {
        assert_eq!(client.read(), b"+PONG\r\n", "reply {i}");
    }
}
