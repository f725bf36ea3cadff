#!/usr/bin/env python3
"""Random differential test: kv and redis-server 7 get the same random
command stream through redis-py, and their replies must agree.

Usage: python3 tests/clients/random_differential.py SEED PROTO KV_PORT REDIS_PORT OPS

PROTO is 3 (redis-py's default: HELLO 3) or 2. The stream is a function of
SEED and of the oracle's replies (prechecks, resyncs), so a seed replays
the same stream as long as the oracle's random picks (SPOP) do not change
what follows. Exits 0 printing "ok ..." when every reply agreed; on the
first difference prints the seed, the step, the command, both replies and
the recent history, and exits 1. With FUZZ_KEEP_GOING=1 it instead reports
every difference (flushing both servers after each, so the states agree
again) and exits 1 at the end if there was any: for hunting, not for CI.

What "agree" means (see `Fuzzer.compare`): equal parsed replies, except
  * unordered replies (SMEMBERS, SINTER, KEYS, ...) compare as multisets;
  * TTL, PTTL, EXPIRETIME, PEXPIRETIME within a tolerance (both servers set
    and read the deadline a few milliseconds apart);
  * errors compare by their code (first word), and by full text when
    either is one of the common errors (COMMON_ERRORS); other texts that
    differ are listed at the end as notes (tolerated);
  * random replies (SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER, RANDOMKEY)
    are checked against invariants on each server's own data, and SPOP's
    key is then copied from the oracle to kv so the states agree again;
  * SCAN, SSCAN, HSCAN and ZSCAN are iterated to the end on each server and
    the sets of what they returned compared (kv's cursors are its own).
The generator leaves out what examples/kv/README.md lists as deliberate
differences (each place says which).
"""
import collections
import os
import random
import sys
import time

import redis
from redis.exceptions import ResponseError

# Error texts compared in full even though only the code must agree for
# other errors.
COMMON_ERRORS = (
    "WRONGTYPE",
    "syntax error",
    "not an integer",
    "wrong number of arguments",
)

# Replies in Redis's hash-table order (its hash seed is random per
# process), which kv does not follow (examples/kv/README.md, "Hash-table
# order is kv's own"): compared as multisets.
UNORDERED = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "KEYS"}
# Hash replies: insertion order while Redis keeps the hash as a listpack
# (compared in order), its hash-table order once converted (a value over
# 64 bytes, over 128 fields): as multisets when the oracle's encoding is
# hashtable, and inside EXEC, where the encoding at the time is unknown.
HASH_ORDER = {"HGETALL", "HKEYS", "HVALS"}
# Replies that read a clock: allowed difference (seconds or ms).
TTL_TOLERANCE = {"TTL": 2, "PTTL": 2000, "EXPIRETIME": 2, "PEXPIRETIME": 2000}

LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)


class Server:
    """One redis-py client on one connection (MULTI, WATCH and SELECT are
    connection state) at redis-py's defaults, or RESP2."""

    def __init__(self, name, port, proto):
        kwargs = dict(host="127.0.0.1", port=port, single_connection_client=True)
        kwargs["socket_timeout"] = 30
        if proto == 2:
            kwargs["protocol"] = 2
        self.name = name
        self.client = redis.Redis(**kwargs)
        assert self.client.ping() is True
        self.conn = self.client.connection
        # FUZZ_TRACE=FILE: every command sent to kv, one Python list a line
        # (to replay a failure outside the driver).
        trace = os.environ.get("FUZZ_TRACE")
        self.trace = open(trace, "w") if trace and name == "kv" else None

    def call(self, args):
        """The parsed reply to `args` (no response callbacks: what the
        parser made of the bytes), or the ResponseError."""
        if self.trace:
            print(repr(list(args)), file=self.trace, flush=True)
        self.conn.send_command(*args)
        try:
            return self.conn.read_response()
        except ResponseError as e:
            return e


def error_text(e):
    """The full error line as sent: redis-py strips a known code (ERR,
    EXECABORT, ...) into status_code."""
    code = getattr(e, "status_code", None)
    text = str(e)
    return f"{code} {text}" if code else text


def norm(v, unordered=False):
    """A comparable form of a parsed reply."""
    if isinstance(v, ResponseError):
        return ("error", error_text(v))
    if isinstance(v, float):
        return ("double", repr(v))
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (list, tuple)):
        items = [norm(x) for x in v]
        return ("multiset", tuple(sorted(items, key=repr))) if unordered else tuple(items)
    if isinstance(v, set):
        return ("multiset", tuple(sorted((norm(x) for x in v), key=repr)))
    if isinstance(v, dict):
        items = [(norm(k), norm(x)) for k, x in v.items()]
        return ("map", tuple(sorted(items, key=repr)) if unordered else tuple(items))
    return v


def show(v):
    if isinstance(v, ResponseError):
        return f"(error) {error_text(v)!r}"
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    return repr(v)


def cmd_name(args):
    return args[0].upper() if isinstance(args[0], str) else args[0].decode().upper()


class Diff(Exception):
    pass


class Gen:
    """Random commands over a small key space. `oracle(args)` asks
    redis-server alone (side-effect-free reads) for prechecks."""

    def __init__(self, rng, oracle, start_s):
        self.r = rng
        self.oracle = oracle
        self.start_s = start_s
        self.step = 0

    # --- arguments -----------------------------------------------------
    KINDS = {
        "str": ["s0", "s1", "s2"],
        "list": ["l0", "l1", "l2"],
        "hash": ["h0", "h1", "h2"],
        "set": ["t0", "t1", "t2"],
        "zset": ["z0", "z1", "z2"],
    }
    SHARED = ["x0", "x1"]
    MEMBERS = ["a", "b", "c", "d", "e", "ab", "abc", "1", "2", "10", "-1", "1.5", "", "b\x00c", "\xe9"]
    INTS = [0, 1, -1, 2, 3, 5, 10, -10, 100, 1000, LONG_MAX, LONG_MIN, LONG_MAX - 1]
    BAD_INTS = ["abc", "", "1.5", " 1", "0x10", "+1", "-0", "007", "1e3", "9223372036854775808",
                "-9223372036854775809", "12345678901234567890123"]
    FLOATS = ["0", "1", "-1", "1.5", "-2.5", "10", "0.1", "1e10", "-1e10", "1e-300", ".5", "5.",
              "3.0", "-0", "inf", "-inf", "+inf", "1e400", "-1e400", "1e308"]
    BAD_FLOATS = ["nan", "abc", "", "1.5x", " 1", "1 ", "--1"]

    def pick(self, xs):
        return self.r.choice(xs)

    def chance(self, p):
        return self.r.random() < p

    def key(self, kind=None):
        if kind is None or self.chance(0.12):
            if self.chance(0.3):
                return self.pick(self.SHARED)
            kind = self.pick(list(self.KINDS))
        return self.pick(self.KINDS[kind])

    def keys(self, kind, lo=1, hi=3):
        return [self.key(kind) for _ in range(self.r.randint(lo, hi))]

    def member(self):
        return self.pick(self.MEMBERS)

    def value(self):
        r = self.r.random()
        if r < 0.5:
            return self.member()
        if r < 0.7:
            return str(self.pick(self.INTS))
        if r < 0.85:
            return self.pick(self.FLOATS)
        return "v" * self.r.randint(0, 80)

    def int_arg(self, lo=-5, hi=10):
        r = self.r.random()
        if r < 0.7:
            return str(self.r.randint(lo, hi))
        if r < 0.9:
            return str(self.pick(self.INTS))
        return self.pick(self.BAD_INTS)

    def index(self):
        return self.int_arg(-12, 12)

    def count(self):
        return self.int_arg(-3, 6)

    def float_arg(self):
        return self.pick(self.FLOATS) if self.chance(0.9) else self.pick(self.BAD_FLOATS)

    def incr_float(self):
        # INCRBYFLOAT reads a long double with strtold: hex too.
        if self.chance(0.05):
            return self.pick(["0x10", "0x1p3", "-0x1.8p1"])
        return self.float_arg()

    def score(self):
        # Hex floats are not generated: kv refuses them as scores
        # (examples/kv/README.md, "Hex floats are refused").
        return self.pick(["0", "1", "2", "3", "-1", "1.5", "0", "1", "2", "-inf", "+inf", "10", "-0"]) \
            if self.chance(0.93) else self.pick(["nan", "abc", "", "1e400", "inf", "(1"])

    def score_bound(self):
        b = self.pick(["0", "1", "2", "3", "-1", "1.5", "-inf", "+inf", "inf", "10"])
        r = self.r.random()
        if r < 0.3:
            b = "(" + b
        elif r < 0.33:
            b = self.pick(["nan", "abc", "((1", "", "(", "1e400", "[1"])
        return b

    def lex_bound(self):
        r = self.r.random()
        if r < 0.15:
            return self.pick(["-", "+"])
        if r < 0.97:
            return self.pick(["[", "("]) + self.member()
        return self.pick(["a", "", "{a"])

    def ttl(self):
        """Seconds for relative expiries. Deadlines must compare the same
        way on both servers although each sets them a few ms apart: a
        later command's deadline is later by whole seconds (the step),
        and deadlines from different bases are days apart."""
        return self.pick([100000, 300000]) + self.step

    def at(self):
        """An absolute deadline (seconds), disjoint from `ttl`'s."""
        return self.start_s + self.pick([200000, 400000]) + self.step

    def expiry(self, unit_ms, absolute, may_be_due=True):
        """An expire time argument. `may_be_due=False` (SET, GETEX) leaves
        out deadlines already past: those keys stay until expiry removes
        them, and when Redis's sampling active expiry does is a matter of
        time (kv removes exactly the due keys: README, "Active expiry
        removes exactly the keys that are due"), so DBSIZE would differ."""
        r = self.r.random()
        if r < 0.8 or (not may_be_due and absolute and r < 0.9):
            s = self.at() if absolute else self.ttl()
            if unit_ms:
                return str(s * 1000 + self.r.randint(0, 999))
            return str(s)
        if r < 0.9:
            # Already due: deletes (EXPIRE family) or is an error (SET).
            return self.pick(["0", "-1", "-100", "1" if absolute else "-5"])
        return self.pick([str(LONG_MAX), str(LONG_MIN), "9223372036854775", "abc", "1.5", ""])

    def glob(self):
        return self.pick(["*", "s*", "?0", "[sl]*", "[^s]*", "x*", "*1", "\\*", "[a-z]?", "nomatch*", "z[0-9]"])

    # --- commands --------------------------------------------------------
    def command(self, in_multi=False, avoid=()):
        """One random command (a list of str). `avoid`: keys it must not
        name except through `key()` picking them (used by WATCH)."""
        for _ in range(100):
            fam = self.pick(self.FAMILIES)
            args = getattr(self, "g_" + fam)(in_multi)
            if args is None:
                continue
            if avoid and any(a in avoid for a in args[1:]):
                continue
            if self.chance(0.03):
                args = self.wrong_arity(args)
            return args
        raise RuntimeError("generator found nothing to do")

    # Not generated: OBJECT (ENCODING is derived, IDLETIME 0: README,
    # "OBJECT ENCODING is derived"), INFO, CONFIG, CLIENT, COMMAND (kv's
    # own fields and subsets: README, "CONFIG knows a few parameters",
    # "CLIENT and COMMAND are subsets"), HELLO and RESET (they change the
    # protocol under redis-py's parser), pub/sub, scripting.
    FAMILIES = (["strings"] * 6 + ["keys"] * 5 + ["expire"] * 3 + ["lists"] * 6 + ["hashes"] * 5
                + ["sets"] * 5 + ["zsets"] * 8 + ["zranges"] * 5 + ["zalgebra"] * 3 + ["pops"] * 3
                + ["blocking"] + ["dbs"])

    def wrong_arity(self, args):
        r = self.r.random()
        if r < 0.4 and len(args) > 1:
            return args[:-1]
        if r < 0.6:
            return args[:1]
        return args + [self.value()]

    def g_strings(self, in_multi):
        k = self.key("str")
        c = self.pick(["GET", "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "GETDEL", "GETEX", "APPEND",
                       "STRLEN", "INCR", "INCRBY", "DECR", "DECRBY", "INCRBYFLOAT", "MGET", "MSET",
                       "MSETNX", "GETRANGE", "SUBSTR", "SETRANGE", "LCS", "SET", "INCRBY", "APPEND"])
        if c in ("GET", "GETDEL", "STRLEN", "INCR", "DECR"):
            return [c, k]
        if c == "SET":
            args = ["SET", k, self.value()]
            opts = []
            if self.chance(0.3):
                opts.append(self.pick(["NX", "XX"]))
            if self.chance(0.2):
                opts.append("GET")
            if self.chance(0.3):
                o = self.pick(["EX", "PX", "EXAT", "PXAT", "KEEPTTL"])
                opts.append(o)
                if o != "KEEPTTL":
                    opts.append(self.expiry(o in ("PX", "PXAT"), o in ("EXAT", "PXAT"), False))
            if self.chance(0.05):
                opts.append(self.pick(["NX", "XX", "EX", "KEEPTTL", "GET", "BOGUS"]))
            self.r.shuffle(opts) if self.chance(0.1) else None
            return args + opts
        if c in ("SETNX", "GETSET", "APPEND"):
            return [c, k, self.value()]
        if c == "SETEX":
            return [c, k, self.expiry(False, False), self.value()]
        if c == "PSETEX":
            return [c, k, self.expiry(True, False), self.value()]
        if c == "GETEX":
            args = [c, k]
            if self.chance(0.6):
                o = self.pick(["EX", "PX", "EXAT", "PXAT", "PERSIST"])
                args.append(o)
                if o != "PERSIST":
                    args.append(self.expiry(o in ("PX", "PXAT"), o in ("EXAT", "PXAT"), False))
            return args
        if c in ("INCRBY", "DECRBY"):
            return [c, k, self.int_arg(-100, 100)]
        if c == "INCRBYFLOAT":
            return [c, k, self.incr_float()]
        if c == "MGET":
            return [c] + [self.key("str") for _ in range(self.r.randint(1, 4))]
        if c in ("MSET", "MSETNX"):
            args = [c]
            for _ in range(self.r.randint(1, 3)):
                args += [self.key("str"), self.value()]
            return args
        if c in ("GETRANGE", "SUBSTR"):
            return [c, k, self.index(), self.index()]
        if c == "SETRANGE":
            off = self.int_arg(-2, 30) if self.chance(0.95) else self.pick(["536870912", "536870911"])
            v = self.value()
            if off in ("536870911", "536870912") and len(v) < 2:
                # Past 512 MB, so both refuse it: never build a 512 MB
                # string (offset 536870911 with one byte is allowed), whose
                # reply kv would refuse past its client output buffer
                # limit (README, the --client-output-buffer-limit flag).
                v = "xx"
            return [c, k, off, v]
        if c == "LCS":
            args = [c, self.key("str"), self.key("str")]
            for o in self.r.sample(["LEN", "IDX", "MINMATCHLEN", "WITHMATCHLEN"], self.r.randint(0, 3)):
                args.append(o)
                if o == "MINMATCHLEN":
                    args.append(self.int_arg(-1, 4))
            return args
        raise AssertionError(c)

    def g_keys(self, in_multi):
        c = self.pick(["DEL", "UNLINK", "EXISTS", "TYPE", "PERSIST", "KEYS", "RENAME", "RENAMENX",
                       "TOUCH", "COPY", "DEL", "EXISTS", "TYPE", "RENAME", "COPY", "ECHO", "PING",
                       "DBSIZE"])
        if c in ("DEL", "UNLINK", "EXISTS", "TOUCH"):
            return [c] + [self.key() for _ in range(self.r.randint(1, 3))]
        if c in ("TYPE", "PERSIST"):
            return [c, self.key()]
        if c == "KEYS":
            return [c, self.glob()]
        if c in ("RENAME", "RENAMENX"):
            return [c, self.key(), self.key()]
        if c == "COPY":
            args = [c, self.key(), self.key()]
            if self.chance(0.3):
                args += ["DB", self.pick(["0", "1", "2", "16", "-1", "x"])]
            if self.chance(0.4):
                args.append("REPLACE")
            if self.chance(0.05):
                args.append(self.pick(["DB", "BOGUS"]))
            return args
        if c == "ECHO":
            return [c, self.value()]
        if c == "PING":
            return [c] if self.chance(0.5) else [c, self.value()]
        return [c]

    def g_expire(self, in_multi):
        k = self.key()
        c = self.pick(["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "TTL", "PTTL", "EXPIRETIME",
                       "PEXPIRETIME", "TTL", "PERSIST"])
        if c in ("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "PERSIST"):
            return [c, k]
        args = [c, k, self.expiry(c.startswith("P"), c.endswith("AT"))]
        if self.chance(0.4):
            args.append(self.pick(["NX", "XX", "GT", "LT"]))
        if self.chance(0.05):
            args.append(self.pick(["NX", "XX", "GT", "LT", "BOGUS"]))
        return args

    def g_lists(self, in_multi):
        k = self.key("list")
        c = self.pick(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LRANGE", "LLEN", "LINDEX",
                       "LSET", "LINSERT", "LREM", "LTRIM", "LPOS", "LPUSH", "RPUSH", "LRANGE"])
        if c in ("LPUSH", "RPUSH", "LPUSHX", "RPUSHX"):
            return [c, k] + [self.member() for _ in range(self.r.randint(1, 4))]
        if c in ("LPOP", "RPOP"):
            return [c, k] if self.chance(0.5) else [c, k, self.count()]
        if c in ("LRANGE", "LTRIM"):
            return [c, k, self.index(), self.index()]
        if c == "LLEN":
            return [c, k]
        if c == "LINDEX":
            return [c, k, self.index()]
        if c == "LSET":
            return [c, k, self.index(), self.member()]
        if c == "LINSERT":
            where = self.pick(["BEFORE", "AFTER", "before", "MIDDLE"]) if self.chance(0.95) else "X"
            return [c, k, where, self.member(), self.member()]
        if c == "LREM":
            return [c, k, self.int_arg(-3, 3), self.member()]
        if c == "LPOS":
            args = [c, k, self.member()]
            for o in self.r.sample(["RANK", "COUNT", "MAXLEN"], self.r.randint(0, 3)):
                args += [o, self.int_arg(-3, 4)]
            return args
        raise AssertionError(c)

    def g_hashes(self, in_multi):
        k = self.key("hash")
        c = self.pick(["HSET", "HMSET", "HSETNX", "HGET", "HMGET", "HDEL", "HGETALL", "HKEYS", "HVALS",
                       "HLEN", "HEXISTS", "HSTRLEN", "HINCRBY", "HINCRBYFLOAT", "HSET", "HGETALL"])
        if c in ("HSET", "HMSET"):
            args = [c, k]
            for _ in range(self.r.randint(1, 3)):
                args += [self.member(), self.value()]
            return args
        if c == "HSETNX":
            return [c, k, self.member(), self.value()]
        if c in ("HGET", "HEXISTS", "HSTRLEN"):
            return [c, k, self.member()]
        if c in ("HMGET", "HDEL"):
            return [c, k] + [self.member() for _ in range(self.r.randint(1, 3))]
        if c in ("HGETALL", "HKEYS", "HVALS", "HLEN"):
            return [c, k]
        if c == "HINCRBY":
            return [c, k, self.member(), self.int_arg(-100, 100)]
        if c == "HINCRBYFLOAT":
            return [c, k, self.member(), self.incr_float()]
        raise AssertionError(c)

    def g_sets(self, in_multi):
        k = self.key("set")
        c = self.pick(["SADD", "SREM", "SCARD", "SISMEMBER", "SMISMEMBER", "SMEMBERS", "SMOVE", "SINTER",
                       "SUNION", "SDIFF", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE", "SINTERCARD", "SADD"])
        if c in ("SADD", "SREM"):
            return [c, k] + [self.member() for _ in range(self.r.randint(1, 4))]
        if c in ("SCARD", "SMEMBERS"):
            return [c, k]
        if c == "SISMEMBER":
            return [c, k, self.member()]
        if c == "SMISMEMBER":
            return [c, k] + [self.member() for _ in range(self.r.randint(1, 3))]
        if c == "SMOVE":
            return [c, k, self.key("set"), self.member()]
        if c in ("SINTER", "SUNION", "SDIFF"):
            return [c] + self.keys("set")
        if c.endswith("STORE"):
            return [c, self.key("set")] + self.keys("set")
        if c == "SINTERCARD":
            ks = self.keys("set")
            n = str(len(ks)) if self.chance(0.85) else self.int_arg(-1, 4)
            args = [c, n] + ks
            if self.chance(0.4):
                args += ["LIMIT", self.int_arg(-1, 4)]
            return args
        raise AssertionError(c)

    def g_zsets(self, in_multi):
        k = self.key("zset")
        c = self.pick(["ZADD", "ZADD", "ZADD", "ZINCRBY", "ZSCORE", "ZMSCORE", "ZCARD", "ZREM", "ZRANK",
                       "ZREVRANK", "ZCOUNT", "ZLEXCOUNT", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE",
                       "ZREMRANGEBYLEX", "ZPOPMIN", "ZPOPMAX"])
        if c == "ZADD":
            args = [c, k]
            for o in ("NX", "XX", "GT", "LT", "CH", "INCR"):
                if self.chance(0.1):
                    args.append(o)
            for _ in range(1 if "INCR" in args and self.chance(0.8) else self.r.randint(1, 3)):
                args += [self.score(), self.member()]
            return args
        if c == "ZINCRBY":
            return [c, k, self.score(), self.member()]
        if c in ("ZSCORE", "ZRANK", "ZREVRANK"):
            return [c, k, self.member()]
        if c in ("ZMSCORE", "ZREM"):
            return [c, k] + [self.member() for _ in range(self.r.randint(1, 3))]
        if c == "ZCARD":
            return [c, k]
        if c in ("ZCOUNT", "ZREMRANGEBYSCORE"):
            return [c, k, self.score_bound(), self.score_bound()]
        if c in ("ZLEXCOUNT", "ZREMRANGEBYLEX"):
            if not self.lex_ok(k, in_multi):
                return None
            return [c, k, self.lex_bound(), self.lex_bound()]
        if c == "ZREMRANGEBYRANK":
            return [c, k, self.index(), self.index()]
        if c in ("ZPOPMIN", "ZPOPMAX"):
            return [c, k] if self.chance(0.4) else [c, k, self.count()]
        raise AssertionError(c)

    def lex_ok(self, key, in_multi):
        """Lex ranges only over a zset whose members share one score: over
        mixed scores kv's answer may differ on purpose (examples/kv/README.md,
        "Lex ranges over members of different scores may differ"). Inside
        MULTI the state at EXEC is unknown, so none there."""
        if in_multi:
            return False
        reply = self.oracle(["ZRANGE", key, "0", "-1", "WITHSCORES"])
        if isinstance(reply, ResponseError) or not reply:
            return True  # a wrong type or a missing key: fine
        scores = set()
        for i, x in enumerate(reply):
            if isinstance(x, list):
                scores.add(repr(x[1]))
            elif i % 2 == 1:
                scores.add(x)
        return len(scores) <= 1

    def limit(self, args):
        if self.chance(0.3):
            args += ["LIMIT", self.int_arg(-1, 4), self.int_arg(-2, 5)]

    def g_zranges(self, in_multi):
        k = self.key("zset")
        c = self.pick(["ZRANGE", "ZRANGE", "ZRANGE", "ZRANGESTORE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
                       "ZREVRANGE", "ZRANGEBYLEX", "ZREVRANGEBYLEX"])
        if c in ("ZRANGE", "ZRANGESTORE"):
            by = self.pick(["", "", "BYSCORE", "BYLEX"])
            if by == "BYLEX" and not self.lex_ok(k, in_multi):
                return None
            args = [c, self.key("zset"), k] if c == "ZRANGESTORE" else [c, k]
            if by == "BYSCORE":
                args += [self.score_bound(), self.score_bound(), by]
            elif by == "BYLEX":
                args += [self.lex_bound(), self.lex_bound(), by]
            else:
                args += [self.index(), self.index()]
            if self.chance(0.3):
                args.append("REV")
            if self.chance(0.3 if by else 0.05):
                args += ["LIMIT", self.int_arg(-1, 4), self.int_arg(-2, 5)]
            if c == "ZRANGE" and self.chance(0.4):
                args.append("WITHSCORES")
            return args
        if c in ("ZRANGEBYSCORE", "ZREVRANGEBYSCORE"):
            args = [c, k, self.score_bound(), self.score_bound()]
            if self.chance(0.4):
                args.append("WITHSCORES")
            self.limit(args)
            return args
        if c == "ZREVRANGE":
            args = [c, k, self.index(), self.index()]
            if self.chance(0.4):
                args.append("WITHSCORES")
            return args
        if c in ("ZRANGEBYLEX", "ZREVRANGEBYLEX"):
            if not self.lex_ok(k, in_multi):
                return None
            args = [c, k, self.lex_bound(), self.lex_bound()]
            self.limit(args)
            return args
        raise AssertionError(c)

    def g_zalgebra(self, in_multi):
        c = self.pick(["ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZINTERCARD"])
        # Inputs may be sets too (score 1).
        ks = [self.key("zset") if self.chance(0.8) else self.key("set") for _ in range(self.r.randint(1, 3))]
        n = str(len(ks)) if self.chance(0.9) else self.int_arg(-1, 4)
        args = [c, self.key("zset"), n] + ks if c.endswith("STORE") else [c, n] + ks
        if c == "ZINTERCARD":
            if self.chance(0.4):
                args += ["LIMIT", self.int_arg(-1, 4)]
            return args
        if c not in ("ZDIFF", "ZDIFFSTORE"):
            if self.chance(0.3):
                # Hex floats left out: kv refuses them (README, "Hex floats").
                ws = [self.pick(["1", "2", "0", "-1", "0.5", "inf", "-inf", "nan", "x"]) for _ in ks]
                if self.chance(0.1):
                    ws = ws[:-1]
                args += ["WEIGHTS"] + ws
            if self.chance(0.3):
                args += ["AGGREGATE", self.pick(["SUM", "MIN", "MAX", "min", "AVG"])]
        if not c.endswith("STORE") and self.chance(0.4):
            args.append("WITHSCORES")
        return args

    def g_pops(self, in_multi):
        c = self.pick(["LMOVE", "RPOPLPUSH", "LMPOP", "ZMPOP", "LMOVE", "LMPOP", "ZMPOP"])
        if c == "LMOVE":
            return [c, self.key("list"), self.key("list"), self.pick(["LEFT", "RIGHT"]),
                    self.pick(["LEFT", "RIGHT", "left", "UP"])]
        if c == "RPOPLPUSH":
            return [c, self.key("list"), self.key("list")]
        kind = "list" if c == "LMPOP" else "zset"
        ks = self.keys(kind)
        n = str(len(ks)) if self.chance(0.9) else self.int_arg(-1, 4)
        where = ["LEFT", "RIGHT"] if kind == "list" else ["MIN", "MAX"]
        args = [c, n] + ks + [self.pick(where) if self.chance(0.95) else "MIDDLE"]
        if self.chance(0.4):
            args += ["COUNT", self.count()]
        return args

    def g_blocking(self, in_multi):
        """Blocking pops only where they cannot block: inside MULTI (they
        never block there), or when the oracle has data for one of the
        keys, with a short timeout as a bound (kv's timeout rounding
        differs on purpose: README, "Blocking timeouts")."""
        c = self.pick(["BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP"])
        kind = "zset" if c.startswith("BZ") else "list"
        ks = self.keys(kind)
        timeout = self.pick(["0", "0.01", "1", "-1", "abc", "0.5"]) if in_multi else "0.05"
        if c in ("BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX"):
            args = [c] + ks + [timeout]
        elif c == "BLMOVE":
            ks = ks[:1]
            args = [c, ks[0], self.key("list"), self.pick(["LEFT", "RIGHT"]), self.pick(["LEFT", "RIGHT"]), timeout]
        elif c == "BRPOPLPUSH":
            ks = ks[:1]
            args = [c, ks[0], self.key("list"), timeout]
        else:
            where = ["LEFT", "RIGHT"] if kind == "list" else ["MIN", "MAX"]
            args = [c, timeout, str(len(ks))] + ks + [self.pick(where)]
            if self.chance(0.4):
                args += ["COUNT", self.int_arg(-1, 4)]
        if not in_multi and not any(self.has_data(k, kind) for k in ks):
            return None
        return args

    def has_data(self, key, kind):
        """True when the oracle's `key` answers at once: a non-empty value
        of `kind`, or another type (WRONGTYPE)."""
        t = self.oracle(["TYPE", key])
        t = t.decode() if isinstance(t, bytes) else str(t)
        return t != "none"

    def bulk(self):
        """One write of many elements, so collections cross Redis's
        compact-encoding limits (128 entries or a 64-byte element for
        zsets and hashes, 512 integers for sets), where orders and -0 are
        kept differently."""
        kind = self.pick(["zset", "set", "hash", "list"])
        k = self.key(kind)
        n = self.pick([100, 130, 200, 600])
        names = [f"m{i}" for i in range(n)] + self.MEMBERS
        if self.chance(0.2):
            names.append("L" * self.pick([64, 65, 200]))
        if kind == "zset":
            args = ["ZADD", k]
            for m in names:
                args += [self.pick(["0", "1", "-1", "2.5", "-0", "inf"]), m]
            return args
        if kind == "set":
            ints = self.chance(0.5)
            return ["SADD", k] + ([str(i) for i in range(n)] if ints else names)
        if kind == "hash":
            args = ["HSET", k]
            for m in names:
                args += [m, self.value()]
            return args
        return ["RPUSH", k] + names

    def g_dbs(self, in_multi):
        c = self.pick(["SELECT", "SELECT", "MOVE", "MOVE", "SWAPDB", "DBSIZE", "FLUSHDB", "SELECT", "MOVE"])
        db = lambda: self.pick(["0", "1", "2", "0", "1", "16", "-1", "x"]) if self.chance(0.9) else self.int_arg()
        if c == "SELECT":
            return [c, db()]
        if c == "MOVE":
            return [c, self.key(), db()]
        if c == "SWAPDB":
            return [c, db(), db()]
        if c == "FLUSHDB":
            if not self.chance(0.1):
                return None
            return [c] + ([self.pick(["ASYNC", "SYNC", "BOGUS"])] if self.chance(0.3) else [])
        return [c]


class Fuzzer:
    def __init__(self, seed, proto, kv_port, redis_port, ops):
        self.seed, self.proto, self.ops = seed, proto, ops
        self.kv = Server("kv", kv_port, proto)
        self.redis = Server("redis", redis_port, proto)
        self.rng = random.Random(seed)
        self.gen = Gen(self.rng, self.redis.call, int(time.time()))
        self.history = collections.deque(maxlen=25)
        self.step = 0
        self.keep_going = os.environ.get("FUZZ_KEEP_GOING") == "1"
        self.diffs = []
        self.notes = collections.Counter()
        self.stats = collections.Counter()

    # --- sending and comparing ---------------------------------------------
    def both(self, args):
        try:
            a = self.kv.call(args)
        except redis.exceptions.ConnectionError as e:
            self.history.append((self.step + 1, args, e, None))
            self.keep_going = False  # the connection's state is gone
            self.fail(f"kv closed the connection or failed: {e}", args, e, None)
        b = self.redis.call(args)
        self.step += 1
        self.gen.step = self.step
        self.history.append((self.step, args, a, b))
        return a, b

    def fail(self, why, args, a, b):
        lines = [f"DIFFERENCE seed={self.seed} proto={self.proto} step={self.step}: {why}",
                 f"  command: {' '.join(map(repr, args))}",
                 f"  kv:    {show(a)}",
                 f"  redis: {show(b)}",
                 "  recent history (step, command, kv, redis):"]
        for step, h_args, ha, hb in list(self.history)[:-1]:
            same = "" if norm(ha) == norm(hb) else "   <-- differs"
            lines.append(f"    {step}: {' '.join(map(repr, h_args))} -> kv {show(ha)} / redis {show(hb)}{same}")
        raise Diff("\n".join(lines))

    def errors_agree(self, a, b):
        ta, tb = error_text(a), error_text(b)
        if ta == tb:
            return True
        if ta.split(" ")[0] != tb.split(" ")[0]:
            return False
        if any(c in ta or c in tb for c in COMMON_ERRORS):
            return False
        self.notes[f"error text: kv {ta!r} / redis {tb!r}"] += 1
        return True

    def agree(self, name, a, b, queued=None):
        if isinstance(a, ResponseError) or isinstance(b, ResponseError):
            return isinstance(a, ResponseError) and isinstance(b, ResponseError) and self.errors_agree(a, b)
        if name == "EXEC" and isinstance(queued, list) and isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) == len(queued) and all(
                self.agree(cmd_name(q), x, y, "in EXEC") for q, x, y in zip(queued, a, b))
        if name in TTL_TOLERANCE and isinstance(a, int) and isinstance(b, int):
            if a < 0 or b < 0:
                return a == b
            return abs(a - b) <= TTL_TOLERANCE[name]
        unordered = name in UNORDERED or (name in HASH_ORDER and queued == "in EXEC")
        return norm(a, unordered) == norm(b, unordered)

    def send(self, args, queued=None):
        a, b = self.both(args)
        name = cmd_name(args)
        self.stats[name] += 1
        if not self.agree(name, a, b, queued):
            if not (name in HASH_ORDER and len(args) == 2 and norm(a, True) == norm(b, True)
                    and self.redis.call(["OBJECT", "ENCODING", args[1]]) == b"hashtable"):
                self.fail("replies differ", args, a, b)
        return a, b

    # --- the stream --------------------------------------------------------
    def run(self):
        while self.step < self.ops:
            try:
                r = self.rng.random()
                if r < 0.05:
                    self.transaction()
                elif r < 0.10:
                    self.random_reply()
                elif r < 0.12:
                    self.scan()
                elif r < 0.125:
                    self.send(self.gen.bulk())
                else:
                    self.send(self.gen.command())
            except Diff as d:
                if not self.keep_going:
                    raise
                self.diffs.append(str(d))
                print(str(d) + "\n", flush=True)
                self.resync_all()

    def resync_all(self):
        for s in (self.kv, self.redis):
            s.call(["DISCARD"])
            s.call(["UNWATCH"])
            s.call(["FLUSHALL"])
            s.call(["SELECT", "0"])

    def transaction(self):
        """[WATCH keys; commands not naming them, or real writes to them;]
        MULTI; queued commands; EXEC or DISCARD."""
        watched = []
        if self.rng.random() < 0.5:
            watched = list({self.gen.key() for _ in range(self.rng.randint(1, 2))})
            self.send(["WATCH"] + watched)
            for _ in range(self.rng.randint(0, 3)):
                if self.rng.random() < 0.3:
                    # A write that changes the key in both: EXEC must fail.
                    self.send(["SET", self.rng.choice(watched), "changed"])
                else:
                    # No command naming a watched key: kv's no-op writes
                    # touch it where Redis's do not (README, "A write that
                    # changes nothing still touches WATCHed keys").
                    self.send(self.gen.command(avoid=set(watched)))
        self.send(["MULTI"])
        queued = []
        for _ in range(self.rng.randint(0, 6)):
            r = self.rng.random()
            if r < 0.03:
                args = [self.rng.choice(["MULTI", "WATCH"])] + ([self.gen.key()] if self.rng.random() < 0.5 else [])
            else:
                args = self.gen.command(in_multi=True)
            a, b = self.send(args)
            if a == b"QUEUED":
                queued.append(args)
        r = self.rng.random()
        if r < 0.8:
            self.send(["EXEC"], queued)
        elif r < 0.95:
            self.send(["DISCARD"])
        else:
            # Rejected (arity): discards the transaction and the watches.
            self.send(["EXEC", self.gen.key()])

    # --- random replies ----------------------------------------------------
    def contents(self, server, key):
        """The key's value on `server` as (type, comparable contents)."""
        t = server.call(["TYPE", key])
        t = t.decode() if isinstance(t, bytes) else str(t)
        if t == "set":
            return t, sorted(server.call(["SMEMBERS", key]))
        if t == "hash":
            v = server.call(["HGETALL", key])
            if isinstance(v, list):
                v = dict(zip(v[::2], v[1::2]))
            return t, v
        if t == "zset":
            v = server.call(["ZRANGE", key, "0", "-1", "WITHSCORES"])
            if v and isinstance(v[0], list):
                return t, {m: float(s) for m, s in v}
            return t, {m: float(s) for m, s in zip(v[::2], v[1::2])}
        return t, None

    def random_reply(self):
        g = self.gen
        c = self.rng.choice(["SPOP", "SRANDMEMBER", "HRANDFIELD", "ZRANDMEMBER", "RANDOMKEY", "SPOP"])
        kind = {"SPOP": "set", "SRANDMEMBER": "set", "HRANDFIELD": "hash", "ZRANDMEMBER": "zset"}.get(c)
        if c == "RANDOMKEY":
            a, b = self.both([c])
            for server, reply in ((self.kv, a), (self.redis, b)):
                if reply is None:
                    ok = server.call(["DBSIZE"]) == 0
                else:
                    ok = server.call(["EXISTS", reply]) == 1
                if not ok:
                    self.fail(f"RANDOMKEY on {server.name} answered a key it does not have", [c], a, b)
            return
        key = g.key(kind)
        args = [c, key]
        if self.rng.random() < 0.6:
            # Small counts only: huge negative ones are refused on purpose
            # (README, "Huge negative counts are refused").
            args.append(str(self.rng.randint(-6, 8)) if self.rng.random() < 0.95 else g.pick(g.BAD_INTS))
            if c != "SPOP" and c != "SRANDMEMBER" and self.rng.random() < 0.4:
                args.append("WITHVALUES" if c == "HRANDFIELD" else "WITHSCORES")
        before_kv = self.contents(self.kv, key)
        before_redis = self.contents(self.redis, key)
        if before_kv != before_redis:
            self.fail(f"{key} differs before {c}", ["(contents)", key], before_kv, before_redis)
        a, b = self.both(args)
        self.stats[c] += 1
        if isinstance(a, ResponseError) or isinstance(b, ResponseError):
            if not self.agree(c, a, b):
                self.fail("replies differ", args, a, b)
            return
        for server, reply in ((self.kv, a), (self.redis, b)):
            why = self.check_random(args, before_redis, reply)
            if why:
                self.fail(f"{server.name}'s {c} reply breaks an invariant: {why}", args, a, b)
        if c == "SPOP":
            self.copy_from_oracle(key)

    def check_random(self, args, before, reply):
        """Why `reply` cannot be an answer to `args` on data `before`, or None."""
        c, t, data = args[0], before[0], before[1]
        has_count = len(args) >= 3
        with_values = len(args) >= 4
        n = int(args[2]) if has_count else None
        if t == "none":
            if has_count:
                return None if reply == [] else "expected an empty array for a missing key"
            return None if reply is None else "expected nil for a missing key"
        domain = list(data) if isinstance(data, (dict, list)) else []
        if not has_count:
            if c == "SPOP" or c == "SRANDMEMBER" or c == "HRANDFIELD" or c == "ZRANDMEMBER":
                return None if reply in domain else f"{reply!r} is not in the key"
        items = reply
        if with_values:
            if items and isinstance(items[0], list):
                pairs = [(x[0], x[1]) for x in items]
            else:
                pairs = list(zip(items[::2], items[1::2]))
                if len(items) % 2:
                    return "odd number of elements WITH values"
            for m, v in pairs:
                if m not in data:
                    return f"{m!r} is not in the key"
                want = data[m]
                got = float(v) if c == "ZRANDMEMBER" else v
                if got != want:
                    return f"{m!r} comes with {v!r}, not {want!r}"
            items = [m for m, _ in pairs]
        if any(m not in domain for m in items):
            return "a member not in the key"
        if n >= 0:
            if len(items) != min(n, len(domain)):
                return f"{len(items)} members for count {n} of {len(domain)}"
            if len(set(items)) != len(items):
                return "repeats with a positive count"
        elif len(items) != -n:
            return f"{len(items)} members for count {n}"
        return None

    def copy_from_oracle(self, key):
        """After SPOP the two sets may differ: give kv the oracle's."""
        t, members = self.contents(self.redis, key)
        pttl = self.redis.call(["PTTL", key])
        self.kv.call(["DEL", key])
        if t == "set":
            self.kv.call(["SADD", key] + members)
            if isinstance(pttl, int) and pttl > 0:
                self.kv.call(["PEXPIRE", key, str(pttl)])
        elif t != "none":
            raise AssertionError(f"SPOP left a {t}")

    # --- cursors -----------------------------------------------------------
    def scan(self):
        g = self.gen
        c = self.rng.choice(["SCAN", "SSCAN", "HSCAN", "ZSCAN"])
        kind = {"SSCAN": "set", "HSCAN": "hash", "ZSCAN": "zset"}.get(c)
        head = [c] if c == "SCAN" else [c, g.key(kind)]
        opts = []
        if self.rng.random() < 0.4:
            opts += ["MATCH", g.glob() if c == "SCAN" else g.pick(["*", "a*", "?", "[ab]*", "1*", "*c"])]
        if self.rng.random() < 0.3:
            opts += ["COUNT", g.pick(["1", "2", "10", "0", "-1", "x"])]
        if c == "SCAN" and self.rng.random() < 0.3:
            opts += ["TYPE", g.pick(["string", "list", "hash", "set", "zset", "nosuchtype"])]
        if self.rng.random() < 0.03:
            # An odd first cursor: both refuse it, or both take it ("" is
            # 0 and "-1" is 2^64-1 to strtoul); what a taken one returns
            # depends on the cursor scheme, kv's own (README, "SCAN ...
            # cursors are kv's own").
            args = head + [g.pick(["-1", "abc", "18446744073709551616", "", " 1", "1x"])] + opts
            a, b = self.both(args)
            self.stats[c] += 1
            error_a, error_b = isinstance(a, ResponseError), isinstance(b, ResponseError)
            if error_a != error_b or (error_a and not self.agree(c, a, b)):
                self.fail("replies differ", args, a, b)
            return
        results = []
        for server in (self.kv, self.redis):
            seen, cursor, reply = set(), b"0", None
            for _ in range(1000):
                reply = server.call(head + [cursor] + opts)
                self.history.append((self.step, head + [cursor] + opts, reply if server is self.kv else "", reply))
                if isinstance(reply, ResponseError):
                    break
                cursor, items = reply
                if c in ("HSCAN", "ZSCAN") and items and not isinstance(items[0], list):
                    items = list(zip(items[::2], items[1::2]))
                for x in items:
                    seen.add(tuple(x) if isinstance(x, list) else x)
                if cursor in (b"0", 0, "0"):
                    break
            else:
                self.fail(f"{c} did not finish in 1000 calls on {server.name}", head + opts, reply, None)
            results.append(reply if isinstance(reply, ResponseError) else seen)
        self.step += 1
        self.gen.step = self.step
        self.stats[c] += 1
        a, b = results
        if isinstance(a, ResponseError) or isinstance(b, ResponseError):
            if not self.agree(c, a, b):
                self.fail("replies differ", head + ["0"] + opts, a, b)
        elif a != b:
            self.fail(f"full {c} iterations returned different sets", head + ["0"] + opts, sorted(a), sorted(b))


def main():
    seed, proto, kv_port, redis_port, ops = (int(x) for x in sys.argv[1:6])
    assert proto in (2, 3), proto
    f = Fuzzer(seed, proto, kv_port, redis_port, ops)
    # The run starts from empty servers, so a seed replays from the start.
    f.resync_all()
    if proto == 3:
        info = f.kv.client.client_info()
        assert str(info.get("resp")) == "3", info
    started = time.monotonic()
    try:
        f.run()
    except Diff as d:
        print(str(d), flush=True)
        sys.exit(1)
    for note, n in sorted(f.notes.items()):
        print(f"note ({n}x): {note}")
    if f.diffs:
        print(f"{len(f.diffs)} differences (seed {seed}, proto {proto})")
        sys.exit(1)
    took = time.monotonic() - started
    top = ", ".join(f"{k} {v}" for k, v in f.stats.most_common(8))
    print(f"ok seed={seed} proto={proto} steps={f.step} in {took:.1f}s ({len(f.stats)} commands; most: {top})")


if __name__ == "__main__":
    main()
