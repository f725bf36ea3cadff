#!/usr/bin/env python3
"""redis-py at its defaults (RESP3 via HELLO 3) against a server on PORT.

Usage: python3 tests/clients/redis_py_smoke.py PORT
Exits 0 and prints "ok" if everything a test harness and an application do
with redis-py works; raises (exit 1) at the first difference. Driven by
tests/kv_clients.rs.
"""
import sys
import time

import redis

port = int(sys.argv[1])

# What a test harness does between tests: its own database, everything
# flushed, settings adjusted and read back.
r = redis.Redis(host="127.0.0.1", port=port, db=9)
assert r.ping() is True
info = r.client_info()
assert info["resp"] == "3", info
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
r0 = redis.Redis(host="127.0.0.1", port=port)
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

# RESP3 types come back as Python types.
r.hset("h", mapping={"f": "v", "g": "w"})
assert r.hgetall("h") == {b"f": b"v", b"g": b"w"}
r.sadd("s", "a", "b")
assert r.smembers("s") == {b"a", b"b"}
r.zadd("z", {"m": 1.5, "n": 2})
assert r.zscore("z", "m") == 1.5
assert r.zrange("z", 0, -1, withscores=True) == [(b"m", 1.5), (b"n", 2.0)]
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

other = redis.Redis(host="127.0.0.1", port=port, db=9)
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

# Pub/sub on RESP3: one connection subscribes, receives pushes, and still
# runs ordinary commands in between.
c = redis.Connection(host="127.0.0.1", port=port)
c.connect()
assert c.protocol == 3
c.send_command("SUBSCRIBE", "news")
confirm = c.read_response(push_request=True)
assert confirm == [b"subscribe", b"news", 1], confirm
c.send_command("SET", "while-subscribed", "yes")
assert c.read_response() in (True, b"OK")
assert r0.publish("news", "hello") == 1
message = c.read_response(push_request=True)
assert message == [b"message", b"news", b"hello"], message
c.send_command("GET", "while-subscribed")
assert c.read_response() == b"yes"
c.disconnect()

# redis-py's own PubSub object on RESP3.
p = r.pubsub()
p.subscribe("chan")
deadline = time.time() + 5
got = None
while time.time() < deadline and got is None:
    m = p.get_message(timeout=0.1)
    if m and m["type"] == "subscribe":
        r.publish("chan", "payload")
    elif m and m["type"] == "message":
        got = m
assert got is not None and got["data"] == b"payload", got
p.close()

# CLIENT commands tools use.
r.client_setname("smoke")
assert r.client_getname() == "smoke"  # redis-py decodes it
assert any(c["name"] == "smoke" for c in r.client_list())
assert r.client_id() == r.client_info()["id"]
assert r.client_no_evict("on") in (True, b"OK")
if is_kv:  # NO-TOUCH is Redis 7.2
    assert r.client_no_touch("on") in (True, b"OK")
victim = redis.Redis(host="127.0.0.1", port=port)
victim.client_setname("victim")
vid = victim.client_id()
assert r.client_kill_filter(_id=vid) == 1
assert not any(c["name"] == "victim" for c in r.client_list())

print("ok")
