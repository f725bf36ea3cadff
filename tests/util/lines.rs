//! A line protocol for tests: one `\n`-terminated line per frame.

use baton::{Codec, ProtocolError, RecvBuf};

/// Decodes lines (without the `\n`); encodes a line plus `\n`. Lines longer
/// than the runtime's `max_frame_size` are rejected by the runtime.
#[derive(Debug, Default)]
pub struct Lines;

impl Codec for Lines {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Some(end) = src.as_slice().iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = src.as_slice()[..end].to_vec();
        src.consume(end + 1);
        if line == b"PANIC" {
            panic!("test codec told to panic");
        }
        Ok(Some(line))
    }

    fn encode(&mut self, mut line: Vec<u8>, dst: &mut Vec<u8>) {
        line.push(b'\n');
        dst.extend_from_slice(&line);
    }

    fn encoded_len(line: &Vec<u8>) -> usize {
        line.len() + 1
    }
}
