#!/usr/bin/env python3
"""redis-py against a server on PORT: a test harness's session and an
application's (pipelines, MULTI/EXEC and WATCH, pub/sub across connections,
a BLPOP woken by another client's LPUSH).

Usage: python3 tests/clients/redis_py_smoke.py PORT [--protocol 2|3] [--tls CA_CERT_FILE]
At its defaults redis-py speaks RESP3 (HELLO 3); `--protocol 2` is what
older deployments pin. `--tls` connects with TLS, trusting CA_CERT_FILE.
Exits 0 and prints "ok" if everything worked; raises (exit 1) at the first
difference. Driven by tests/kv_client_matrix.rs.
"""
import argparse
import threading
import time

import redis

cli = argparse.ArgumentParser()
cli.add_argument("port", type=int)
cli.add_argument("--protocol", type=int, choices=(2, 3))
cli.add_argument("--tls", metavar="CA_CERT_FILE")
opts = cli.parse_args()
port = opts.port
# The client's defaults stay untouched unless an option asks otherwise.
settings = {"socket_timeout": 10, "socket_connect_timeout": 5}
if opts.protocol is not None:
    settings["protocol"] = opts.protocol
raw_settings = {k: v for k, v in settings.items()}
if opts.tls:
    settings.update(ssl=True, ssl_ca_certs=opts.tls)
resp = opts.protocol or 3  # redis-py 8's default


def connect(db=0):
    return redis.Redis(host="127.0.0.1", port=port, db=db, **settings)


# What a test harness does between tests: its own database, everything
# flushed, settings adjusted and read back.
r = connect(9)
assert r.ping() is True
info = r.client_info()
assert info["resp"] == str(resp), info
assert info["db"] == 9, info
assert info.get("lib-name", "redis-py") == "redis-py", info  # Redis < 7.2 has none
assert r.flushall() is True
assert r.function_flush() in (True, b"OK"), "FUNCTION FLUSH"
assert r.function_list() == []
assert r.script_flush() in (True, b"OK")
assert r.config_set("save", "") is True
assert r.execute_command("CONFIG", "SET", "appendonly", "no", "save", "") in (True, b"OK")
cfg = r.config_get("max*")
assert cfg["maxclients"].isdigit(), cfg  # redis-py decodes CONFIG GET
assert r.config_get("databases") == {"databases": "16"}
try:
    r.config_set("databases", "4")
    raise AssertionError("CONFIG SET databases must fail")
except redis.ResponseError as e:
    assert "immutable" in str(e), e
assert r.config_resetstat() is True

# The harness's database is separate from database 0.
r0 = connect()
r0.set("in-0", "zero")
assert r.get("in-0") is None
assert r.dbsize() == 0
r.set("in-9", "nine")
assert r0.get("in-9") is None
assert r.move("in-9", 0) is True
assert r0.get("in-9") == b"nine"
assert r.swapdb(0, 9) is True
assert r.get("in-0") == b"zero" and r0.get("in-0") is None
assert r.flushdb() is True and r.dbsize() == 0
keyspace = r0.info("keyspace")
assert "db0" not in keyspace and keyspace == {}, keyspace

# Replies come back as Python types (RESP3 types, or redis-py's RESP2
# callbacks).
r.hset("h", mapping={"f": "v", "g": "w"})
assert r.hgetall("h") == {b"f": b"v", b"g": b"w"}
r.sadd("s", "a", "b")
assert r.smembers("s") == {b"a", b"b"}
r.zadd("z", {"m": 1.5, "n": 2})
assert r.zscore("z", "m") == 1.5
# Explicit protocol=3 gives RESP3 shapes (pairs as lists); the default
# keeps redis-py's RESP2 shapes (tuples) on RESP3.
assert [tuple(x) for x in r.zrange("z", 0, -1, withscores=True)] == [(b"m", 1.5), (b"n", 2.0)]
assert r.get("missing") is None
r.set("present", "p")
assert r.mget("missing", "present") == [None, b"p"]
assert isinstance(r.info(), dict) and r.info()["redis_version"]
assert r.time()[0] > 1_600_000_000
assert r.lastsave() is not None
assert r.command_count() > 50
assert "get" in [c.lower() if isinstance(c, str) else c.decode().lower() for c in r.command_list()]

# Scripting is absent on kv, and says so (the script also runs against a
# real Redis to check itself; there EVAL works).
is_kv = r.info("server").get("server_name") == "baton-kv"
for call in (lambda: r.eval("return 1", 0), lambda: r.fcall("f", 0)):
    if not is_kv:
        break
    try:
        call()
        raise AssertionError("scripting must fail")
    except redis.ResponseError as e:
        assert "script" in str(e).lower() or "function" in str(e).lower(), e

# MULTI/EXEC through a transactional pipeline, and WATCH.
with r.pipeline() as p:
    p.set("counter", 1).incr("counter").hgetall("h").zscore("z", "n")
    assert p.execute() == [True, 2, {b"f": b"v", b"g": b"w"}, 2.0]

other = connect(9)
with r.pipeline() as p:
    p.watch("counter")
    other.incr("counter")  # another client writes the watched key
    p.multi()
    p.incr("counter")
    try:
        p.execute()
        raise AssertionError("EXEC must fail after a watched key changed")
    except redis.WatchError:
        pass
assert r.get("counter") == b"3"


def bump(pipe):
    value = int(pipe.get("counter"))
    pipe.multi()
    pipe.set("counter", value + 10)


r.transaction(bump, "counter")
assert r.get("counter") == b"13"

with r.pipeline() as p:
    p.set("x", 1).lpush("x", 2)  # the second fails at run time only
    try:
        p.execute()
        raise AssertionError("a command error inside EXEC must surface")
    except redis.ResponseError as e:
        assert "WRONGTYPE" in str(e), e
assert r.get("x") == b"1"

# A pipeline without MULTI: every reply, in order, in one round trip.
with r.pipeline(transaction=False) as p:
    for _ in range(300):
        p.incr("piped")
    p.rpush("plist", "a", "b", "c").lrange("plist", 0, -1).get("piped")
    assert p.execute() == list(range(1, 301)) + [3, [b"a", b"b", b"c"], b"300"]

# Pub/sub on one raw connection: subscribe, receive what another
# connection publishes. On RESP3 the subscriber still runs ordinary
# commands in between; on RESP2 they are refused.
if opts.tls:
    c = redis.SSLConnection(host="127.0.0.1", port=port, ssl_ca_certs=opts.tls, **raw_settings)
else:
    c = redis.Connection(host="127.0.0.1", port=port, **raw_settings)
c.connect()
assert c.protocol in (resp, str(resp)), c.protocol
c.send_command("SUBSCRIBE", "news")
confirm = c.read_response(push_request=True)
assert confirm == [b"subscribe", b"news", 1], confirm
if resp == 3:
    c.send_command("SET", "while-subscribed", "yes")
    assert c.read_response() in (True, b"OK")
assert r0.publish("news", "hello") == 1
message = c.read_response(push_request=True)
assert message == [b"message", b"news", b"hello"], message
c.send_command("GET", "while-subscribed")
if resp == 3:
    assert c.read_response() == b"yes"
else:
    try:
        c.read_response()
        raise AssertionError("a RESP2 subscriber may not run GET")
    except redis.ResponseError as e:
        assert "Can't execute 'get'" in str(e), e
c.disconnect()

# redis-py's own PubSub object: a channel and a pattern; messages from two
# publishers arrive once per subscription, in the order sent.
p = r.pubsub()
p.subscribe("chan")
p.psubscribe("ch*")
deadline = time.time() + 5
confirmed = 0
while confirmed < 2:
    assert time.time() < deadline, "no subscribe confirmations"
    m = p.get_message(timeout=0.1)
    if m and m["type"] in ("subscribe", "psubscribe"):
        confirmed += 1
assert r.publish("chan", "one") == 2
assert r0.publish("chan", "two") == 2
assert r.publish("other", "ignored") == 0
got = []
while len(got) < 4:
    assert time.time() < deadline, f"messages missing: {got}"
    m = p.get_message(timeout=0.1)
    if m:
        got.append((m["type"], m["pattern"], m["channel"], m["data"]))
assert sorted(got, key=lambda g: (g[0], g[3])) == [
    ("message", None, b"chan", b"one"),
    ("message", None, b"chan", b"two"),
    ("pmessage", b"ch*", b"chan", b"one"),
    ("pmessage", b"ch*", b"chan", b"two"),
], got
assert [g[3] for g in got if g[0] == "message"] == [b"one", b"two"], got
p.close()
assert r.pubsub_numsub("chan") == [(b"chan", 0)]

# BLPOP on one connection, woken by another client's LPUSH.
blocker = connect(9)
popped = []
waiter = threading.Thread(target=lambda: popped.append(blocker.blpop(["jobs"], timeout=10)))
waiter.start()
deadline = time.time() + 5
while r.info("clients")["blocked_clients"] != 1:
    assert time.time() < deadline, "BLPOP never blocked"
    time.sleep(0.01)
assert other.lpush("jobs", "job-1") == 1
waiter.join(timeout=10)
assert not waiter.is_alive(), "BLPOP was not woken"
assert popped == [[b"jobs", b"job-1"]] or popped == [(b"jobs", b"job-1")], popped
assert r.exists("jobs") == 0
r.rpush("jobs", "j2")
assert list(blocker.blpop(["empty", "jobs"], timeout=1)) == [b"jobs", b"j2"]
assert blocker.blpop(["empty"], timeout=0.05) is None

# CLIENT commands tools use.
r.client_setname("smoke")
assert r.client_getname() in ("smoke", b"smoke")  # decoded but with protocol=3
assert any(c["name"] == "smoke" for c in r.client_list())
assert r.client_id() == r.client_info()["id"]
assert r.client_no_evict("on") in (True, b"OK")
if is_kv:  # NO-TOUCH is Redis 7.2
    assert r.client_no_touch("on") in (True, b"OK")
victim = connect()
victim.client_setname("victim")
vid = victim.client_id()
assert r.client_kill_filter(_id=vid) == 1
assert not any(c["name"] == "victim" for c in r.client_list())

print("ok")
