//! RESP2 on the IO threads: requests (multibulk and inline) in, replies out.
//!
//! Errors use Redis's texts; a malformed request gets `-ERR Protocol error:
//! ...` and the connection closes, as Redis does.

use baton::{Codec, ProtocolError, RecvBuf};

use crate::blob::Blob;

/// Redis's limit on the number of arguments in one request.
const MAX_ARRAY_LEN: usize = 1024 * 1024;
/// Redis's limit on an inline request.
const MAX_INLINE: usize = 64 * 1024;

/// One request: the command name and its arguments, as sent.
pub type Request = Vec<Vec<u8>>;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// `+...` with a fixed text.
    Status(&'static str),
    /// `-...` (the text includes its prefix, such as `ERR` or `WRONGTYPE`).
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n\r\n...`
    Bulk(Vec<u8>),
    /// `$n\r\n...` of a stored string (short ones copied without allocating).
    Stored(Blob),
    /// `$-1`
    Nil,
    /// `*n` followed by the elements.
    Array(Vec<Reply>),
    /// `*-1`
    NilArray,
    /// RESP3 map `%n` (RESP2: a flat array of keys and values).
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set `~n` (RESP2: an array).
    Set(Vec<Reply>),
    /// RESP3 double `,text`, holding the text Redis prints (RESP2: a bulk).
    Double(Vec<u8>),
    /// RESP3 null `_` (see `crate::resp3::adapt` for its RESP2 forms).
    Null,
    /// RESP3 boolean `#t`/`#f` (RESP2: `:1`/`:0`).
    // No command kv implements replies with a boolean or a big number in
    // Redis 7 either; both are encoded (and tested) for the ones that will.
    #[allow(dead_code)]
    Bool(bool),
    /// RESP3 big number `(digits` (RESP2: a bulk).
    #[allow(dead_code)]
    BigNumber(String),
    /// RESP3 verbatim string `=n\r\ntxt:...` (RESP2: a bulk of the text).
    Verbatim(Vec<u8>),
    /// RESP3 push `>n` (RESP2: an array).
    Push(Vec<Reply>),
    /// Bytes already encoded (the same in either protocol: the caller
    /// picks the encoding before sending).
    Raw(&'static [u8]),
}

impl Reply {
    pub fn error(message: impl Into<String>) -> Self {
        Reply::Error(message.into())
    }

    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Self {
        Reply::Bulk(bytes.into())
    }

    pub fn bulk_or_nil(value: Option<Vec<u8>>) -> Self {
        value.map_or(Reply::Nil, Reply::Bulk)
    }

    pub fn stored_or_nil(value: Option<Blob>) -> Self {
        value.map_or(Reply::Nil, Reply::Stored)
    }

    pub fn array_of_bulks(items: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }
}

/// The RESP2 codec of one connection.
#[derive(Debug)]
pub struct Resp {
    max_bulk_len: usize,
}

impl Resp {
    pub fn new(max_bulk_len: usize) -> Self {
        Self { max_bulk_len }
    }
}

fn malformed(what: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::malformed(format!("Protocol error: {what}"))
}

/// Finds `\r\n` at or after `from`; the index of `\r`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// Parses the decimal integer of a `*` or `$` header line.
fn header_number(line: &[u8]) -> Option<i64> {
    std::str::from_utf8(line).ok()?.parse().ok()
}

impl Resp {
    /// A multibulk request starting at `buf[0] == b'*'`: `Ok(None)` until
    /// it is complete; then the request and the bytes it took.
    fn multibulk(&self, buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        let Some(end) = line_end(buf, 1) else {
            return if buf.len() > MAX_INLINE {
                Err(malformed("invalid multibulk length"))
            } else {
                Ok(None)
            };
        };
        let count =
            header_number(&buf[1..end]).ok_or_else(|| malformed("invalid multibulk length"))?;
        if count > MAX_ARRAY_LEN as i64 {
            return Err(malformed("invalid multibulk length"));
        }
        let mut pos = end + 2;
        if count <= 0 {
            return Ok(Some((Vec::new(), pos)));
        }
        let mut args = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let Some(&first) = buf.get(pos) else {
                return Ok(None);
            };
            if first != b'$' {
                return Err(malformed(format!("expected '$', got '{}'", first as char)));
            }
            let Some(end) = line_end(buf, pos + 1) else {
                return if buf.len() - pos > MAX_INLINE {
                    Err(malformed("invalid bulk length"))
                } else {
                    Ok(None)
                };
            };
            let len = header_number(&buf[pos + 1..end])
                .ok_or_else(|| malformed("invalid bulk length"))?;
            if len < 0 || len as u64 > self.max_bulk_len as u64 {
                return Err(malformed("invalid bulk length"));
            }
            let start = end + 2;
            let stop = start + len as usize;
            if buf.len() < stop + 2 {
                return Ok(None);
            }
            if &buf[stop..stop + 2] != b"\r\n" {
                return Err(malformed("expected CRLF after bulk"));
            }
            args.push(buf[start..stop].to_vec());
            pos = stop + 2;
        }
        Ok(Some((args, pos)))
    }

    /// An inline request: one line, arguments split on spaces (with Redis's
    /// quoting for `"..."` and `'...'`).
    fn inline(buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
            return if buf.len() > MAX_INLINE {
                Err(malformed("too big inline request"))
            } else {
                Ok(None)
            };
        };
        let line = buf[..newline]
            .strip_suffix(b"\r")
            .unwrap_or(&buf[..newline]);
        Ok(Some((split_inline(line)?, newline + 1)))
    }
}

fn split_inline(line: &[u8]) -> Result<Request, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            break;
        }
        let mut arg = Vec::new();
        match line[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let Some(&c) = line.get(i) else {
                        return Err(malformed("unbalanced quotes in request"));
                    };
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c == b'\\' && quote == b'"' {
                        let Some(&escaped) = line.get(i) else {
                            return Err(malformed("unbalanced quotes in request"));
                        };
                        i += 1;
                        arg.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            other => other,
                        });
                    } else {
                        arg.push(c);
                    }
                }
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(malformed("unbalanced quotes in request"));
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
    Ok(args)
}

impl Codec for Resp {
    type In = Request;
    type Out = Reply;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Request>, ProtocolError> {
        loop {
            let buf = src.as_slice();
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            let parsed = if first == b'*' {
                self.multibulk(buf)?
            } else {
                Self::inline(buf)?
            };
            let Some((request, used)) = parsed else {
                return Ok(None);
            };
            src.consume(used);
            // Empty lines and `*0` are skipped, as Redis does.
            if !request.is_empty() {
                return Ok(Some(request));
            }
        }
    }

    fn encode(&mut self, reply: Reply, dst: &mut Vec<u8>) {
        encode(&reply, dst);
    }

    fn encoded_len(reply: &Reply) -> usize {
        encoded_len(reply)
    }

    fn error_frame(&mut self, error: &ProtocolError) -> Option<Reply> {
        Some(Reply::Error(format!("ERR {}", error.message)))
    }
}

fn encode(reply: &Reply, dst: &mut Vec<u8>) {
    let mut itoa = itoa::Buffer::new();
    match reply {
        Reply::Ok => dst.extend_from_slice(b"+OK\r\n"),
        Reply::Status(s) => line(dst, b'+', s.as_bytes()),
        Reply::Error(e) => line(dst, b'-', e.as_bytes()),
        Reply::Int(n) => line(dst, b':', itoa.format(*n).as_bytes()),
        Reply::Bulk(bytes) => bulk(dst, bytes),
        Reply::Stored(bytes) => bulk(dst, bytes),
        Reply::Nil => dst.extend_from_slice(b"$-1\r\n"),
        Reply::Array(items) => {
            line(dst, b'*', itoa.format(items.len()).as_bytes());
            for item in items {
                encode(item, dst);
            }
        }
        Reply::NilArray => dst.extend_from_slice(b"*-1\r\n"),
        other => crate::resp3::encode(other, dst, encode),
    }
}

fn line(dst: &mut Vec<u8>, prefix: u8, text: &[u8]) {
    dst.push(prefix);
    dst.extend_from_slice(text);
    dst.extend_from_slice(b"\r\n");
}

fn bulk(dst: &mut Vec<u8>, bytes: &[u8]) {
    line(
        dst,
        b'$',
        itoa::Buffer::new().format(bytes.len()).as_bytes(),
    );
    dst.extend_from_slice(bytes);
    dst.extend_from_slice(b"\r\n");
}

fn bulk_len(bytes: &[u8]) -> usize {
    digits(bytes.len()) + 3 + bytes.len() + 2
}

fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

fn encoded_len(reply: &Reply) -> usize {
    match reply {
        Reply::Ok => 5,
        Reply::Status(s) => s.len() + 3,
        Reply::Error(e) => e.len() + 3,
        Reply::Int(n) => digits(n.unsigned_abs() as usize) + usize::from(*n < 0) + 3,
        Reply::Bulk(b) => bulk_len(b),
        Reply::Stored(b) => bulk_len(b),
        Reply::Nil | Reply::NilArray => 5,
        Reply::Array(items) => {
            digits(items.len()) + 3 + items.iter().map(encoded_len).sum::<usize>()
        }
        other => crate::resp3::encoded_len(other, encoded_len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Request>, ProtocolError> {
        let mut codec = Resp::new(512 << 20);
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(request) = codec.decode(&mut buf)? {
            out.push(request);
        }
        Ok(out)
    }

    fn args(items: &[&str]) -> Request {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_inline_and_pipelined_requests() {
        let got = decode_all(
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nx!\r\nPING\r\nset 'a b' \"c\\nd\"\r\n",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                args(&["SET", "k", "v\r\nx!"]),
                args(&["PING"]),
                args(&["set", "a b", "c\nd"])
            ]
        );
    }

    #[test]
    fn any_split_of_the_stream_decodes_the_same() {
        let stream = b"*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
        let whole = decode_all(stream).unwrap();
        for cut in 0..stream.len() {
            let mut codec = Resp::new(512 << 20);
            let mut buf = RecvBuf::new();
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                buf.extend_from_slice(part);
                while let Some(r) = codec.decode(&mut buf).unwrap() {
                    got.push(r);
                }
            }
            assert_eq!(got, whole, "split at {cut}");
        }
    }

    #[test]
    fn malformed_requests_get_redis_errors() {
        let err = |b: &[u8]| decode_all(b).unwrap_err().message;
        assert_eq!(
            err(b"*1\r\n+PING\r\n"),
            "Protocol error: expected '$', got '+'"
        );
        assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*1\r\n$-5\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            err(b"set \"unterminated\r\n"),
            "Protocol error: unbalanced quotes in request"
        );
        let mut codec = Resp::new(10);
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(b"*1\r\n$11\r\n");
        assert_eq!(
            codec.decode(&mut buf).unwrap_err().message,
            "Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn encoded_len_matches_encoding() {
        let replies = [
            Reply::Ok,
            Reply::Status("PONG"),
            Reply::Error("ERR x".into()),
            Reply::Int(0),
            Reply::Int(-12345),
            Reply::Int(i64::MIN),
            Reply::Bulk(vec![b'x'; 1000]),
            Reply::Nil,
            Reply::NilArray,
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Bulk(b"ab".to_vec()),
                Reply::Array(vec![]),
            ]),
        ];
        for reply in replies {
            let mut out = Vec::new();
            encode(&reply, &mut out);
            assert_eq!(out.len(), encoded_len(&reply), "{reply:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A well-formed request, encoded as a client would send it.
    fn request() -> impl Strategy<Value = Request> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..6)
    }

    fn encode_request(request: &Request) -> Vec<u8> {
        let mut out = format!("*{}\r\n", request.len()).into_bytes();
        for arg in request {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Feeds `stream` in the given pieces; the requests decoded, or the error.
    fn feed(stream: &[u8], cuts: &[usize]) -> Result<Vec<Request>, String> {
        let mut codec = Resp::new(1 << 20);
        let mut buf = RecvBuf::new();
        let mut got = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain([stream.len()].iter()) {
            let cut = cut.clamp(start, stream.len());
            buf.extend_from_slice(&stream[start..cut]);
            start = cut;
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(r)) => got.push(r),
                    Ok(None) => break,
                    Err(e) => return Err(e.message),
                }
            }
        }
        Ok(got)
    }

    proptest! {
        /// Any pipeline of valid requests, split anywhere, decodes to the
        /// same requests in the same order.
        #[test]
        fn any_split_of_valid_requests_decodes_the_same(
            requests in prop::collection::vec(request(), 1..8),
            mut cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let stream: Vec<u8> = requests.iter().flat_map(encode_request).collect();
            cuts.iter_mut().for_each(|c| *c %= stream.len() + 1);
            cuts.sort_unstable();
            prop_assert_eq!(feed(&stream, &cuts), Ok(requests));
        }

        /// Random bytes never panic, and split anywhere give the same
        /// outcome as in one piece (the same requests, or the same error).
        #[test]
        fn random_bytes_never_panic_and_splits_agree(
            stream in prop::collection::vec(any::<u8>(), 0..512),
            mut cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            cuts.iter_mut().for_each(|c| *c %= stream.len() + 1);
            cuts.sort_unstable();
            let whole = feed(&stream, &[]);
            let split = feed(&stream, &cuts);
            // A request cut short at the very end is simply not complete yet
            // in both; errors must agree exactly.
            prop_assert_eq!(whole, split);
        }

        /// Protocol-looking garbage (headers with random numbers) never
        /// panics either.
        #[test]
        fn header_garbage_never_panics(parts in prop::collection::vec(
            prop_oneof![
                Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()), Just(b"-".to_vec()),
                any::<i64>().prop_map(|n| n.to_string().into_bytes()),
                prop::collection::vec(any::<u8>(), 0..8),
            ],
            0..32,
        )) {
            let stream: Vec<u8> = parts.concat();
            let _ = feed(&stream, &[stream.len() / 2]);
        }
    }
}
