//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest
//! common subsequence of two strings, as Redis 7.0's `lcsCommand` computes
//! it (the same dynamic-programming table and the same walk back through
//! it, so ties resolve to the same subsequence and the same ranges).
//!
//! The table holds `(len1 + 1) * (len2 + 1)` 32-bit cells: memory and time
//! grow with the product of the lengths, not with the request. Redis 7.0
//! refuses a table larger than `proto-max-bulk-len` bytes (512 MB by
//! default); kv refuses one of more than [`MAX_CELLS`] cells as well (64 MB,
//! two strings of about 4 KB each), with its own error, so that two large
//! strings cannot make one request allocate half a gigabyte and hold the
//! event loop for seconds.

use super::{int, Call, SYNTAX};
use crate::keyspace::Value;
use crate::protocol::Reply;
use crate::service::Kv;

/// kv's limit on the LCS table (see the module doc).
pub const MAX_CELLS: u64 = 1 << 24;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    // Lengths first: the strings are copied only once the table is known
    // to fit (two 512 MB values would otherwise be copied to be refused).
    let mut text_len = |key: &[u8]| match kv.db.get(key, call.now) {
        None => Ok(0),
        Some(Value::Str(s)) => Ok(s.len()),
        Some(_) => Err(Reply::error(
            "ERR The specified keys must contain string values",
        )),
    };
    let (x_len, y_len) = (text_len(&a[0])?, text_len(&a[1])?);
    let (mut get_len, mut get_idx, mut with_match_len) = (false, false, false);
    let mut min_match_len: i64 = 0;
    let mut i = 2;
    while i < a.len() {
        let more = i + 1 < a.len();
        match a[i].to_ascii_lowercase().as_slice() {
            b"idx" => get_idx = true,
            b"len" => get_len = true,
            b"withmatchlen" => with_match_len = true,
            b"minmatchlen" if more => {
                min_match_len = int(&a[i + 1])?.max(0);
                i += 1;
            }
            _ => return Err(Reply::error(SYNTAX)),
        }
        i += 1;
    }
    if get_idx && get_len {
        return Err(Reply::error(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let cells = (x_len as u64 + 1) * (y_len as u64 + 1);
    if cells.saturating_mul(4) > kv.proto_max_bulk_len as u64 {
        return Err(Reply::error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    if cells > MAX_CELLS {
        return Err(Reply::error(format!(
            "ERR LCS table too large: (len1+1)*(len2+1) is {cells} cells, kv allows at most {MAX_CELLS}"
        )));
    }
    let text = |key: &[u8]| match kv.db.peek(key, call.now) {
        Some(Value::Str(s)) => s.to_vec(),
        _ => Vec::new(),
    };
    let (x, y) = (text(&a[0]), text(&a[1]));
    let table = Table::build(&x, &y);
    let total = table.at(x.len(), y.len());
    if get_len {
        return Ok(Reply::Int(i64::from(total)));
    }
    let (common, ranges) = table.walk(&x, &y, min_match_len, with_match_len);
    if !get_idx {
        return Ok(Reply::Bulk(common));
    }
    Ok(Reply::Map(vec![
        (Reply::bulk(b"matches".to_vec()), Reply::Array(ranges)),
        (Reply::bulk(b"len".to_vec()), Reply::Int(i64::from(total))),
    ]))
}

/// `LCS(i, j)`: the LCS length of the first `i` bytes of one string and
/// the first `j` of the other.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    fn build(x: &[u8], y: &[u8]) -> Table {
        let width = y.len() + 1;
        let mut cells = vec![0u32; (x.len() + 1) * width];
        for i in 1..=x.len() {
            for j in 1..=y.len() {
                cells[i * width + j] = if x[i - 1] == y[j - 1] {
                    cells[(i - 1) * width + j - 1] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + j - 1])
                };
            }
        }
        Table { cells, width }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    /// The subsequence and the IDX ranges (`[[start1, end1], [start2,
    /// end2](, len)]`, last match first), walking back from the end as
    /// Redis does.
    fn walk(&self, x: &[u8], y: &[u8], min_len: i64, with_len: bool) -> (Vec<u8>, Vec<Reply>) {
        let mut common = vec![0u8; self.at(x.len(), y.len()) as usize];
        let mut idx = common.len();
        let mut ranges = Vec::new();
        let unset = x.len();
        let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0, 0, 0);
        let (mut i, mut j) = (x.len(), y.len());
        while i > 0 && j > 0 {
            let mut emit = false;
            if x[i - 1] == y[j - 1] {
                common[idx - 1] = x[i - 1];
                if a_start == unset {
                    (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
                } else if a_start == i && b_start == j {
                    a_start -= 1;
                    b_start -= 1;
                } else {
                    emit = true;
                }
                if a_start == 0 || b_start == 0 {
                    emit = true;
                }
                idx -= 1;
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                if a_start != unset {
                    emit = true;
                }
            }
            if emit {
                let match_len = a_end.wrapping_sub(a_start).wrapping_add(1);
                if min_len == 0 || match_len as i64 >= min_len {
                    let pair = |s: usize, e: usize| {
                        Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)])
                    };
                    let mut range = vec![pair(a_start, a_end), pair(b_start, b_end)];
                    if with_len {
                        range.push(Reply::Int(match_len as i64));
                    }
                    ranges.push(Reply::Array(range));
                }
                a_start = unset;
            }
        }
        (common, ranges)
    }
}
