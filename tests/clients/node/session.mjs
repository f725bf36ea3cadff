// node-redis (the npm package `redis`, pinned in package.json) runs an
// application's session against a server: pipelines, MULTI/EXEC and WATCH,
// pub/sub across two connections, and a BLPOP woken by another client's
// LPUSH. Every reply is checked against its expected value.
//
// Usage: node session.mjs PORT [--resp 2|3] [--tls CA_CERT_FILE]
// Prints "ok" and exits 0 on success; throws (exit 1) at the first
// difference. Driven by tests/kv_client_matrix.rs.
import { readFileSync } from "node:fs";
import { deepStrictEqual as same, ok as check, rejects } from "node:assert/strict";
import { createClient, WatchError } from "redis";

const args = process.argv.slice(2);
const port = Number(args[0]);
const option = (name) => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
};
const resp = Number(option("--resp") ?? 2);
const caFile = option("--tls");

const options = {
  RESP: resp,
  database: 3,
  socket: {
    host: "127.0.0.1",
    port,
    // A test must fail, not retry forever, if the server goes away.
    reconnectStrategy: false,
    connectTimeout: 5000,
    ...(caFile
      ? { tls: true, ca: readFileSync(caFile), servername: "localhost" }
      : {}),
  },
};

const clients = [];
async function connect() {
  const client = createClient(options);
  client.on("error", (e) => {
    console.error("client error:", e);
    process.exitCode = 1;
  });
  await client.connect();
  clients.push(client);
  return client;
}

/** Resolves with what `start` calls back with, or rejects after `ms`. */
function within(ms, what, start) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    start((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

async function waitFor(what, predicate) {
  const deadline = Date.now() + 5000;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const c = await connect();
same(await c.ping(), "PONG");
const info = await c.clientInfo();
same(info.resp, resp);
same(info.db, 3);
same(await c.flushDb(), "OK");

// Replies come back as JavaScript values.
same(await c.set("greeting", "hello", { EX: 100 }), "OK");
same(await c.get("greeting"), "hello");
check((await c.ttl("greeting")) > 90);
same(await c.get("missing"), null);
same(await c.hSet("user:1", { name: "ada", year: "1815" }), 2);
same({ ...(await c.hGetAll("user:1")) }, { name: "ada", year: "1815" });
same(await c.sAdd("tags", ["a", "b", "a"]), 2);
same((await c.sMembers("tags")).sort(), ["a", "b"]);
same(await c.zAdd("board", [{ score: 1.5, value: "x" }, { score: 3, value: "y" }]), 2);
same(await c.zScore("board", "x"), 1.5);
same(await c.zRangeWithScores("board", 0, -1), [
  { value: "x", score: 1.5 },
  { value: "y", score: 3 },
]);
await rejects(c.lPush("greeting", "x"), /WRONGTYPE/);

// Pipelines: commands issued together are written together (node-redis
// batches everything sent in one tick), and replies come back in order.
const incrs = await Promise.all(
  Array.from({ length: 300 }, () => c.incr("counter")),
);
same(incrs, Array.from({ length: 300 }, (_, i) => i + 1));
const piped = await c
  .multi()
  .set("p1", "one")
  .rPush("plist", ["a", "b", "c"])
  .lRange("plist", 0, -1)
  .get("p1")
  .execAsPipeline();
same(piped, ["OK", 3, ["a", "b", "c"], "one"]);

// MULTI/EXEC, and a command error inside EXEC surfacing as an error.
same(
  await c.multi().set("tx", "1").incr("tx").incrBy("tx", 10).get("tx").exec(),
  ["OK", 2, 12, "12"],
);
await rejects(c.multi().set("tx2", "v").lPush("tx2", "x").exec(), (e) => {
  same(e.errorIndexes, [1]);
  same(e.replies[0], "OK");
  check(/^WRONGTYPE/.test(e.replies[1].message), e.replies[1].message);
  return true;
});
same(await c.get("tx2"), "v");

// WATCH on a connection of its own: another client's write aborts EXEC.
const watcher = await connect();
const other = await connect();
await watcher.watch("balance");
same(await other.set("balance", "100"), "OK");
await rejects(watcher.multi().incr("balance").exec(), WatchError);
await watcher.watch("balance");
same(await watcher.multi().incrBy("balance", 5).exec(), [105]);

// Pub/sub: one connection subscribes, another publishes.
const subscriber = await connect();
const received = [];
const gotAll = within(5000, "pub/sub messages", (done) => {
  subscriber.subscribe("news", (message, channel) => {
    received.push([channel, message]);
    if (received.length === 3) done();
  });
});
const gotPattern = within(5000, "pattern message", (done) =>
  subscriber.pSubscribe("ne*", (message, channel) => done([channel, message])),
);
await waitFor("the subscription", async () =>
  (await c.pubSubNumSub("news")).news === 1,
);
await waitFor("the pattern subscription", async () =>
  (await c.pubSubNumPat()) === 1,
);
same(await c.publish("news", "first"), 2); // the channel and the pattern
same(await other.publish("news", "second"), 2);
same(await c.publish("news", "third"), 2);
await gotAll;
same(received, [
  ["news", "first"],
  ["news", "second"],
  ["news", "third"],
]);
same(await gotPattern, ["news", "first"]);
await subscriber.unsubscribe("news");
await subscriber.pUnsubscribe("ne*");
same(await c.publish("news", "nobody"), 0);

// BLPOP on one connection, woken by another client's LPUSH.
const blocker = await connect();
const popped = blocker.blPop("jobs", 10);
await waitFor("BLPOP to block", async () =>
  /blocked_clients:1\r\n/.test(await c.info("clients")),
);
same(await other.lPush("jobs", "job-1"), 1);
same(await popped, { key: "jobs", element: "job-1" });
same(await c.exists("jobs"), 0);
// A BLPOP that finds data returns at once; one that times out gets null.
await c.rPush("jobs", ["j2", "j3"]);
same(await blocker.blPop(["empty", "jobs"], 1), { key: "jobs", element: "j2" });
same(await blocker.blPop("empty", 0.05), null);

for (const client of clients) client.destroy();
console.log("ok");
