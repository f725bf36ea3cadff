//! RESP2 on the IO threads: requests (multibulk and inline) in, replies out.
//!
//! Requests are parsed as Redis 7's `processMultibulkBuffer` and
//! `processInlineBuffer` do, with their limits and error texts; a malformed
//! request gets `-ERR Protocol error: ...` and the connection closes.
//!
//! Parsing is incremental: a request not complete yet stays in the receive
//! buffer (so the runtime's frame-size limit still covers all of it), and
//! the codec remembers how far it got (the arguments found, the position
//! reached, how far the current line was searched), so each byte is
//! examined once and copied once however the request is split. A 32 MiB
//! argument followed by the rest of its request one byte at a time costs
//! the same as the request in one piece.
//!
//! Where Redis's C strings show through, it is followed: a header or inline
//! line that holds a NUL byte before its end is never complete (Redis's
//! `strchr` stops at the NUL) until it is too big. Not followed: the byte
//! in `expected '$', got 'X'` is sent as a character (two bytes in UTF-8
//! for bytes from 0x80) where Redis sends the raw byte.

use baton::{Codec, OutBuf, ProtocolError, RecvBuf};

use crate::blob::Blob;

/// A stored value at least this long is sent from the keyspace's own copy
/// (`OutBuf::push_shared`) instead of being copied into the write buffer:
/// a GET of a 64 KiB value then copies it once, into the socket (or into
/// rustls's record). Shorter values cost less to copy than an `iovec`.
const SHARE_AT_LEAST: usize = 16 * 1024;
/// Redis's limit on the number of arguments in one request (`INT_MAX`).
const MAX_ARRAY_LEN: i64 = i32::MAX as i64;
/// Redis's limit on an inline request or a `*`/`$` line
/// (`PROTO_INLINE_MAX_SIZE`).
const MAX_INLINE: usize = 64 * 1024;
/// Argument slots reserved up front at most, whatever the count claims (as
/// Redis's `argv_len`): a header alone allocates no more.
const RESERVE_ARGS: usize = 1024;
/// Redis's limits on a request from a client that must still AUTH: at
/// most 10 arguments, each at most 16 KB, so a client without the
/// password cannot make the server hold up to `proto-max-bulk-len` per
/// argument.
const MAX_ARGS_BEFORE_AUTH: i64 = 10;
const MAX_BULK_BEFORE_AUTH: usize = 16 * 1024;

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
    /// `-...` echoing client bytes, which need not be UTF-8 (the
    /// unknown-command error); never holds CR or LF.
    ErrorBytes(Vec<u8>),
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

/// What a connection's codec enforces beyond RESP's grammar: kv's
/// `proto-max-bulk-len`, and Redis's limits for a client that must still
/// AUTH. The service keeps each connection's codec in step with them
/// (`Ctx::update_codec`): after AUTH, HELLO and RESET, and after CONFIG SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bulk_len: usize,
    /// `requirepass` is set.
    pub password_set: bool,
    /// The connection has authenticated (or had no password to give).
    pub authenticated: bool,
}

impl Limits {
    /// Redis's `authRequired`: the requests are limited.
    pub fn before_auth(self) -> bool {
        self.password_set && !self.authenticated
    }
}

/// The RESP2 codec of one connection.
#[derive(Debug)]
pub struct Resp {
    limits: Limits,
    /// Before AUTH, a login (AUTH, HELLO) was decoded and the service has
    /// not said how it went ([`set_limits`](Resp::set_limits)). What
    /// follows is decoded with the limits meanwhile; a request that breaks
    /// them is not refused but waits (`held`), as the login may lift them.
    login_pending: bool,
    /// Nothing more is decoded until the service sets the limits again:
    /// a request broke them while a login was pending, or a CONFIG SET
    /// (which may change them) was decoded. So each request is read with
    /// the limits that hold once the ones before it have run, as Redis
    /// parses each request only after running the one before.
    held: bool,
    /// Progress through the request at the front of the receive buffer.
    partial: Partial,
}

/// How far parsing of a request that is not complete yet got. Offsets are
/// into the unconsumed bytes `decode` is given: the runtime hands the same
/// bytes back, with more after them, until the codec consumes them.
#[derive(Debug, Default)]
struct Partial {
    /// Bytes before it are parsed.
    pos: usize,
    /// The current line holds no end (`\r`, `\n` for inline) before it.
    scanned: usize,
    /// The `*` line is parsed; `remaining` arguments are still to come.
    in_multibulk: bool,
    remaining: usize,
    /// The `$` line of the next argument is parsed: its length.
    bulk: Option<usize>,
    /// The arguments found so far: (offset, length).
    args: Vec<(usize, usize)>,
}

impl Partial {
    fn reset(&mut self) {
        self.pos = 0;
        self.scanned = 0;
        self.in_multibulk = false;
        self.remaining = 0;
        self.bulk = None;
        self.args.clear();
        if self.args.capacity() > RESERVE_ARGS {
            // Do not keep the index of one huge request for the
            // connection's lifetime.
            self.args = Vec::new();
        }
    }
}

/// A request parsed from the front of the buffer, and the bytes it took.
enum Parsed {
    /// A multibulk request: its arguments are `Partial::args`.
    Multibulk(usize),
    /// An inline request (its arguments are unescaped, so copied already).
    Inline(Request, usize),
}

impl Resp {
    /// A codec for a server without a password.
    #[allow(dead_code)] // the codec's tests and benches/resp_parse.rs
    pub fn new(max_bulk_len: usize) -> Self {
        Self::with_limits(Limits {
            max_bulk_len,
            password_set: false,
            authenticated: true,
        })
    }

    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            login_pending: false,
            held: false,
            partial: Partial::default(),
        }
    }

    /// The limits as of the request the service just ran (a request half
    /// parsed keeps the argument lengths it has); decoding goes on if it
    /// waited for them. The service calls it after every login before
    /// AUTH and every CONFIG, and whenever the limits change.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.login_pending = false;
        self.held = false;
    }

    /// Notes what `request`, just decoded, does to the limits of the
    /// requests after it, before the service runs it.
    fn decoded(&mut self, request: &Request) {
        let is = |name: &[u8]| request[0].eq_ignore_ascii_case(name);
        if is(b"config") {
            if request
                .get(1)
                .is_some_and(|sub| sub.eq_ignore_ascii_case(b"set"))
            {
                self.held = true;
            }
        } else if self.limits.password_set && is(b"reset") {
            // RESET logs out whenever a password is set.
            self.limits.authenticated = false;
        } else if self.limits.before_auth() && (is(b"auth") || is(b"hello")) {
            self.login_pending = true;
        }
    }

    /// A request breaks the limits before AUTH: refused, unless a login
    /// decoded before it may lift them (then it waits, re-parsed from its
    /// line once the service has set the limits).
    fn over_limit<T>(&mut self, what: &str) -> Result<Option<T>, ProtocolError> {
        if self.login_pending {
            self.held = true;
            Ok(None)
        } else {
            Err(malformed(what))
        }
    }
}

fn malformed(what: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::malformed(format!("Protocol error: {what}"))
}

/// Finds the end of the line starting at `start`: the index of the first
/// `end` byte, once the byte after it has arrived too (Redis skips that
/// byte unread: `\n` for a `\r`). `scanned` carries the search across
/// calls. Redis's `strchr` stops at a NUL byte, so a NUL before the end
/// leaves the line incomplete for good. A line with no end within
/// [`MAX_INLINE`] bytes is `too_big` (decided on the first `MAX_INLINE + 1`
/// bytes only, so the answer does not depend on how the bytes arrived).
fn line_end(
    buf: &[u8],
    start: usize,
    end: u8,
    scanned: &mut usize,
    too_big: &str,
) -> Result<Option<usize>, ProtocolError> {
    let limit = buf.len().min(start.saturating_add(MAX_INLINE + 1));
    let from = (*scanned).max(start);
    let window = buf.get(from..limit).unwrap_or_default();
    #[cfg(test)]
    tests::EXAMINED.with(|e| e.set(e.get() + window.len()));
    match window.iter().position(|&b| b == end || b == 0) {
        Some(i) if window[i] == end => {
            *scanned = from + i;
            let found = from + i;
            Ok((found + 1 < buf.len() || end == b'\n').then_some(found))
        }
        found => {
            // At a NUL, stay on it: it is found again at once next time.
            *scanned = found.map_or(limit, |i| from + i);
            if buf.len() - start > MAX_INLINE {
                Err(malformed(too_big))
            } else {
                Ok(None)
            }
        }
    }
}

/// Redis's `string2ll`: an optional `-`, then decimal digits without a
/// leading zero (`0` alone excepted), fitting an `i64`, at most 20 bytes.
/// No `+`, no spaces, no `-0`.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    // Redis's LONG_STR_SIZE: 20 bytes hold every i64.
    // (The empty string fails below: no first digit.)
    if s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &d in rest {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // -(i64::MIN) is one more than i64::MAX.
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

impl Resp {
    /// The request at the front of `buf`, continuing from `self.partial`:
    /// `Ok(None)` until it is complete.
    fn parse(&mut self, buf: &[u8]) -> Result<Option<Parsed>, ProtocolError> {
        match buf.first() {
            None => Ok(None),
            Some(b'*') => Ok(self.multibulk(buf)?.map(Parsed::Multibulk)),
            Some(_) => Ok(self.inline(buf)?.map(|(r, used)| Parsed::Inline(r, used))),
        }
    }

    /// A multibulk request: `*<count>\r\n` then `count` times
    /// `$<len>\r\n<len bytes>\r\n`. The end of the request, once complete.
    fn multibulk(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let st = &mut self.partial;
        if !st.in_multibulk {
            let Some(cr) = line_end(buf, 0, b'\r', &mut st.scanned, "too big mbulk count string")?
            else {
                return Ok(None);
            };
            let count = string2ll(&buf[1..cr])
                .filter(|&n| n <= MAX_ARRAY_LEN)
                .ok_or_else(|| malformed("invalid multibulk length"))?;
            if count > MAX_ARGS_BEFORE_AUTH && self.limits.before_auth() {
                return self.over_limit("unauthenticated multibulk length");
            }
            st.pos = cr + 2;
            if count <= 0 {
                return Ok(Some(st.pos));
            }
            st.in_multibulk = true;
            st.remaining = count as usize;
            st.args.reserve(st.remaining.min(RESERVE_ARGS));
        }
        while st.remaining > 0 {
            let len = match st.bulk {
                Some(len) => len,
                None => {
                    let Some(cr) = line_end(
                        buf,
                        st.pos,
                        b'\r',
                        &mut st.scanned,
                        "too big bulk count string",
                    )?
                    else {
                        return Ok(None);
                    };
                    let first = buf[st.pos];
                    if first != b'$' {
                        return Err(malformed(format!(
                            "expected '$', got '{}'",
                            printable(first)
                        )));
                    }
                    let len = string2ll(&buf[st.pos + 1..cr])
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|&n| n <= self.limits.max_bulk_len)
                        .ok_or_else(|| malformed("invalid bulk length"))?;
                    if len > MAX_BULK_BEFORE_AUTH && self.limits.before_auth() {
                        return self.over_limit("unauthenticated bulk length");
                    }
                    st.pos = cr + 2;
                    st.bulk = Some(len);
                    len
                }
            };
            // The two bytes after the body are skipped unread, as Redis does.
            if buf.len() - st.pos < len.saturating_add(2) {
                return Ok(None);
            }
            st.args.push((st.pos, len));
            st.pos += len + 2;
            st.bulk = None;
            st.remaining -= 1;
        }
        Ok(Some(st.pos))
    }

    /// An inline request: one line, split as Redis's `sdssplitargs` does.
    fn inline(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        let st = &mut self.partial;
        let Some(newline) = line_end(buf, 0, b'\n', &mut st.scanned, "too big inline request")?
        else {
            return Ok(None);
        };
        let line = &buf[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Ok(Some((split_inline(line)?, newline + 1)))
    }

    /// The arguments of the multibulk request just parsed, copied out.
    fn take_args(&mut self, buf: &[u8]) -> Request {
        self.partial
            .args
            .iter()
            .map(|&(at, len)| buf[at..at + len].to_vec())
            .collect()
    }
}

/// The offending byte as Redis shows it: `\r` and `\n` become spaces.
fn printable(byte: u8) -> char {
    match byte {
        b'\r' | b'\n' => ' ',
        other => char::from(other),
    }
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// Redis's `sdssplitargs`: arguments separated by blanks; `"..."` with
/// `\n \r \t \b \a \xHH` escapes, `'...'` with `\'`; a quote may start in
/// the middle of an argument, and a closing quote must be followed by a
/// blank or the end. `line` holds no NUL (see [`line_end`]); reads past its
/// end see C's terminating NUL.
fn split_inline(line: &[u8]) -> Result<Request, ProtocolError> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let unbalanced = || malformed("unbalanced quotes in request");
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while is_c_space(at(i)) {
            i += 1;
        }
        if at(i) == 0 {
            return Ok(args);
        }
        let mut arg = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(i);
            if in_double {
                if let (b'\\', b'x', Some(hi), Some(lo)) =
                    (c, at(i + 1), hex_value(at(i + 2)), hex_value(at(i + 3)))
                {
                    arg.push(hi * 16 + lo);
                    i += 3;
                } else if c == b'\\' {
                    // Redis checks for a byte after the `\`; at the end
                    // the NUL taken here ends the line unterminated all
                    // the same.
                    i += 1;
                    arg.push(match at(i) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(i + 1) != 0 && !is_c_space(at(i + 1)) {
                        return Err(unbalanced());
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return Err(unbalanced());
                } else {
                    arg.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(i + 1) == b'\'' {
                    i += 1;
                    arg.push(b'\'');
                } else if c == b'\'' {
                    if at(i + 1) != 0 && !is_c_space(at(i + 1)) {
                        return Err(unbalanced());
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return Err(unbalanced());
                } else {
                    arg.push(c);
                }
            } else {
                match c {
                    // The blank is skipped with the ones after it.
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => arg.push(other),
                }
            }
            if at(i) != 0 {
                i += 1;
            }
        }
        args.push(arg);
    }
}

impl Codec for Resp {
    type In = Request;
    type Out = Reply;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Request>, ProtocolError> {
        if self.held {
            return Ok(None);
        }
        loop {
            let buf = src.as_slice();
            let (request, used) = match self.parse(buf)? {
                None => return Ok(None),
                Some(Parsed::Multibulk(used)) => (self.take_args(buf), used),
                Some(Parsed::Inline(request, used)) => (request, used),
            };
            src.consume(used);
            self.partial.reset();
            // Empty lines and `*0` are skipped, as Redis does.
            if !request.is_empty() {
                self.decoded(&request);
                return Ok(Some(request));
            }
        }
    }

    fn encode(&mut self, reply: Reply, dst: &mut Vec<u8>) {
        encode(&reply, dst);
    }

    fn encode_into(&mut self, reply: Reply, dst: &mut OutBuf) {
        encode_sharing(reply, dst);
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
        Reply::ErrorBytes(e) => line(dst, b'-', e),
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

/// [`encode`], sharing large stored values (at the top, or in an array:
/// GET, GETDEL, MGET) with the keyspace instead of copying them; the bytes
/// are the same.
fn encode_sharing(reply: Reply, dst: &mut OutBuf) {
    match reply {
        Reply::Stored(Blob::Heap(value)) if value.len() >= SHARE_AT_LEAST => {
            let len = value.len();
            line(
                dst.bytes_mut(),
                b'$',
                itoa::Buffer::new().format(len).as_bytes(),
            );
            dst.push_shared(value);
            dst.extend_from_slice(b"\r\n");
        }
        Reply::Array(items) => {
            let n = items.len();
            line(
                dst.bytes_mut(),
                b'*',
                itoa::Buffer::new().format(n).as_bytes(),
            );
            for item in items {
                encode_sharing(item, dst);
            }
        }
        other => encode(&other, dst.bytes_mut()),
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
        Reply::ErrorBytes(e) => e.len() + 3,
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

    fn err(bytes: &[u8]) -> String {
        decode_all(bytes).unwrap_err().message
    }

    const BEFORE_AUTH: Limits = Limits {
        max_bulk_len: 512 << 20,
        password_set: true,
        authenticated: false,
    };
    const AUTHENTICATED: Limits = Limits {
        authenticated: true,
        ..BEFORE_AUTH
    };

    /// Decodes what `codec` gives for `bytes`, until it gives nothing more.
    fn decode_with(codec: &mut Resp, buf: &mut RecvBuf) -> Result<Vec<Request>, ProtocolError> {
        let mut out = Vec::new();
        while let Some(request) = codec.decode(buf)? {
            out.push(request);
        }
        Ok(out)
    }

    fn before_auth(bytes: &[u8]) -> Result<Vec<Request>, ProtocolError> {
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(bytes);
        decode_with(&mut Resp::with_limits(BEFORE_AUTH), &mut buf)
    }

    fn request_of(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            bulk(&mut out, arg);
        }
        out
    }

    #[test]
    fn before_auth_requests_are_limited_to_ten_arguments_of_16_kb() {
        let ten: Vec<&[u8]> = vec![b"x"; 10];
        assert_eq!(before_auth(&request_of(&ten)).unwrap().len(), 1);
        let eleven: Vec<&[u8]> = vec![b"x"; 11];
        assert_eq!(
            before_auth(&request_of(&eleven)).unwrap_err().message,
            "Protocol error: unauthenticated multibulk length"
        );
        // Refused at the header: the arguments need not arrive.
        assert_eq!(
            before_auth(b"*1000000\r\n").unwrap_err().message,
            "Protocol error: unauthenticated multibulk length"
        );
        let big = vec![b'v'; MAX_BULK_BEFORE_AUTH];
        assert_eq!(before_auth(&request_of(&[b"ECHO", &big])).unwrap().len(), 1);
        assert_eq!(
            before_auth(b"*2\r\n$4\r\nECHO\r\n$16385\r\n")
                .unwrap_err()
                .message,
            "Protocol error: unauthenticated bulk length"
        );
        // Redis's order: a length over proto-max-bulk-len is invalid first.
        assert_eq!(
            before_auth(b"*1\r\n$9999999999\r\n").unwrap_err().message,
            "Protocol error: invalid bulk length"
        );
        // Inline requests keep only their own 64 KB limit, as in Redis.
        let inline = [b"ECHO ".as_slice(), &vec![b'v'; 20_000], b"\r\n"].concat();
        assert_eq!(before_auth(&inline).unwrap().len(), 1);
        // Authenticated, the same requests pass.
        assert_eq!(decode_all(&request_of(&eleven)).unwrap().len(), 1);
        assert_eq!(
            decode_all(&request_of(&[b"ECHO", &[b'v'; 20_000]]))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_request_over_the_limits_after_a_login_waits_for_its_outcome() {
        let big = vec![b'v'; 20_000];
        for login in [
            request_of(&[b"AUTH", b"secret"]),
            request_of(&[b"hello", b"3", b"AUTH", b"default", b"secret"]),
            b"auth secret\r\n".to_vec(),
        ] {
            let after = request_of(&[b"SET", b"k", &big]);
            let mut buf = RecvBuf::new();
            buf.extend_from_slice(&[login.as_slice(), &after].concat());
            let mut codec = Resp::with_limits(BEFORE_AUTH);
            let first = decode_with(&mut codec, &mut buf).unwrap();
            assert_eq!(first.len(), 1, "only the login");
            assert_eq!(buf.len(), after.len(), "the rest waits, undecoded");
            // The login succeeded: the next request is read without the
            // limits (a failed one would keep them, and refuse it).
            codec.set_limits(AUTHENTICATED);
            assert_eq!(
                decode_with(&mut codec, &mut buf).unwrap(),
                vec![args(&["SET", "k"])
                    .into_iter()
                    .chain([big.clone()])
                    .collect::<Request>()]
            );
        }
        // Any other command does not stop decoding (before AUTH it gets
        // NOAUTH), nor does anything without a password set.
        let two = [request_of(&[b"PING"]), request_of(&[b"PING"])].concat();
        assert_eq!(before_auth(&two).unwrap().len(), 2);
        let logins = [request_of(&[b"AUTH", b"x"]), request_of(&[b"RESET"])].concat();
        assert_eq!(
            decode_all(&[logins.as_slice(), &logins].concat())
                .unwrap()
                .len(),
            4
        );
        // With a password set, RESET logs out: the request after it is
        // read with the limits back, without waiting for the service.
        let mut codec = Resp::with_limits(AUTHENTICATED);
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(&request_of(&[b"reset"]));
        assert_eq!(
            decode_with(&mut codec, &mut buf).unwrap(),
            vec![args(&["reset"])]
        );
        buf.extend_from_slice(&request_of(&[b"ECHO", &big]));
        assert_eq!(
            decode_with(&mut codec, &mut buf).unwrap_err().message,
            "Protocol error: unauthenticated bulk length"
        );
        // Requests within the limits after a login are decoded at once: a
        // pipeline of logins costs no wait for the service.
        let logins: Vec<u8> = (0..100)
            .flat_map(|_| request_of(&[b"AUTH", b"wrong"]))
            .chain(request_of(&[b"PING"]))
            .collect();
        assert_eq!(before_auth(&logins).unwrap().len(), 101);
        // CONFIG SET may change the limits: nothing after it is decoded
        // until the service has run it, whoever asks.
        for limits in [BEFORE_AUTH, AUTHENTICATED] {
            let mut codec = Resp::with_limits(limits);
            let mut buf = RecvBuf::new();
            buf.extend_from_slice(
                &[
                    request_of(&[b"config", b"SET", b"proto-max-bulk-len", b"1048576"]),
                    request_of(&[b"PING"]),
                ]
                .concat(),
            );
            assert_eq!(decode_with(&mut codec, &mut buf).unwrap().len(), 1);
            assert_eq!(decode_with(&mut codec, &mut buf).unwrap().len(), 0, "held");
            codec.set_limits(limits);
            assert_eq!(
                decode_with(&mut codec, &mut buf).unwrap(),
                vec![args(&["PING"])]
            );
        }
        let mut codec = Resp::with_limits(AUTHENTICATED);
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(
            &[
                request_of(&[b"CONFIG", b"GET", b"x"]),
                request_of(&[b"PING"]),
            ]
            .concat(),
        );
        assert_eq!(
            decode_with(&mut codec, &mut buf).unwrap().len(),
            2,
            "CONFIG GET changes nothing"
        );
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(
            &[
                request_of(&[b"AUTH", b"wrong"]),
                request_of(&[b"ECHO", &big]),
            ]
            .concat(),
        );
        let mut codec = Resp::with_limits(BEFORE_AUTH);
        assert_eq!(decode_with(&mut codec, &mut buf).unwrap().len(), 1);
        codec.set_limits(BEFORE_AUTH);
        assert_eq!(
            decode_with(&mut codec, &mut buf).unwrap_err().message,
            "Protocol error: unauthenticated bulk length"
        );
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
        assert_eq!(
            err(b"*1\r\n+PING\r\n"),
            "Protocol error: expected '$', got '+'"
        );
        // Redis maps CR and LF in error texts to spaces.
        assert_eq!(
            err(b"*1\r\r\n$4\r\nPING\r\n"),
            "Protocol error: expected '$', got ' '"
        );
        assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*01\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*+1\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*1\r\n$-5\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(err(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(err(b"*1\r\n$01\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(err(b"*1\r\n$\r\n"), "Protocol error: invalid bulk length");
        for line in [
            &b"set \"unterminated\r\n"[..],
            b"echo \"ab\"c\r\n",
            b"echo 'ab'c\r\n",
            b"echo a\"b\"c\r\n",
            b"echo \"a\\\"\r\n",
            b"echo 'a\r\n",
        ] {
            assert_eq!(
                err(line),
                "Protocol error: unbalanced quotes in request",
                "{line:?}"
            );
        }
    }

    #[test]
    fn limits_are_redis_s() {
        let mut codec = Resp::new(10);
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(b"*1\r\n$11\r\n");
        assert_eq!(
            codec.decode(&mut buf).unwrap_err().message,
            "Protocol error: invalid bulk length"
        );
        let mut codec = Resp::new(10);
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(b"*1\r\n$10\r\n0123456789\r\n");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(args(&["0123456789"])));
        // Up to INT_MAX arguments may be announced (nothing is allocated
        // for them up front); one more is refused.
        assert_eq!(
            decode_all(b"*2147483647\r\n").unwrap(),
            Vec::<Request>::new()
        );
        assert_eq!(
            err(b"*2147483648\r\n"),
            "Protocol error: invalid multibulk length"
        );
        let mut line = vec![b'*'];
        line.resize(MAX_INLINE + 1, b'1');
        assert_eq!(err(&line), "Protocol error: too big mbulk count string");
        let mut line = b"*1\r\n$".to_vec();
        line.resize(4 + MAX_INLINE + 1, b'1');
        assert_eq!(err(&line), "Protocol error: too big bulk count string");
        // An inline line of MAX_INLINE bytes is fine; one more is not,
        // even when its end is already there.
        let mut line = b"ECHO ".to_vec();
        line.resize(MAX_INLINE, b'x');
        line.push(b'\n');
        assert_eq!(decode_all(&line).unwrap().len(), 1);
        line.insert(0, b' ');
        assert_eq!(err(&line), "Protocol error: too big inline request");
        // Redis's PROTO_INLINE_MAX_SIZE: 64 KiB may be buffered without a
        // line end, one byte more may not.
        let mut line = vec![b'*'; 65_536];
        assert_eq!(decode_all(&line).unwrap(), Vec::<Request>::new());
        line.push(b'1');
        assert_eq!(err(&line), "Protocol error: too big mbulk count string");
    }

    #[test]
    fn the_argument_index_is_reused_unless_huge() {
        let mut codec = Resp::new(512 << 20);
        for (count, kept) in [(RESERVE_ARGS, true), (RESERVE_ARGS + 1, false)] {
            let mut buf = RecvBuf::new();
            buf.extend_from_slice(format!("*{count}\r\n").as_bytes());
            for _ in 0..count {
                buf.extend_from_slice(b"$1\r\nx\r\n");
            }
            assert_eq!(
                codec.decode(&mut buf).unwrap().map(|r| r.len()),
                Some(count)
            );
            assert_eq!(
                codec.partial.args.capacity() >= RESERVE_ARGS,
                kept,
                "{count}"
            );
        }
        // A small request after a huge one reserves only what it needs.
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        codec.decode(&mut buf).unwrap();
        assert!(codec.partial.args.capacity() < RESERVE_ARGS);
    }

    #[test]
    fn redis_quirks_are_kept() {
        // The two bytes after a bulk are skipped unread, and so is the byte
        // after the `\r` of a header line.
        assert_eq!(
            decode_all(b"*1\r\n$4\r\nPINGXY*1\rX$4\r\nPING\r\n").unwrap(),
            vec![args(&["PING"]), args(&["PING"])]
        );
        // `*0` and `*-n` and blank lines are skipped.
        assert_eq!(
            decode_all(b"*0\r\n*-2\r\n\r\n\n   \r\nPING\r\n").unwrap(),
            vec![args(&["PING"])]
        );
        // sdssplitargs: `\r` splits, `\v` `\f` only lead, quotes open
        // mid-argument, hex escapes in double quotes only.
        assert_eq!(
            decode_all(b"PING\rPING\r\n").unwrap(),
            vec![args(&["PING", "PING"])]
        );
        assert_eq!(
            decode_all(b"\x0b ECHO a\x0bb\r\n").unwrap(),
            vec![args(&["ECHO", "a\x0bb"])]
        );
        assert_eq!(
            decode_all(b"ECHO a\"b c\" \"\\x41\\x4g\\b\\a\\q\" 'x\\'\\n' \"\"\r\n").unwrap(),
            vec![vec![
                b"ECHO".to_vec(),
                b"ab c".to_vec(),
                b"Ax4g\x08\x07q".to_vec(),
                b"x'\\n".to_vec(),
                Vec::new(),
            ]]
        );
        // A closing quote may end the line.
        assert_eq!(
            decode_all(b"ECHO 'a b'\r\nECHO \"c\"\n").unwrap(),
            vec![args(&["ECHO", "a b"]), args(&["ECHO", "c"])]
        );
        // A NUL before the end of a line stops Redis's search: not complete.
        assert_eq!(decode_all(b"ECHO a\0b\r\n").unwrap(), Vec::<Request>::new());
        assert_eq!(
            decode_all(b"*1\r\n$4\0\r\nPING\r\n").unwrap(),
            Vec::<Request>::new()
        );
        let mut line = b"ECHO \0".to_vec();
        line.resize(MAX_INLINE + 1, b'\n');
        assert_eq!(err(&line), "Protocol error: too big inline request");
    }

    #[test]
    fn string2ll_is_redis_s() {
        for (s, want) in [
            ("0", Some(0)),
            ("1", Some(1)),
            ("-1", Some(-1)),
            ("99", Some(99)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("18446744073709551616", None),
            ("99999999999999999999", None),
            ("-99999999999999999999", None),
            ("", None),
            ("-", None),
            ("00", None),
            ("01", None),
            ("-0", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("1a", None),
            ("0x1", None),
            ("1.0", None),
            ("00000000000000000001", None),
        ] {
            assert_eq!(string2ll(s.as_bytes()), want, "{s:?}");
        }
    }

    thread_local! {
        /// Bytes `line_end` looked at on this thread (the work a trickled
        /// line costs).
        pub(super) static EXAMINED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A long line sent a byte at a time costs each byte one look, not a
    /// rescan of the line per byte (16 KiB would be 134 M looks).
    #[test]
    fn a_line_trickling_in_is_scanned_once() {
        let mut codec = Resp::new(512 << 20);
        let mut buf = RecvBuf::new();
        let mut line = b"ECHO ".to_vec();
        line.resize(16 << 10, b'a');
        line.extend_from_slice(b"\r\n");
        EXAMINED.with(|e| e.set(0));
        let mut got = None;
        for &b in &line {
            assert_eq!(got, None, "a frame before the line ended");
            buf.extend_from_slice(&[b]);
            got = codec.decode(&mut buf).unwrap();
        }
        assert_eq!(
            got,
            Some(vec![b"ECHO".to_vec(), vec![b'a'; (16 << 10) - 5]])
        );
        let examined = EXAMINED.with(|e| e.get());
        assert!(
            examined <= 2 * line.len(),
            "{examined} bytes examined for a {}-byte line",
            line.len()
        );
    }

    #[test]
    fn a_request_trickling_in_is_parsed_once() {
        // A large argument, then the rest one byte at a time: the argument
        // is found once and later calls resume after it.
        let mut codec = Resp::new(512 << 20);
        let mut buf = RecvBuf::new();
        let big = vec![b'v'; 1 << 20];
        buf.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n", big.len()).as_bytes());
        buf.extend_from_slice(&big);
        buf.extend_from_slice(b"\r\n");
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        let found = codec.partial.pos;
        assert_eq!(codec.partial.args.len(), 2);
        let tail = b"$3\r\nkey\r\n";
        for (i, &b) in tail.iter().enumerate() {
            assert!(codec.partial.pos >= found);
            buf.extend_from_slice(&[b]);
            let got = codec.decode(&mut buf).unwrap();
            if i + 1 < tail.len() {
                assert_eq!(got, None);
            } else {
                assert_eq!(
                    got,
                    Some(vec![b"SET".to_vec(), big.clone(), b"key".to_vec()])
                );
            }
        }
        assert!(buf.is_empty());
        assert_eq!(codec.partial.pos, 0, "reset for the next request");
    }

    #[test]
    fn the_codec_encodes_and_frames_errors() {
        let mut codec = Resp::new(512 << 20);
        let reply = Reply::Array(vec![Reply::Int(-7), Reply::Bulk(b"ab".to_vec())]);
        let mut out = Vec::new();
        codec.encode(reply.clone(), &mut out);
        assert_eq!(out, b"*2\r\n:-7\r\n$2\r\nab\r\n");
        assert_eq!(<Resp as Codec>::encoded_len(&reply), out.len());
        let error = decode_all(b"*x\r\n").unwrap_err();
        assert_eq!(
            codec.error_frame(&error),
            Some(Reply::Error(
                "ERR Protocol error: invalid multibulk length".into()
            ))
        );
    }

    /// What `encode_into` hands the runtime, as slices in order.
    fn encoded_into(reply: Reply) -> (Vec<u8>, Vec<*const u8>) {
        let mut out = OutBuf::default();
        Resp::new(512 << 20).encode_into(reply, &mut out);
        let bytes = out.slices().flatten().copied().collect();
        (bytes, out.slices().map(<[u8]>::as_ptr).collect())
    }

    #[test]
    fn a_large_stored_value_is_shared_with_the_reply_not_copied_and_the_bytes_are_the_same() {
        let value: Vec<u8> = (0..=255).cycle().take(64 * 1024 + 3).collect();
        let stored = Blob::from(value.clone());
        let Blob::Heap(shared) = &stored else {
            panic!("a long value is shared")
        };
        let at = shared.as_ptr();
        let reply = Reply::Array(vec![
            Reply::Int(1),
            Reply::Stored(stored.clone()),
            Reply::Nil,
            Reply::Stored(Blob::from(&b"short"[..])),
        ]);
        let mut copied = Vec::new();
        encode(&reply, &mut copied);
        assert_eq!(copied.len(), encoded_len(&reply));
        let (bytes, slices) = encoded_into(reply);
        assert_eq!(bytes, copied, "the same bytes either way");
        assert_eq!(slices.len(), 3, "header, the value, the rest");
        assert_eq!(slices[1], at, "the keyspace's own bytes");
        for len in [SHARE_AT_LEAST - 1, SHARE_AT_LEAST] {
            let (_, slices) = encoded_into(Reply::Stored(Blob::from(vec![b'v'; len])));
            assert_eq!(slices.len() == 3, len >= SHARE_AT_LEAST, "{len} bytes");
        }
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

    /// Feeds `stream` in the given pieces to a codec with `max_bulk` as
    /// proto-max-bulk-len; the requests decoded, then the error if any.
    fn feed_with(max_bulk: usize, stream: &[u8], cuts: &[usize]) -> (Vec<Request>, Option<String>) {
        let mut codec = Resp::new(max_bulk);
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
                    Err(e) => return (got, Some(e.message)),
                }
            }
        }
        (got, None)
    }

    fn feed(stream: &[u8], cuts: &[usize]) -> (Vec<Request>, Option<String>) {
        feed_with(1 << 20, stream, cuts)
    }

    fn byte_by_byte(max_bulk: usize, stream: &[u8]) -> (Vec<Request>, Option<String>) {
        let cuts: Vec<usize> = (1..stream.len()).collect();
        feed_with(max_bulk, stream, &cuts)
    }

    fn sorted_cuts(mut cuts: Vec<usize>, len: usize) -> Vec<usize> {
        cuts.iter_mut().for_each(|c| *c %= len + 1);
        cuts.sort_unstable();
        cuts
    }

    /// Pieces of protocol, well-formed and not: headers with odd numbers,
    /// inline lines with quotes and escapes, stray CR, LF and NUL.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => request().prop_map(|r| encode_request(&r)),
            1 => Just(b"*".to_vec()),
            1 => Just(b"$".to_vec()),
            1 => Just(b"\r\n".to_vec()),
            1 => Just(b"\r".to_vec()),
            1 => Just(b"\n".to_vec()),
            1 => Just(b"\0".to_vec()),
            1 => Just(b"-".to_vec()),
            1 => Just(b"0".to_vec()),
            1 => Just(b"*2147483648\r\n".to_vec()),
            1 => Just(b"$99\r\n".to_vec()),
            1 => Just(b"\"".to_vec()),
            1 => Just(b"'".to_vec()),
            1 => Just(b"\\".to_vec()),
            1 => Just(b" ".to_vec()),
            1 => Just(b"\\x4".to_vec()),
            1 => Just(b"PING ".to_vec()),
            1 => (0i64..40).prop_map(|n| n.to_string().into_bytes()),
            1 => any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            1 => prop::collection::vec(any::<u8>(), 0..8),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any pipeline of valid requests, split anywhere, decodes to the
        /// same requests in the same order.
        #[test]
        fn any_split_of_valid_requests_decodes_the_same(
            requests in prop::collection::vec(request(), 1..8),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let stream: Vec<u8> = requests.iter().flat_map(encode_request).collect();
            let cuts = sorted_cuts(cuts, stream.len());
            prop_assert_eq!(feed(&stream, &cuts), (requests.clone(), None));
            prop_assert_eq!(byte_by_byte(1 << 20, &stream), (requests, None));
        }

        /// Protocol-looking input, valid or not: fed byte by byte or in
        /// random pieces it gives the same requests and the same error as
        /// in one piece.
        #[test]
        fn splits_agree_on_frames_and_errors(
            parts in prop::collection::vec(piece(), 0..24),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            max_bulk in prop_oneof![Just(1usize << 20), 0usize..40],
        ) {
            let stream = parts.concat();
            let cuts = sorted_cuts(cuts, stream.len());
            let whole = feed_with(max_bulk, &stream, &[]);
            prop_assert_eq!(&feed_with(max_bulk, &stream, &cuts), &whole);
            prop_assert_eq!(&byte_by_byte(max_bulk, &stream), &whole);
        }

        /// Random bytes never panic, and split anywhere give the same
        /// outcome as in one piece.
        #[test]
        fn random_bytes_never_panic_and_splits_agree(
            stream in prop::collection::vec(any::<u8>(), 0..512),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            let cuts = sorted_cuts(cuts, stream.len());
            prop_assert_eq!(feed(&stream, &cuts), feed(&stream, &[]));
        }

        /// Inline requests: the arguments of any line of plain words come
        /// back as split on blanks, however the line arrives.
        #[test]
        fn inline_words_split_on_blanks(
            words in prop::collection::vec("[a-zA-Z0-9:_]{1,8}", 1..6),
            blanks in prop::collection::vec("[ \t]{1,3}", 6),
            crlf in any::<bool>(),
        ) {
            let mut line = Vec::new();
            for (word, blank) in words.iter().zip(&blanks) {
                line.extend_from_slice(word.as_bytes());
                line.extend_from_slice(blank.as_bytes());
            }
            line.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            let want: Request = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            prop_assert_eq!(byte_by_byte(1 << 20, &line), (vec![want.clone()], None));
            prop_assert_eq!(feed(&line, &[]), (vec![want], None));
        }

        /// Lines past the limits fail with Redis's texts, whatever the
        /// split.
        #[test]
        fn too_big_lines_fail_the_same_however_split(
            kind in 0usize..3,
            extra in 1usize..64,
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            let (mut stream, want) = match kind {
                0 => (b"*".to_vec(), "Protocol error: too big mbulk count string"),
                1 => (b"*1\r\n$".to_vec(), "Protocol error: too big bulk count string"),
                _ => (b"ECHO ".to_vec(), "Protocol error: too big inline request"),
            };
            let start = if kind == 1 { 4 } else { 0 };
            stream.resize(start + MAX_INLINE + extra, b'1');
            stream.extend_from_slice(b"\r\n");
            let cuts = sorted_cuts(cuts, stream.len());
            prop_assert_eq!(feed(&stream, &cuts), (vec![], Some(want.to_string())));
        }
    }
}
