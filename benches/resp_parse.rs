//! RESP request parsing (the KV example's codec), per command.
//!
//! `cargo bench --bench resp_parse`

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

// Only the reply type is needed (and these modules' tests do not run here).
#[path = "../examples/kv/blob.rs"]
#[allow(dead_code, unused_imports)]
mod blob;
#[path = "../examples/kv/key.rs"]
#[allow(dead_code, unused_imports)]
mod key;
#[path = "../examples/kv/protocol.rs"]
#[allow(dead_code)]
mod protocol;
// The codec encodes RESP3's reply types through it.
#[path = "../examples/kv/resp3.rs"]
#[allow(dead_code)]
mod resp3;

use std::hint::black_box;
use std::time::Duration;

use baton::{Codec, RecvBuf};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn pipeline(command: &[u8], n: usize) -> Vec<u8> {
    command.repeat(n)
}

fn resp_parse(c: &mut Criterion) {
    let set = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000012345\r\n$16\r\nxxxxxxxxxxxxxxxx\r\n".to_vec();
    let get = b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000012345\r\n".to_vec();
    let mut big = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000012345\r\n$4096\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 4096));
    big.extend_from_slice(b"\r\n");
    let mut group = c.benchmark_group("resp_parse");
    for (name, command) in [("set_16B", &set), ("get", &get), ("set_4KiB", &big)] {
        const DEPTH: usize = 16;
        let input = pipeline(command, DEPTH);
        group.throughput(Throughput::Elements(DEPTH as u64));
        group.bench_with_input(BenchmarkId::new(name, DEPTH), &input, |b, input| {
            let mut codec = protocol::Resp::new(512 << 20);
            let mut buf = RecvBuf::new();
            b.iter(|| {
                buf.extend_from_slice(input);
                while let Some(request) = codec.decode(&mut buf).expect("valid") {
                    black_box(request);
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = resp_parse
}
criterion_main!(benches);
