//! Finds where one RESP2 reply ends, without copying it.
//!
//! The load generator counts replies, tells errors from successes and checks
//! their shape; it never needs the values themselves.

/// What one complete reply at the front of a buffer was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `+...` or `:...`, or a bulk/array that is not nil.
    Value {
        /// Bytes the reply took.
        len: usize,
        /// For a bulk string, its payload length.
        bulk: Option<usize>,
    },
    /// `$-1` or `*-1`.
    Nil { len: usize },
    /// `-...`: the server refused the command.
    Error { len: usize },
}

impl Reply {
    /// Bytes the reply took.
    pub fn len(self) -> usize {
        match self {
            Reply::Value { len, .. } | Reply::Nil { len } | Reply::Error { len } => len,
        }
    }
}

/// Why the bytes cannot be a RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// The reply at the front of `buf`: `Ok(None)` if it is not complete yet.
pub fn next_reply(buf: &[u8]) -> Result<Option<Reply>, Malformed> {
    parse(buf, 0)
}

fn parse(buf: &[u8], depth: usize) -> Result<Option<Reply>, Malformed> {
    let Some(line_end) = find_crlf(buf) else {
        return Ok(None);
    };
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let head = line_end + 2;
    match kind {
        b'+' | b':' => Ok(Some(Reply::Value {
            len: head,
            bulk: None,
        })),
        b'-' => Ok(Some(Reply::Error { len: head })),
        b'$' => match number(&buf[1..line_end])? {
            -1 => Ok(Some(Reply::Nil { len: head })),
            n if n >= 0 => {
                let n = n as usize;
                let len = head + n + 2;
                if buf.len() < len {
                    return Ok(None);
                }
                if &buf[head + n..len] != b"\r\n" {
                    return Err(Malformed(format!("bulk of {n} bytes not followed by CRLF")));
                }
                Ok(Some(Reply::Value { len, bulk: Some(n) }))
            }
            n => Err(Malformed(format!("bulk length {n}"))),
        },
        b'*' => {
            if depth > 8 {
                return Err(Malformed("arrays nested more than 8 deep".into()));
            }
            match number(&buf[1..line_end])? {
                -1 => Ok(Some(Reply::Nil { len: head })),
                n if n >= 0 => {
                    let mut at = head;
                    for _ in 0..n {
                        match parse(&buf[at..], depth + 1)? {
                            Some(item) => at += item.len(),
                            None => return Ok(None),
                        }
                    }
                    Ok(Some(Reply::Value {
                        len: at,
                        bulk: None,
                    }))
                }
                n => Err(Malformed(format!("array length {n}"))),
            }
        }
        other => Err(Malformed(format!(
            "reply starts with byte {other:#04x}, not a RESP2 type"
        ))),
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    let cr = buf.iter().position(|&b| b == b'\r')?;
    (buf.get(cr + 1) == Some(&b'\n')).then_some(cr)
}

fn number(digits: &[u8]) -> Result<i64, Malformed> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Malformed(format!("bad length {:?}", String::from_utf8_lossy(digits))))
}
